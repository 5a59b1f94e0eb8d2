"""The HTTP API's SQL: features as GeoJSON text, area relations, incidents and statistics.

Features are serialised by PostGIS (``ST_AsGeoJSON`` inside one text value per
row) so that Python only joins strings; see ``app/api/geojson.py``. Every query
is a SQLAlchemy Core expression with bound parameters.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any
from typing import cast as cast_type

from geoalchemy2 import Geography
from sqlalchemy import (
    ColumnElement,
    Connection,
    Integer,
    Select,
    String,
    Table,
    and_,
    cast,
    column,
    false,
    func,
    insert,
    literal,
    or_,
    select,
    true,
    update,
    values,
)

from app.db import kept_counts, repo
from app.db.incidents import (
    ASSIGNMENT_COLUMNS,
    LOCATION_OUTCOME_COLUMNS,
    LOOP_COLUMNS,
    RAW_LOCATION_COLUMNS,
    REPORTED_COLUMNS,
)
from app.db.models import (
    ApiKey,
    AppUser,
    Generation,
    Incident,
    IncidentAssignment,
    IncidentStatusLog,
    IncidentWhistle,
    Staff,
    incident_count,
)
from app.db.repo import AREA, AREA_PROPERTIES
from gis.vocabulary import INCIDENT_STATUSES, LOCAL_TIMEZONE, OPEN_STATUSES, STEP_TIMESTAMP

__all__ = ["AreaFilter", "IncidentFilter", "IncidentStatusLog"]

# Declarative __table__ is typed as a FromClause; these are Tables.
INCIDENT = cast_type(Table, Incident.__table__)
ASSIGNMENT = cast_type(Table, IncidentAssignment.__table__)
STAFF = cast_type(Table, Staff.__table__)
#: Area level → the assignment column holding the code of that level.
INCIDENT_CODE_COLUMN = {
    "street": ASSIGNMENT.c.street_code,
    "community": ASSIGNMENT.c.community_code,
    "grid": ASSIGNMENT.c.grid_code,
    "micro_grid": ASSIGNMENT.c.micro_grid_code,
}
#: Neighbours are areas within this many degrees (~1 cm): real layers rarely share
#: edges bit for bit, and a sliver-wide gap must not hide a neighbour.
_TOUCH_DEG = 1e-7


LOG = cast_type(Table, IncidentStatusLog.__table__)
WHISTLE = cast_type(Table, IncidentWhistle.__table__)
USER = cast_type(Table, AppUser.__table__)
KEY = cast_type(Table, ApiKey.__table__)


# -- shared pieces -----------------------------------------------------------------------
def _feature_text(
    feature_id: ColumnElement, geometry: ColumnElement, properties: ColumnElement
) -> ColumnElement:
    """One GeoJSON Feature as text; the geometry JSON is never parsed on the way."""
    return func.concat(
        '{"type":"Feature","id":',
        func.to_json(feature_id),
        ',"geometry":',
        func.coalesce(func.ST_AsGeoJSON(geometry), "null"),
        ',"properties":',
        properties,
        "}",
    )


def _envelope(bbox: Any) -> ColumnElement:
    return func.ST_MakeEnvelope(bbox.minx, bbox.miny, bbox.maxx, bbox.maxy, 4326)


def _in_bbox(geom: ColumnElement, bbox: Any) -> ColumnElement:
    if bbox.minx <= bbox.maxx:
        return func.ST_Intersects(geom, _envelope(bbox))
    # Crossing the antimeridian: two boxes, east and west of it.
    east = func.ST_MakeEnvelope(bbox.minx, bbox.miny, 180, bbox.maxy, 4326)
    west = func.ST_MakeEnvelope(-180, bbox.miny, bbox.maxx, bbox.maxy, 4326)
    return or_(func.ST_Intersects(geom, east), func.ST_Intersects(geom, west))


def _in_generation(generation_id: int | ColumnElement, table: Any = AREA) -> ColumnElement:
    return and_(table.c.generation_low <= generation_id, table.c.generation_high >= generation_id)


def _geometry(geom: ColumnElement, lat_first: bool) -> ColumnElement:
    return func.ST_FlipCoordinates(geom) if lat_first else geom


def _page(
    conn: Connection,
    query: Select,
    feature: ColumnElement,
    limit: int,
    offset: int,
    count_query: Select,
) -> tuple[int, list[str]]:
    """Features of one page and the number matched, in one round trip when rows come back."""
    rows = conn.execute(
        query.add_columns(func.count().over().label("matched"), feature).limit(limit).offset(offset)
    ).all()
    if rows:
        return rows[0].matched, [row[-1] for row in rows]
    return conn.execute(count_query).scalar_one(), []


# -- generations -----------------------------------------------------------------------
def generation_counts(conn: Connection) -> dict[int, dict[str, int]]:
    """Areas per level of every generation."""
    gen = Generation.__table__
    rows = conn.execute(
        select(gen.c.id, AREA.c.level, func.count())
        .select_from(gen)
        .join(AREA, _in_generation(gen.c.id))
        .group_by(gen.c.id, AREA.c.level)
    )
    counts: dict[int, dict[str, int]] = {}
    for gen_id, level, n in rows:
        counts.setdefault(gen_id, {})[level] = n
    return counts


def level_extents(conn: Connection, generation_id: int) -> dict[str, list[float]]:
    """[minx, miny, maxx, maxy] of each level of a generation."""
    extent = func.ST_Extent(AREA.c.geom)
    rows = conn.execute(
        select(
            AREA.c.level,
            func.ST_XMin(extent),
            func.ST_YMin(extent),
            func.ST_XMax(extent),
            func.ST_YMax(extent),
        )
        .where(_in_generation(generation_id))
        .group_by(AREA.c.level)
    )
    return {level: [float(v) for v in box] for level, *box in rows}


def incident_extent(conn: Connection) -> tuple[list[float] | None, list[datetime | None]]:
    extent = func.ST_Extent(INCIDENT.c.location)
    row = conn.execute(
        select(
            func.ST_XMin(extent),
            func.ST_YMin(extent),
            func.ST_XMax(extent),
            func.ST_YMax(extent),
            func.min(INCIDENT.c.reported_at),
            func.max(INCIDENT.c.reported_at),
        )
    ).one()
    box = None if row[0] is None else [float(v) for v in row[:4]]
    return box, [row[4], row[5]]


# -- areas -----------------------------------------------------------------------------
@dataclass(frozen=True)
class AreaFilter:
    generation_id: int
    level: str | None = None
    code: str | None = None
    parent: str | None = None
    kind: str | None = None
    bbox: Any = None


def _area_properties() -> ColumnElement:
    pairs: list[Any] = []
    for name in AREA_PROPERTIES:
        pairs += [name, AREA.c[name]]
    return func.json_build_object(*pairs)


_AREA_FEATURE = {
    flip: _feature_text(AREA.c.code, _geometry(AREA.c.geom, flip), _area_properties())
    for flip in (False, True)
}


def _area_where(f: AreaFilter) -> list[ColumnElement]:
    where = [_in_generation(f.generation_id)]
    for column_name, value in (
        ("level", f.level),
        ("code", f.code),
        ("parent_code", f.parent),
        ("kind", f.kind),
    ):
        if value is not None:
            where.append(AREA.c[column_name] == value)
    if f.bbox is not None:
        where.append(_in_bbox(AREA.c.geom, f.bbox))
    return where


def area_features(
    conn: Connection, f: AreaFilter, limit: int, offset: int, lat_first: bool = False
) -> tuple[int, list[str]]:
    """A page of areas as GeoJSON Feature texts, ordered by code, and the number matched."""
    where = _area_where(f)
    query = select().select_from(AREA).where(*where).order_by(AREA.c.code)
    count = select(func.count()).select_from(AREA).where(*where)
    return _page(conn, query, _AREA_FEATURE[lat_first], limit, offset, count)


def area_feature(
    conn: Connection,
    generation_id: int,
    code: str,
    level: str | None = None,
    lat_first: bool = False,
) -> str | None:
    where = _area_where(AreaFilter(generation_id, level=level, code=code))
    return conn.execute(select(_AREA_FEATURE[lat_first]).where(*where)).scalar_one_or_none()


def area_record(conn: Connection, generation_id: int, code: str) -> dict | None:
    """An area's properties and its geometry as GeoJSON text (``geometry``)."""
    row = conn.execute(
        select(
            *[AREA.c[c] for c in AREA_PROPERTIES], func.ST_AsGeoJSON(AREA.c.geom).label("geometry")
        ).where(_in_generation(generation_id), AREA.c.code == code)
    ).first()
    return None if row is None else dict(row._mapping)


