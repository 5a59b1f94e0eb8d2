"""Incidents written in batches, the geocoding gazetteer, and the incident counts services need.

A batch of incidents — a file of 50,000 or one created through the API — goes
through one path: COPY into a staging table, then one INSERT … ON CONFLICT DO
NOTHING, so ``(source, external_id)`` decides what is new.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import cast

import pandas as pd
from sqlalchemy import Connection, Table, and_, func, select, text
from sqlalchemy import column as sql_column
from sqlalchemy import table as sql_table
from sqlalchemy.dialects.postgresql import insert as pg_insert

from app.db.assignments import CODE_COLUMNS
from app.db.bulk import copy_binary
from app.db.models import AddressPoint, Incident, TaxonomyItem
from gis.incidents import HISTORY_COLUMNS

INCIDENT = cast(Table, Incident.__table__)
ADDRESS_POINT = cast(Table, AddressPoint.__table__)
ITEM = cast(Table, TaxonomyItem.__table__)

# The columns of an incident, in groups every reader and writer composes from.
#: What was reported.
REPORTED_COLUMNS = ("source", "external_id", "category", "description", "address", "reported_at")
#: The coordinates as given, before any conversion.
RAW_LOCATION_COLUMNS = ("raw_lon", "raw_lat", "raw_crs")
#: How the location was found, or why not.
LOCATION_OUTCOME_COLUMNS = ("location_status", "unlocated_reason")
#: Where the incident is in the closed loop.
LOOP_COLUMNS = ("status", "handling_level")
#: An incident's assignment under one generation (``incident_assignment``).
ASSIGNMENT_COLUMNS = (*CODE_COLUMNS, "generation_id", "assign_status", "distance_m", "assigned_at")

#: Columns an incident batch fills (the rest take their defaults): a historical ticket
#: arrives with its status, handling level and step times.
INCIDENT_COPY_COLUMNS = (
    *REPORTED_COLUMNS,
    *HISTORY_COLUMNS,
    *RAW_LOCATION_COLUMNS,
    "location",
    *LOCATION_OUTCOME_COLUMNS,
    "batch_id",
    "taxonomy_version",
)
#: An incident with its current assignment, as exported (``gridmap incidents export``).
INCIDENT_EXPORT_COLUMNS = (
    "id",
    *REPORTED_COLUMNS,
    *HISTORY_COLUMNS,
    *RAW_LOCATION_COLUMNS,
    *LOCATION_OUTCOME_COLUMNS,
    *ASSIGNMENT_COLUMNS,
)
#: A temporary copy of ``incident``'s columns, created per batch (untyped: only moved).
STAGE = sql_table("incident_stage", *[sql_column(c) for c in INCIDENT_COPY_COLUMNS])
GAZETTEER_COLUMNS = ("address", "lon", "lat", "micro_grid_code")


def insert_new_incidents(
    conn: Connection, rows: pd.DataFrame, progress: Callable[[int], None] | None = None
) -> list[tuple[int, str, str]]:
    """Insert the rows (columns :data:`INCIDENT_COPY_COLUMNS`, geometries as hex EWKB)
    whose (source, external_id) is new; returns (id, source, external_id) of those.
    ``progress(rows)``: the rows sent to the database so far.
    """
    conn.execute(
        text("CREATE TEMP TABLE incident_stage (LIKE incident INCLUDING DEFAULTS) ON COMMIT DROP")
    )
    copy_binary(conn, STAGE.name, rows[list(INCIDENT_COPY_COLUMNS)], progress=progress)
    # The deadline is the category's in the taxonomy version the row was classified under.
    deadline = STAGE.c.reported_at + func.make_interval(0, 0, 0, 0, ITEM.c.deadline_hours)
    query = (
        pg_insert(INCIDENT)
        .from_select(
            [*INCIDENT_COPY_COLUMNS, "deadline_at"],
            select(*[STAGE.c[c] for c in INCIDENT_COPY_COLUMNS], deadline)
            .select_from(
                STAGE.outerjoin(
                    ITEM,
                    and_(
                        ITEM.c.version_id == STAGE.c.taxonomy_version,
                        ITEM.c.code == STAGE.c.category,
                    ),
                )
            )
            .order_by(STAGE.c.external_id),
        )
        .on_conflict_do_nothing(index_elements=["source", "external_id"])
        .returning(INCIDENT.c.id, INCIDENT.c.source, INCIDENT.c.external_id)
    )
    inserted = [(int(i), s, e) for i, s, e in conn.execute(query).all()]
    # Dropped now, not at commit: another batch in the same transaction creates it again.
    conn.execute(text("DROP TABLE incident_stage"))
    return inserted


def incident_count(conn: Connection) -> int:
    return conn.execute(select(func.count()).select_from(INCIDENT)).scalar_one()


def delete_all_incidents(conn: Connection) -> int:
    """Every incident goes, with its assignments and status log (cascades)."""
    return conn.execute(INCIDENT.delete()).rowcount


def gazetteer_frame(conn: Connection) -> pd.DataFrame:
    """Every gazetteer address with its WGS84 point and micro-grid."""
    query = select(*[ADDRESS_POINT.c[c] for c in GAZETTEER_COLUMNS])
    return pd.DataFrame(conn.execute(query).mappings().all(), columns=list(GAZETTEER_COLUMNS))


def gazetteer_version(conn: Connection) -> tuple[int, int | None]:
    """(count, max id) of the gazetteer: changes whenever addresses are loaded or replaced."""
    count, last = conn.execute(
        select(func.count(), func.max(ADDRESS_POINT.c.id)).select_from(ADDRESS_POINT)
    ).one()
    return int(count), last


def gazetteer_count(conn: Connection) -> int:
    return gazetteer_version(conn)[0]


def delete_gazetteer_source(conn: Connection, source: str) -> int:
    return conn.execute(ADDRESS_POINT.delete().where(ADDRESS_POINT.c.source == source)).rowcount


def handled_by_staff(conn: Connection, batch_id: int | None) -> int:
    """Incidents of the batch with a staff member of the roster named as their assignee."""
    if batch_id is None:
        return 0
    query = select(func.count()).where(
        INCIDENT.c.batch_id == batch_id, INCIDENT.c.assignee_staff_id.isnot(None)
    )
    return int(conn.execute(query).scalar_one())
