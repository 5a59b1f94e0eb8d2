"""The deployment's category taxonomy: versions and their items (migration 0005).

Each import adds a version; the newest is the one in use. Older versions stay,
because incidents keep the version they were classified under.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import cast

import pandas as pd
from sqlalchemy import Connection, Table, func, insert, select

from app.db.models import TaxonomyItem, TaxonomyVersion
from gis.taxonomy import TAXONOMY_COLUMNS

VERSION = cast(Table, TaxonomyVersion.__table__)
ITEM = cast(Table, TaxonomyItem.__table__)


@dataclass(frozen=True)
class VersionInfo:
    id: int
    source: str
    items: int
    created_at: datetime


def current_version(conn: Connection) -> VersionInfo | None:
    """The taxonomy in use (the newest version), None when none is stored."""
    row = conn.execute(select(VERSION).order_by(VERSION.c.id.desc()).limit(1)).mappings().first()
    return None if row is None else VersionInfo(**row)


def current_version_id(conn: Connection) -> int | None:
    return conn.execute(select(func.max(VERSION.c.id))).scalar_one()


def items_frame(conn: Connection, version_id: int) -> pd.DataFrame:
    """The items of one version, columns :data:`gis.taxonomy.TAXONOMY_COLUMNS`, by code."""
    query = (
        select(*[ITEM.c[c] for c in TAXONOMY_COLUMNS])
        .where(ITEM.c.version_id == version_id)
        .order_by(ITEM.c.code)
    )
    return pd.DataFrame(conn.execute(query).mappings().all(), columns=TAXONOMY_COLUMNS)


def store_version(conn: Connection, items: pd.DataFrame, source: str) -> int:
    """Store a validated taxonomy as the newest version; returns its id."""
    version_id = conn.execute(
        insert(VERSION).values(source=source, items=len(items)).returning(VERSION.c.id)
    ).scalar_one()
    rows = [
        {**row, "version_id": version_id, "deadline_hours": int(row["deadline_hours"])}
        for row in items[TAXONOMY_COLUMNS].to_dict("records")
    ]
    conn.execute(insert(ITEM), rows)
    return int(version_id)


def list_versions(conn: Connection) -> list[VersionInfo]:
    rows = conn.execute(select(VERSION).order_by(VERSION.c.id)).mappings().all()
    return [VersionInfo(**row) for row in rows]