def child_features(conn: Connection, generation_id: int, code: str) -> list[str]:
    return list(
        conn.execute(
            select(_AREA_FEATURE[False])
            .where(_in_generation(generation_id), AREA.c.parent_code == code)
            .order_by(AREA.c.code)
        ).scalars()
    )


def child_count(conn: Connection, generation_id: int, code: str) -> int:
    return conn.execute(
        select(func.count())
        .select_from(AREA)
        .where(_in_generation(generation_id), AREA.c.parent_code == code)
    ).scalar_one()


def neighbours(conn: Connection, generation_id: int, code: str) -> list[dict]:
    """Areas of the same level touching ``code``, with the shared boundary in metres."""
    a, b = AREA.alias("a"), AREA.alias("b")
    shared = func.ST_Length(
        cast(
            func.ST_Intersection(
                func.ST_Boundary(b.c.geom),
                func.ST_Buffer(func.ST_Boundary(a.c.geom), _TOUCH_DEG, "quad_segs=1"),
            ),
            Geography,
        )
    )
    query = (
        select(b.c.code, b.c.name, b.c.kind, b.c.parent_code, shared.label("shared"))
        .select_from(a)
        .join(
            b,
            and_(
                b.c.level == a.c.level,
                b.c.code != a.c.code,
                _in_generation(generation_id, b),
                func.ST_DWithin(a.c.geom, b.c.geom, _TOUCH_DEG),
            ),
        )
        .where(a.c.code == code, _in_generation(generation_id, a))
    )
    rows = conn.execute(query).mappings().all()
    out = [
        {
            "code": r["code"],
            "name": r["name"],
            "kind": r["kind"],
            "parent_code": r["parent_code"],
            "shared_boundary_m": round(r["shared"] or 0.0, 2),
        }
        for r in rows
    ]
    return sorted(out, key=lambda n: (-n["shared_boundary_m"], n["code"]))


