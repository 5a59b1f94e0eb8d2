"""Grid staff of a generation (网格长, 专职网格员, 微网格员 …) and the deployment's own roles."""

from __future__ import annotations

from collections.abc import Collection
from typing import cast

import pandas as pd
from sqlalchemy import Connection, Table, func, select

from app.db.bulk import copy_frame
from app.db.models import Staff, StaffRole
from gis.staff import ROSTER_COLUMNS
from gis.staff import StaffRole as Role

STAFF = cast(Table, Staff.__table__)
ROLE = cast(Table, StaffRole.__table__)
#: What a staff row holds besides its generation (what the maps and the registry use).
STAFF_COLUMNS = ("name", "role", "area_code", "phone")


def staff_frame(
    conn: Connection, generation_id: int, columns: Collection[str] = STAFF_COLUMNS
) -> pd.DataFrame:
    query = (
        select(*[STAFF.c[c] for c in columns])
        .where(STAFF.c.generation_id == generation_id)
        .order_by(STAFF.c.id)
    )
    # Plain tuples: a frame from row objects costs a second or more for a city's staff.
    rows = [tuple(row) for row in conn.execute(query).all()]
    return pd.DataFrame(rows, columns=list(columns))


def roster_frame(conn: Connection, generation_id: int) -> pd.DataFrame:
    """Every roster column (:data:`gis.staff.ROSTER_COLUMNS`) of a generation's staff."""
    return staff_frame(conn, generation_id, ROSTER_COLUMNS)


def copy_staff(
    conn: Connection, staff: pd.DataFrame, generation_id: int, batch_id: int | None = None
) -> int:
    """COPY staff into ``generation_id``: the roster columns the frame has (at least
    :data:`STAFF_COLUMNS`)."""
    columns = [c for c in ROSTER_COLUMNS if c in staff.columns]
    rows = staff[columns].reset_index(drop=True).copy()
    rows["generation_id"] = generation_id
    if batch_id is not None:
        rows["batch_id"] = batch_id
    return copy_frame(conn, "staff", rows)


def replace_staff(conn: Connection, staff: pd.DataFrame, generation_id: int) -> int:
    conn.execute(STAFF.delete().where(STAFF.c.generation_id == generation_id))
    return copy_staff(conn, staff, generation_id)


def delete_staff_of_areas(conn: Connection, generation_id: int, codes: Collection[str]) -> int:
    """Remove the roster of these areas (an import ``--replace`` of them)."""
    return conn.execute(
        STAFF.delete().where(STAFF.c.generation_id == generation_id, STAFF.c.area_code.in_(codes))
    ).rowcount


def staff_keys(conn: Connection, generation_id: int) -> pd.DataFrame:
    """Name, role, area and external id of the stored staff: what a new file may not repeat."""
    return staff_frame(conn, generation_id, ("name", "role", "area_code", "external_id"))


def staff_count(conn: Connection, generation_id: int) -> int:
    return conn.execute(
        select(func.count()).select_from(STAFF).where(STAFF.c.generation_id == generation_id)
    ).scalar_one()


# -- the deployment's roles --------------------------------------------------------------
def added_roles(conn: Connection) -> list[Role]:
    rows = conn.execute(select(ROLE).order_by(ROLE.c.code)).mappings().all()
    return [
        Role(r["code"], r["name_zh"], r["name_en"], r["staffs"], tuple(r["words"] or ()))
        for r in rows
    ]


def store_role(conn: Connection, role: Role) -> None:
    conn.execute(
        ROLE.insert().values(
            code=role.code,
            name_zh=role.name_zh,
            name_en=role.name_en,
            staffs=role.staffs,
            words=list(role.words),
        )
    )
