"""Grid staff of a generation (网格长, 专职网格员, 微网格员 …)."""

from __future__ import annotations

from typing import cast

import pandas as pd
from sqlalchemy import Connection, Table, func, select

from app.db.bulk import copy_frame
from app.db.models import Staff

STAFF = cast(Table, Staff.__table__)
#: What a staff row holds besides its generation.
STAFF_COLUMNS = ("name", "role", "area_code", "phone")


def staff_frame(conn: Connection, generation_id: int) -> pd.DataFrame:
    query = (
        select(*[STAFF.c[c] for c in STAFF_COLUMNS])
        .where(STAFF.c.generation_id == generation_id)
        .order_by(STAFF.c.id)
    )
    return pd.DataFrame(conn.execute(query).mappings().all(), columns=list(STAFF_COLUMNS))


def copy_staff(conn: Connection, staff: pd.DataFrame, generation_id: int) -> int:
    """COPY staff (columns :data:`STAFF_COLUMNS`) into ``generation_id``."""
    rows = staff[list(STAFF_COLUMNS)].reset_index(drop=True).copy()
    rows["generation_id"] = generation_id
    return copy_frame(conn, "staff", rows)


def replace_staff(conn: Connection, staff: pd.DataFrame, generation_id: int) -> int:
    conn.execute(STAFF.delete().where(STAFF.c.generation_id == generation_id))
    return copy_staff(conn, staff, generation_id)


def staff_count(conn: Connection, generation_id: int) -> int:
    return conn.execute(
        select(func.count()).select_from(STAFF).where(STAFF.c.generation_id == generation_id)
    ).scalar_one()