def staff_of(conn: Connection, generation_id: int, codes: Sequence[str]) -> list[dict]:
    rows = conn.execute(
        select(STAFF.c.area_code, STAFF.c.name, STAFF.c.role, STAFF.c.phone)
        .where(STAFF.c.generation_id == generation_id, STAFF.c.area_code.in_(list(codes)))
        .order_by(STAFF.c.area_code, STAFF.c.id)
    )
    return [dict(r._mapping) for r in rows]


# -- incidents -------------------------------------------------------------------------
@dataclass(frozen=True)
class IncidentFilter:
    """Which incidents, and under which generation's assignment to read their areas."""

    generation_id: int | None = None  # None: the active generation
    bbox: Any = None
    start: datetime | None = None
    end: datetime | None = None
    category: Sequence[str] = ()
    status: Sequence[str] = ()
    source: Sequence[str] = ()
    handling_level: Sequence[str] = ()
    location_status: Sequence[str] = ()
    ids: Sequence[int] = ()
    area_level: str | None = None  # with area_code: incidents assigned to that area
    area_code: str | None = None
    #: The caller's scope: only incidents whose grid code starts with it (never the
    #: incidents outside every grid); None: no scope.
    area_prefix: str | None = None
    #: True: open (not handled yet) and past the deadline; False: every other incident.
    overdue: bool | None = None
    #: Dispatched to this staff member (roster id).
    assignee: int | None = None
    #: Dispatched to this department, or whistled (吹哨) to it.
    department: str | None = None


#: An incident's feature properties (besides its id and assignment).
INCIDENT_PROPERTIES = (*REPORTED_COLUMNS, *LOOP_COLUMNS, *LOCATION_OUTCOME_COLUMNS, "raw_crs")
#: An incident as the API documents it, with the time of every step of the loop.
INCIDENT_RECORD = (
    "id",
    *REPORTED_COLUMNS,
    *LOOP_COLUMNS,
    *[STEP_TIMESTAMP[status] for status in INCIDENT_STATUSES[1:]],
    *RAW_LOCATION_COLUMNS,
    *LOCATION_OUTCOME_COLUMNS,
    "created_at",
    # who handles it, by when, and the version a transition must name (migration 0009)
    "assignee_staff_id",
    "assignee_name",
    "department_code",
    "deadline_at",
    "version",
)


