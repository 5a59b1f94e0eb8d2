"""Dependencies shared by the routers: state, database, API keys and query parameters.

Query parameters used by several resources (bbox, paging, time window, CRS,
generation, incident filters, the selection of the maps and analyses) are parsed
here once, with descriptions that become the OpenAPI documentation; the routers
receive parsed values.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Annotated, Final, Literal

from fastapi import Depends, Query, Request, Security
from fastapi.concurrency import run_in_threadpool
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from pydantic import AfterValidator
from sqlalchemy import Connection, Engine

from app.api.errors import outage
from app.api.session import SESSION_COOKIE, cookie_session
from app.config import ApiSettings, Settings
from app.db import queries, repo
from app.errors import AuthenticationError, NotFoundError, NotReadyError, PermissionDeniedError
from app.maps.page_cache import PageCache
from app.services.analysis import Selection
from app.services.data_version import DataVersion
from app.services.incidents import GazetteerCache
from app.services.map_data import MapDataCache
from app.services.registry import AreaRegistry
from app.services.security import Principal, authenticate
from app.services.taxonomy import Taxonomy
from gis.errors import ValidationError
from gis.times import window_time_problem
from gis.vocabulary import HANDLING_LEVELS, INCIDENT_STATUSES, LOCAL_TZ, LOCATION_STATUSES


@dataclass
class AppState:
    """Everything the lifespan opens, shared by all requests: one field per service."""

    settings: Settings
    engine: Engine
    #: The data version the lookup index and the map data are checked against.
    version: DataVersion
    #: The lookup index of the active generation (and a few others).
    registry: AreaRegistry
    #: Map data per generation, for the map pages and the analysis endpoints.
    map_data: MapDataCache
    #: Built map pages.
    pages: PageCache
    taxonomy: Taxonomy
    #: Address points for incidents reported without coordinates.
    gazetteer: GazetteerCache

    @property
    def api(self) -> ApiSettings:
        return self.settings.api


async def get_state(request: Request) -> AppState:
    return request.app.state.gridmap


StateDep = Annotated[AppState, Depends(get_state)]


def get_conn(request: Request, state: StateDep) -> Iterator[Connection]:
    """A pooled connection for one request (reads; writes open their own transaction)."""
    with state.engine.connect() as conn:
        outage(request.app).came_back()  # connected: any outage is over
        yield conn


ConnDep = Annotated[Connection, Depends(get_conn)]


def checked_generation_ref(ref: str | None) -> str | None:
    """``ref`` unless it is digits other than ASCII ones (``²``, ``٣``): ids are 0-9 only."""
    if ref is not None and any(c.isdigit() and not c.isascii() for c in ref):
        raise ValidationError(
            f"generation {ref!r}: give a label or an id in ASCII digits (0-9); see GET /generations"
        )
    return ref


def resolve_generation(conn: Connection, ref: str | None) -> repo.GenerationInfo:
    """Generation ``ref`` (label or id), or the active one."""
    gen = queries.generation_info(conn, checked_generation_ref(ref))
    if gen is None and ref is not None:
        raise NotFoundError(f"no generation {ref!r}; see GET /generations")
    if gen is None:
        raise NotReadyError(
            "no active generation: import areas (gridmap areas import) or "
            "load the demo (gridmap demo) first"
        )
    return gen


# -- API keys --------------------------------------------------------------------------
_api_key_header = APIKeyHeader(
    name="X-API-Key",
    auto_error=False,
    scheme_name="ApiKey",
    description="An API key from `gridmap keys create --role viewer|operator|admin`.",
)
_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="Bearer",
    description="The same API key as `Authorization: Bearer <key>`.",
)


async def get_principal(
    request: Request,
    state: StateDep,
    key: Annotated[str | None, Security(_api_key_header)],
    bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
) -> Principal | None:
    """The caller: an API key (X-API-Key or Bearer), else the session cookie; None if neither.

    Also kept as ``request.state.principal`` (the audit of writes reads it). A
    session's unsafe requests must carry its CSRF token (see ``app.api.session``).
    """
    token = key or (bearer.credentials if bearer else None)
    if token:
        request.state.credential = token[:9]  # the prefix, for the audit of refused keys
        principal = await run_in_threadpool(authenticate, state.engine, token)
        if principal is None:
            raise AuthenticationError(
                "the API key is unknown or revoked; ask an admin for a key "
                "(gridmap keys create --role viewer)"
            )
    elif SESSION_COOKIE in request.cookies:
        principal = await cookie_session(request, state.engine, state.api)
    else:
        principal = None  # no database round trip for anonymous reads
    request.state.principal = principal
    return principal


PrincipalDep = Annotated[Principal | None, Depends(get_principal)]


def requires(role: str) -> Callable:
    """A dependency that lets through keys with ``role`` or a stronger one."""

    async def check(principal: PrincipalDep) -> Principal:
        return check_role(principal, role)

    check.__name__ = f"requires_{role}"
    return check


def check_role(principal: Principal | None, role: str) -> Principal:
    if principal is None:
        raise AuthenticationError(
            f"请先登录 / this needs the {role} role: sign in at /login, or send an API key "
            f"in the X-API-Key header (or Authorization: Bearer <key>); an admin creates "
            f"users with `gridmap users create` and keys with `gridmap keys create --role {role}`"
        )
    if not principal.allows(role):
        who = (
            f"the user {principal.prefix}"
            if principal.user_id is not None
            else f"the key {principal.prefix}…"
        )
        raise PermissionDeniedError(
            f"this needs the {role} role; {who} has the {principal.role} role"
        )
    return principal


ViewerDep = Annotated[Principal, Depends(requires("viewer"))]
OperatorDep = Annotated[Principal, Depends(requires("operator"))]
AdminDep = Annotated[Principal, Depends(requires("admin"))]


# -- coordinates -----------------------------------------------------------------------
CrsName = Literal["wgs84", "cgcs2000", "gcj02", "bd09"]
CRS_DESCRIPTION = (
    "Coordinate system of lon/lat: `wgs84` (GPS, EPSG:4326), `cgcs2000` (official survey "
    "data, EPSG:4490; treated as WGS84, they differ by centimetres), `gcj02` (Amap/Gaode, "
    "Tencent, WeChat `type: 'gcj02'`) or `bd09` (Baidu)."
)
Lon = Annotated[
    float, Query(ge=-180, le=180, description="Longitude in degrees.", examples=[113.8422])
]
Lat = Annotated[float, Query(ge=-90, le=90, description="Latitude in degrees.", examples=[34.0663])]


ToleranceParam = Annotated[
    float,
    Query(
        ge=0,
        description="Snap points outside every grid to the nearest grid within this many "
        "metres (GPS noise; 20–50 m is usual); 0 disables snapping. At most "
        "GRIDMAP_MAX_TOLERANCE_M (default 500).",
    ),
]


async def tolerance_param(state: StateDep, tolerance: ToleranceParam = 0.0) -> float:
    return checked_tolerance(tolerance, state.api.max_tolerance_m)


def checked_tolerance(tolerance: float, limit: float) -> float:
    if not math.isfinite(tolerance) or tolerance > limit:
        raise ValidationError(
            f"tolerance must be between 0 and {limit:g} metres, got {tolerance:g}"
        )
    return tolerance


ToleranceDep = Annotated[float, Depends(tolerance_param)]
GenerationParam = Annotated[
    str | None,
    AfterValidator(checked_generation_ref),
    Query(
        max_length=100,
        pattern=r"^[^\x00]+$",
        description="Generation (boundary set) by label or id; default: the active one.",
    ),
]


# -- bbox ------------------------------------------------------------------------------
CRS84: Final = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
EPSG4326: Final = "http://www.opengis.net/def/crs/EPSG/0/4326"
EPSG4490: Final = "http://www.opengis.net/def/crs/EPSG/0/4490"
OgcCrs = Literal[
    "http://www.opengis.net/def/crs/OGC/1.3/CRS84",
    "http://www.opengis.net/def/crs/EPSG/0/4326",
    "http://www.opengis.net/def/crs/EPSG/0/4490",
]
#: CRS URIs whose axis order is latitude, longitude (EPSG's definition).
LAT_FIRST = {EPSG4326, EPSG4490}
_NUMBER = r"\s*[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?\s*"
BBOX_PATTERN = rf"^{_NUMBER}(,{_NUMBER}){{3}}((,{_NUMBER}){{2}})?$"


@dataclass(frozen=True)
class BBox:
    """A WGS84 box; ``minx > maxx`` means it crosses the antimeridian."""

    minx: float
    miny: float
    maxx: float
    maxy: float


async def bbox_param(
    bbox: Annotated[
        str | None,
        Query(
            pattern=BBOX_PATTERN,
            description="Only features intersecting this box: `minx,miny,maxx,maxy` (6 numbers "
            "with heights are accepted, heights ignored). Longitude/latitude in CRS84 "
            "by default; see `bbox-crs` for the axis order of the EPSG systems.",
            examples=["113.80,34.02,113.84,34.05"],
        ),
    ] = None,
    bbox_crs: Annotated[
        OgcCrs,
        Query(
            alias="bbox-crs",
            description="CRS of `bbox`: CRS84 (lon,lat; default), EPSG:4326 (WGS84) or "
            "EPSG:4490 (CGCS2000). Both EPSG systems order axes latitude first: "
            "`minlat,minlon,maxlat,maxlon`.",
        ),
    ] = CRS84,
) -> BBox | None:
    if bbox is None:
        return None
    return parse_bbox(bbox, bbox_crs)


def parse_bbox(text: str, crs: str = CRS84) -> BBox:
    values = [float(v) for v in text.split(",")]
    if not all(math.isfinite(v) for v in values):
        raise ValidationError("bbox values must be finite numbers")
    if len(values) == 6:
        values = [values[0], values[1], values[3], values[4]]
    a, b, c, d = values
    lon0, lat0, lon1, lat1 = (b, a, d, c) if crs in LAT_FIRST else (a, b, c, d)
    hint = (
        " (EPSG:4326 and EPSG:4490 put latitude first; use bbox-crs=CRS84 for lon,lat order)"
        if crs in LAT_FIRST
        else ""
    )
    if not (
        -90 <= lat0 <= 90 and -90 <= lat1 <= 90 and -180 <= lon0 <= 180 and -180 <= lon1 <= 180
    ):
        raise ValidationError(
            f"bbox out of range: longitudes must be within ±180 and latitudes within ±90{hint}"
        )
    if lat0 > lat1:
        raise ValidationError(
            f"bbox: the lower latitude {lat0:g} is above the upper latitude {lat1:g}{hint}"
        )
    return BBox(lon0, lat0, lon1, lat1)


BBoxDep = Annotated[BBox | None, Depends(bbox_param)]


# -- paging ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Page:
    limit: int
    offset: int


async def page_param(
    limit: Annotated[
        int, Query(ge=1, le=10_000, description="Features per page (at most 10,000).")
    ] = 10,
    offset: Annotated[
        int,
        Query(
            ge=0,
            le=1_000_000_000,
            description="Features to skip; the `next` and `prev` links carry it.",
        ),
    ] = 0,
) -> Page:
    return Page(limit, offset)


PageDep = Annotated[Page, Depends(page_param)]


# -- time window -----------------------------------------------------------------------
@dataclass(frozen=True)
class TimeWindow:
    """Closed interval [start, end]; None: unbounded on that side."""

    start: datetime | None = None
    end: datetime | None = None

    @property
    def bounded(self) -> bool:
        return self.start is not None or self.end is not None


DATETIME_DESCRIPTION = (
    "Report time: an instant, a date, or an interval `start/end` with `..` (or nothing) for an "
    "open end, in RFC 3339 (`2023-03-01T08:00:00+08:00`, `2023-03-01T00:00:00Z`) or as dates "
    "(`2023-03-01/2023-03-31`: whole days). Times without an offset are China Standard Time."
)


async def datetime_param(
    datetime_: Annotated[
        str | None,
        Query(
            alias="datetime",
            max_length=100,
            description=DATETIME_DESCRIPTION,
            examples=["2023-03-01/2023-03-31"],
        ),
    ] = None,
) -> TimeWindow:
    return parse_interval(datetime_) if datetime_ else TimeWindow()


def parse_interval(text: str) -> TimeWindow:
    """Parse an OGC ``datetime`` value (instant, date or interval)."""
    parts = text.split("/")
    if len(parts) > 2:
        raise ValidationError(f"datetime {text!r}: use an instant or one 'start/end' interval")
    if len(parts) == 1:
        start, end = _instant(parts[0], "start"), _instant(parts[0], "end")
        if start is None:
            raise ValidationError("datetime: give an instant, a date or an interval")
        return TimeWindow(start, end)
    window = TimeWindow(_instant(parts[0], "start"), _instant(parts[1], "end"))
    if window.start and window.end and window.start > window.end:
        raise ValidationError(f"datetime {text!r}: the start is after the end")
    return window


def _in_window_range(moment: datetime | None, name: str) -> datetime | None:
    problem = None if moment is None else window_time_problem(moment, name)
    if problem is not None:
        raise ValidationError(problem)
    return moment


_DATE_ONLY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _instant(text: str, side: str) -> datetime | None:
    text = text.strip()
    if text in ("", ".."):
        return None
    try:
        if _DATE_ONLY.match(text):
            day = date.fromisoformat(text)
            moment = datetime.combine(day, time.min, LOCAL_TZ)
            # A date as the end of an interval means up to the end of that day.
            if side == "end":
                moment += timedelta(days=1, microseconds=-1)
        else:
            moment = datetime.fromisoformat(text)
    except (ValueError, OverflowError):
        raise ValidationError(
            f"datetime: {text!r} is not an RFC 3339 time or a date "
            "(e.g. 2023-03-01T08:00:00+08:00 or 2023-03-01)"
        ) from None
    return _in_window_range(moment if moment.tzinfo else moment.replace(tzinfo=LOCAL_TZ), side)


TimeWindowDep = Annotated[TimeWindow, Depends(datetime_param)]


# -- incident filters ------------------------------------------------------------------
_SOURCE = "[a-z][a-z0-9_]{1,63}"


def list_pattern(words: Sequence[str]) -> str:
    """The pattern of a comma-separated list of ``words``."""
    one = "|".join(words)
    return rf"^({one})(,({one}))*$"


@dataclass(frozen=True)
class IncidentQuery:
    """Property filters on incidents; each accepts a comma-separated list."""

    category: tuple[str, ...] = ()
    status: tuple[str, ...] = ()
    source: tuple[str, ...] = ()
    handling_level: tuple[str, ...] = ()
    location_status: tuple[str, ...] = ()
    overdue: bool | None = None
    assignee: int | None = None
    department: str | None = None

    def to_filter(
        self, window: TimeWindow, bbox: BBox | None = None, **more
    ) -> queries.IncidentFilter:
        """The SQL filter: these properties, a time window, a bbox and ``more`` fields."""
        return queries.IncidentFilter(
            bbox=bbox,
            start=window.start,
            end=window.end,
            category=self.category,
            status=self.status,
            source=self.source,
            handling_level=self.handling_level,
            location_status=self.location_status,
            overdue=self.overdue,
            assignee=self.assignee,
            department=self.department,
            **more,
        )


CategoryParam = Annotated[
    str | None,
    Query(
        pattern=r"^\d{1,16}(,\d{1,16})*$",
        description="Category codes, comma-separated; a major class code (e.g. `04`, public "
        "safety) selects all its items.",
        examples=["0401,0402"],
    ),
]
SourceParam = Annotated[
    str | None,
    Query(
        pattern=rf"^{_SOURCE}(,{_SOURCE})*$",
        description="Sources, comma-separated (hotline_12345, police_110, patrol, resident, "
        "petition, other, …).",
        examples=["hotline_12345"],
    ),
]


def _split(value: str | None) -> tuple[str, ...]:
    return tuple(v for v in value.split(",") if v) if value else ()


async def incident_query(
    category: CategoryParam = None,
    status: Annotated[
        str | None,
        Query(
            pattern=list_pattern(INCIDENT_STATUSES),
            description="Closed-loop statuses, comma-separated.",
            examples=["registered,dispatched"],
        ),
    ] = None,
    source: SourceParam = None,
    handling_level: Annotated[
        str | None,
        Query(
            pattern=list_pattern(HANDLING_LEVELS),
            description="Handling levels, comma-separated: grid (self-handled), community, "
            "street (escalated).",
        ),
    ] = None,
    location_status: Annotated[
        str | None,
        Query(
            pattern=list_pattern(LOCATION_STATUSES),
            description="How the incident was located, comma-separated.",
        ),
    ] = None,
    overdue: Annotated[
        bool | None,
        Query(
            description="`true`: only incidents still open (not handled) past their deadline "
            "(reported time + the category's deadline); `false`: only the others.",
        ),
    ] = None,
    assignee: Annotated[
        int | None,
        Query(ge=1, le=2**63 - 1, description="Dispatched to this staff member (roster id)."),
    ] = None,
    department: Annotated[
        str | None,
        Query(
            pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$",
            description="Dispatched to this department, or whistled (吹哨) to it.",
        ),
    ] = None,
) -> IncidentQuery:
    return IncidentQuery(
        _split(category),
        _split(status),
        _split(source),
        _split(handling_level),
        _split(location_status),
        overdue,
        assignee,
        department,
    )


IncidentQueryDep = Annotated[IncidentQuery, Depends(incident_query)]


# -- incident selection of the maps and analyses --------------------------------------
async def selection_query(
    start: Annotated[
        str | None,
        Query(
            max_length=40,
            description="Incidents reported from this time on (inclusive): a date "
            "(`2023-03-01`) or an RFC 3339 time; without an offset, China Standard Time.",
            examples=["2023-01-01"],
        ),
    ] = None,
    end: Annotated[
        str | None,
        Query(
            max_length=40,
            description="Incidents reported before this time (exclusive).",
            examples=["2023-07-01"],
        ),
    ] = None,
    category: CategoryParam = None,
    source: SourceParam = None,
) -> Selection:
    """A half-open window ``[start, end)``, unlike ``datetime``: it is what Gi* compares."""
    selection = Selection.parse(start, end, category, source)
    _in_window_range(selection.start, "start")
    _in_window_range(selection.end, "end")
    return selection


SelectionDep = Annotated[Selection, Depends(selection_query)]
OutputCrs = Annotated[
    OgcCrs,
    Query(
        description="CRS of the returned coordinates: CRS84 (lon,lat; default), EPSG:4326 or "
        "EPSG:4490, both with latitude first as EPSG defines them."
    ),
]