def _active_generation_id() -> ColumnElement:
    return select(Generation.id).where(Generation.is_active).scalar_subquery()


def _incidents(generation_id: int | None):
    """Incidents LEFT JOIN their assignment under one generation (default: the active one).

    The same join as the view ``incident_current``, for any generation: an
    earlier generation's rows are the assignment history.
    """
    gen = _active_generation_id() if generation_id is None else literal(generation_id)
    return INCIDENT.outerjoin(
        ASSIGNMENT,
        and_(ASSIGNMENT.c.incident_id == INCIDENT.c.id, ASSIGNMENT.c.generation_id == gen),
    )


def _incident_columns(names: Sequence[str]) -> list[ColumnElement]:
    return [INCIDENT.c[n] for n in names] + [ASSIGNMENT.c[n] for n in ASSIGNMENT_COLUMNS]


def _incident_properties() -> ColumnElement:
    pairs: list[Any] = ["id", INCIDENT.c.id]
    for name in INCIDENT_PROPERTIES:
        pairs += [name, INCIDENT.c[name]]
    for name in ASSIGNMENT_COLUMNS[:-1]:  # not assigned_at: the feature stays compact
        pairs += [name, ASSIGNMENT.c[name]]
    return func.json_build_object(*pairs)


_INCIDENT_FEATURE = {
    flip: _feature_text(INCIDENT.c.id, _geometry(INCIDENT.c.location, flip), _incident_properties())
    for flip in (False, True)
}


def _incident_where(f: IncidentFilter) -> list[ColumnElement]:
    where: list[ColumnElement] = []
    if f.bbox is not None:
        where.append(_in_bbox(INCIDENT.c.location, f.bbox))
    if f.start is not None:
        where.append(INCIDENT.c.reported_at >= f.start)
    if f.end is not None:
        where.append(INCIDENT.c.reported_at <= f.end)
    if f.category:
        # "04" selects the whole public-safety class, "0401" one item.
        where.append(or_(*[INCIDENT.c.category.startswith(c, autoescape=True) for c in f.category]))
    for name in ("status", "source", "handling_level", "location_status"):
        chosen = getattr(f, name)
        if chosen:
            where.append(INCIDENT.c[name].in_(list(chosen)))
    if f.ids:
        where.append(INCIDENT.c.id.in_(list(f.ids)))
    if f.area_code is not None:
        where.append(INCIDENT_CODE_COLUMN[f.area_level or "grid"] == f.area_code)
    if f.area_prefix is not None:
        where.append(code_in_scope(ASSIGNMENT.c.grid_code, f.area_prefix))
    if f.overdue is not None:
        late = overdue_now()
        where.append(late if f.overdue else ~late)
    if f.assignee is not None:
        where.append(INCIDENT.c.assignee_staff_id == f.assignee)
    if f.department is not None:
        whistled = select(WHISTLE.c.incident_id).where(
            WHISTLE.c.incident_id == INCIDENT.c.id, WHISTLE.c.department_code == f.department
        )
        where.append(or_(INCIDENT.c.department_code == f.department, whistled.exists()))
    return where or [true()]


def overdue_now() -> ColumnElement:
    """Open (nobody handled it yet) and past its deadline at the database's now.

    Never NULL, so that ``NOT`` of it selects every other incident (no deadline too).
    """
    return and_(
        INCIDENT.c.status.in_(OPEN_STATUSES),
        func.coalesce(INCIDENT.c.deadline_at < func.now(), false()),
    )


#: Longest unified code a column holds (String(32)).
CODE_LENGTH = 32


def code_in_scope(code: ColumnElement, prefix: str) -> ColumnElement:
    """``code`` starts with ``prefix`` (NULL — outside every grid — never does).

    Codes are ASCII digits only (the area table's check), so "starts with" is the range
    ``prefix <= code <= prefix || '99…9'``, which a B-tree index on the code can serve (a
    LIKE cannot under a non-C collation). The range alone, without a LIKE beside it: the
    planner would count the prefix twice (a street's 4 % of the incidents estimated at
    0.2 %) and, for the queue's first page, read every incident of the street instead of
    walking the deadline index. A code in the range starts with ``prefix`` whatever its
    characters, so nothing outside the scope is ever selected.
    """
    if not prefix.isascii() or not prefix.isdigit():
        return and_(code.startswith(prefix, autoescape=True))
    return and_(code >= prefix, code <= prefix + "9" * max(CODE_LENGTH - len(prefix), 0))


def incident_features(
    conn: Connection,
    f: IncidentFilter,
    limit: int,
    offset: int,
    lat_first: bool = False,
    newest_first: bool = False,
) -> tuple[int, list[str]]:
    """A page of incidents as GeoJSON Feature texts and the number matched."""
    where = _incident_where(f)
    source = _incidents(f.generation_id)
    order = (
        (INCIDENT.c.reported_at.desc().nulls_last(), INCIDENT.c.id.desc())
        if newest_first
        else (INCIDENT.c.id,)
    )
    query = select().select_from(source).where(*where).order_by(*order)
    count = select(func.count()).select_from(source).where(*where)
    return _page(conn, query, _INCIDENT_FEATURE[lat_first], limit, offset, count)


def incident_feature(conn: Connection, incident_id: int, lat_first: bool = False) -> str | None:
    return conn.execute(
        select(_INCIDENT_FEATURE[lat_first])
        .select_from(_incidents(None))
        .where(INCIDENT.c.id == incident_id)
    ).scalar_one_or_none()


def _record_query(generation_id: int | None) -> Select:
    return select(
        *_incident_columns(INCIDENT_RECORD),
        func.ST_X(INCIDENT.c.location).label("lon"),
        func.ST_Y(INCIDENT.c.location).label("lat"),
    ).select_from(_incidents(generation_id))


#: Orders of incident lists: newest report first (the API, Open311), or the nearest
#: deadline first (the console's queue: what is due or overdue comes on top).
INCIDENT_ORDERS = {
    "newest": (INCIDENT.c.reported_at.desc().nulls_last(), INCIDENT.c.id.desc()),
    "deadline": (INCIDENT.c.deadline_at.asc().nulls_last(), INCIDENT.c.id),
}


def incident_records(
    conn: Connection, f: IncidentFilter, limit: int, offset: int, order: str = "newest"
) -> list[dict]:
    """Incidents as dicts with WGS84 ``lon``/``lat``, in ``order`` (:data:`INCIDENT_ORDERS`)."""
    # The page's ids first, ordered by what narrow indexes hold (a scope of thousands is
    # ranked without reading its wide rows); then the wide rows of those ids only.
    page = (
        select(INCIDENT.c.id)
        .select_from(_incidents(f.generation_id))
        .where(*_incident_where(f))
        .order_by(*INCIDENT_ORDERS[order])
        .limit(limit)
        .offset(offset)
    )
    query = (
        _record_query(f.generation_id)
        .where(INCIDENT.c.id.in_(page.scalar_subquery()))
        .order_by(*INCIDENT_ORDERS[order])
    )
    return [dict(r) for r in conn.execute(query).mappings()]


def incident_status_counts(conn: Connection, f: IncidentFilter) -> dict[str, int]:
    """How many incidents ``f`` selects in each status (its own status filter left out), and
    how many of them are overdue (``"overdue"``): the queue's tabs.

    Filtered by scope and overdue alone (the queue as it opens), the counts are the kept
    ones (``app.db.kept_counts``) and only the overdue incidents are counted here —
    open ones past their deadline, through the partial index on open deadlines — since
    overdue depends on the moment; with any other filter every incident it selects is.
    """
    kept = _kept_status_counts(conn, f)
    if kept is None:
        return _counted_status_counts(conn, f)
    late: dict[str, int] = dict(
        conn.execute(
            select(INCIDENT.c.status, func.count())
            .select_from(_incidents(f.generation_id))
            .where(*_incident_where(replace(f, status=(), overdue=True)))
            .group_by(INCIDENT.c.status)
        ).all()
    )
    counts = dict.fromkeys(INCIDENT_STATUSES, 0)
    for status in INCIDENT_STATUSES:
        if f.overdue is None:
            counts[status] = kept.get(status, 0)
        elif f.overdue:
            counts[status] = late.get(status, 0)
        else:
            counts[status] = kept.get(status, 0) - late.get(status, 0)
    counts["overdue"] = 0 if f.overdue is False else sum(late.values())
    return counts


def _kept_status_counts(conn: Connection, f: IncidentFilter) -> dict[str, int] | None:
    """The kept counts of ``f``'s scope, if it filters by nothing else (overdue aside)."""
    if replace(f, status=(), overdue=None, area_prefix=None, generation_id=None) != (
        IncidentFilter()
    ):
        return None
    gen = _active_generation_id() if f.generation_id is None else literal(f.generation_id)
    scope = None
    if f.area_prefix is not None:
        scope = code_in_scope(incident_count.c.grid_code, f.area_prefix)
    return kept_counts.kept_status_counts(conn, gen, scope)


def _counted_status_counts(conn: Connection, f: IncidentFilter) -> dict[str, int]:
    """:func:`incident_status_counts` counted from the incidents, one query."""
    where = _incident_where(replace(f, status=()))
    rows = conn.execute(
        select(INCIDENT.c.status, func.count(), func.count().filter(overdue_now()))
        .select_from(_incidents(f.generation_id))
        .where(*where)
        .group_by(INCIDENT.c.status)
    ).all()
    counts = dict.fromkeys(INCIDENT_STATUSES, 0)
    counts.update({status: n for status, n, _ in rows})
    counts["overdue"] = sum(late for _, _, late in rows)
    return counts


def incident_grid(conn: Connection, incident_id: int) -> tuple[bool, str | None]:
    """(whether incident ``incident_id`` exists, its grid code under the active generation)."""
    row = conn.execute(
        select(ASSIGNMENT.c.grid_code)
        .select_from(_incidents(None))
        .where(INCIDENT.c.id == incident_id)
    ).first()
    return (False, None) if row is None else (True, row.grid_code)


def incident_record(conn: Connection, incident_id: int, lock: bool = False) -> dict | None:
    """One incident with its current assignment; ``lock`` takes a row lock for an update."""
    query = _record_query(None).where(INCIDENT.c.id == incident_id)
    if lock:
        query = query.with_for_update(of=INCIDENT)
    row = conn.execute(query).mappings().first()
    return None if row is None else dict(row)


def incident_id_by_external(conn: Connection, source: str, external_id: str) -> int | None:
    return conn.execute(
        select(INCIDENT.c.id).where(
            INCIDENT.c.source == source, INCIDENT.c.external_id == external_id
        )
    ).scalar_one_or_none()


def update_incident(
    conn: Connection, incident_id: int, values_: dict, stamped: str | None = None
) -> None:
    """Set ``values_``, and the timestamp column ``stamped`` (if given) to the database's now."""
    if stamped is not None:
        values_ = {**values_, stamped: func.now()}
    conn.execute(update(INCIDENT).where(INCIDENT.c.id == incident_id).values(**values_))


def log_status(
    conn: Connection,
    incident_id: int,
    from_status: str | None,
    to_status: str,
    from_level: str | None,
    to_level: str | None,
    note: str | None,
    api_key_id: int | None,
    user_id: int | None = None,
) -> None:
    conn.execute(
        insert(LOG).values(
            incident_id=incident_id,
            from_status=from_status,
            to_status=to_status,
            from_level=from_level,
            to_level=to_level,
            note=note,
            api_key_id=api_key_id,
            user_id=user_id,
        )
    )


def status_history(conn: Connection, incident_id: int) -> list[dict]:
    rows = conn.execute(
        select(
            LOG.c.from_status,
            LOG.c.to_status,
            LOG.c.from_level,
            LOG.c.to_level,
            LOG.c.note,
            LOG.c.at,
            LOG.c.action,
            LOG.c.departments,
            LOG.c.assignee_name,
            func.coalesce(USER.c.username, KEY.c.name, KEY.c.prefix).label("by"),
        )
        .select_from(
            LOG.outerjoin(KEY, KEY.c.id == LOG.c.api_key_id).outerjoin(
                USER, USER.c.id == LOG.c.user_id
            )
        )
        .where(LOG.c.incident_id == incident_id)
        .order_by(LOG.c.id)
    )
    return [dict(r._mapping) for r in rows]


def delete_incidents(conn: Connection, ids: Sequence[int]) -> int:
    return conn.execute(INCIDENT.delete().where(INCIDENT.c.id.in_(list(ids)))).rowcount


def incident_counts(
    conn: Connection, generation_id: int, level: str, code: str, area_prefix: str | None = None
) -> dict[str, int]:
    """Incidents assigned to an area under a generation (within a scope): all, and still open."""
    where = [INCIDENT_CODE_COLUMN[level] == code]
    if area_prefix is not None:
        where.append(code_in_scope(ASSIGNMENT.c.grid_code, area_prefix))
    row = conn.execute(
        select(func.count(), func.count().filter(INCIDENT.c.status.in_(OPEN_STATUSES)))
        .select_from(_incidents(generation_id))
        .where(*where)
    ).one()
    return {"total": row[0], "open": row[1]}


# -- statistics ------------------------------------------------------------------------
def incident_stats(
    conn: Connection,
    f: IncidentFilter,
    deadlines: tuple[list[str], list[int]],
    interval: str,
    now: datetime,
) -> dict[str, Any]:
    """Counts by category, status, source and period; overdue; handling levels."""
    where = _incident_where(f)
    source = _incidents(f.generation_id)
    return {
        "totals": _totals(conn, source, where, deadlines, now),
        "by_category": _grouped(conn, source, where, INCIDENT.c.category),
        "by_status": _grouped(conn, source, where, INCIDENT.c.status),
        "by_source": _grouped(conn, source, where, INCIDENT.c.source),
        "by_period": _by_period(conn, source, where, interval),
    }


def _totals(
    conn: Connection,
    source: Any,
    where: list[ColumnElement],
    deadlines: tuple[list[str], list[int]],
    now: datetime,
) -> dict[str, int]:
    codes, hours = deadlines
    table = values(column("code", String), column("hours", Integer), name="deadline").data(
        list(zip(codes, hours, strict=True)) or [("", 0)]
    )
    # The deadline stored with the incident (as the statistics report judges it); the
    # taxonomy in use only for rows stored without one.
    fallback = INCIDENT.c.reported_at + func.make_interval(0, 0, 0, 0, table.c.hours)
    due = func.coalesce(INCIDENT.c.deadline_at, fallback)
    unresolved = INCIDENT.c.status.in_(OPEN_STATUSES)
    level = INCIDENT.c.handling_level
    query = (
        select(
            func.count().label("total"),
            func.count().filter(unresolved).label("open"),
            func.count().filter(due.isnot(None)).label("with_deadline"),
            func.count().filter(unresolved, due < literal(now)).label("overdue_open"),
            func.count().filter(INCIDENT.c.handled_at > due).label("handled_late"),
            func.count().filter(INCIDENT.c.handled_at <= due).label("handled_on_time"),
            func.count().filter(level == "grid").label("grid"),
            func.count().filter(level == "community").label("community"),
            func.count().filter(level == "street").label("street"),
        )
        .select_from(source.outerjoin(table, table.c.code == INCIDENT.c.category))
        .where(*where)
    )
    return dict(conn.execute(query).mappings().one())


def _grouped(
    conn: Connection, source: Any, where: list[ColumnElement], column_: ColumnElement
) -> dict[str, int]:
    rows = conn.execute(
        select(column_, func.count())
        .select_from(source)
        .where(*where)
        .group_by(column_)
        .order_by(func.count().desc(), column_)
    )
    return {("" if key is None else str(key)): n for key, n in rows}


def _by_period(
    conn: Connection, source: Any, where: list[ColumnElement], interval: str
) -> list[dict]:
    local = func.timezone(LOCAL_TIMEZONE, INCIDENT.c.reported_at)
    bucket = func.date_trunc(interval, local).label("bucket")
    rows = conn.execute(
        select(bucket, func.count())
        .select_from(source)
        .where(*where, INCIDENT.c.reported_at.isnot(None))
        .group_by(bucket)
        .order_by(bucket)
    )
    return [{"period": b.date().isoformat(), "count": n} for b, n in rows]


def generation_info(conn: Connection, ref: str | None) -> repo.GenerationInfo | None:
    return repo.active_generation(conn) if ref is None else repo.get_generation(conn, ref)
