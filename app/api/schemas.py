"""Request and response models: they document the API (OpenAPI at /docs) and check input."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from app.api.deps import CRS_DESCRIPTION, CrsName, checked_generation_ref
from gis.vocabulary import AssignStatus, HandlingLevel, IncidentStatus, LocationStatus


def _no_nul(value: str) -> str:
    # PostgreSQL text cannot hold NUL, nor UTF-8 a lone surrogate ("\ud800" in JSON):
    # refuse both here with a clear message.
    if "\x00" in value:
        raise ValueError("text must not contain NUL characters")
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError("text must be valid Unicode (a lone surrogate is not)") from None
    return value


def _generation_ref(value: str) -> str:
    checked_generation_ref(value)
    return value


Text = Annotated[str, AfterValidator(_no_nul)]
#: A generation label or an id in ASCII digits.
GenerationText = Annotated[str, AfterValidator(_no_nul), AfterValidator(_generation_ref)]
#: Numbers are numbers: no strings or booleans coerced, no NaN or infinity.
Number = Annotated[float, Field(strict=True, allow_inf_nan=False)]
Status = IncidentStatus


# -- GeoJSON and OGC API – Features ----------------------------------------------------
class Link(BaseModel):
    href: str
    rel: str
    type: str | None = None
    title: str | None = None


class Feature(BaseModel):
    type: Literal["Feature"]
    id: str | int | None = None
    geometry: dict[str, Any] | None
    properties: dict[str, Any] | None
    links: list[Link] | None = None


class FeatureCollection(BaseModel):
    type: Literal["FeatureCollection"]
    features: list[Feature]
    numberMatched: int | None = None
    numberReturned: int
    timeStamp: str | None = None
    links: list[Link] = []


class LandingPage(BaseModel):
    title: str
    description: str
    links: list[Link]


class Conformance(BaseModel):
    conformsTo: list[str]


class Extent(BaseModel):
    spatial: dict[str, Any] | None = None
    temporal: dict[str, Any] | None = None


class Collection(BaseModel):
    id: str
    title: str
    description: str
    itemType: str = "feature"
    crs: list[str]
    storageCrs: str
    extent: Extent | None = None
    links: list[Link]


class Collections(BaseModel):
    collections: list[Collection]
    links: list[Link]


# -- areas and lookup ------------------------------------------------------------------
class StaffMember(BaseModel):
    """A grid's staff member; anonymous callers get what GRIDMAP_PUBLIC_STAFF publishes
    (no name with `roles`) and never a phone."""

    name: str | None = None
    role: str
    phone: str | None = None


class AreaRef(BaseModel):
    code: str
    name: str | None = None
    kind: str | None = None
    staff: list[StaffMember] | None = None


class ThemeUnitRef(BaseModel):
    """A unit of a thematic layer: the department's own code and name."""

    code: str
    name: str | None = None


class GenerationRef(BaseModel):
    id: int
    label: str


class LonLat(BaseModel):
    lon: float
    lat: float


class LookupResult(BaseModel):
    """The hierarchy containing one point (MapIt's point → areas)."""

    lon: float = Field(description="Longitude as given.")
    lat: float = Field(description="Latitude as given.")
    crs: CrsName
    wgs84: LonLat = Field(description="The point in WGS84, as matched against the areas.")
    generation: GenerationRef
    status: AssignStatus = Field(
        description="Of the grid: inside, on a grid `boundary`, "
        "`snapped` within the tolerance, or `outside` "
        "every grid (a coverage gap)."
    )
    distance_m: float | None = Field(
        description="0 inside or on the boundary, metres when snapped, null outside."
    )
    district: AreaRef | None = Field(
        default=None, description="The district (county-level division) holding the street."
    )
    street: AreaRef | None
    community: AreaRef | None
    grid: AreaRef | None = Field(description="With the grid's staff.")
    micro_grid: AreaRef | None = Field(description="With the micro-grid's staff.")
    themes: dict[str, ThemeUnitRef | None] = Field(
        default_factory=dict,
        description="Thematic layers (多格合一) of the generation: theme (police, market, "
        "party, mediation …) → its unit covering the point, null outside every unit; "
        "`{}` without themes. Units are served as OGC collections `layer_{theme}`.",
        examples=[{"police": {"code": "P07", "name": "城关派出所"}, "market": None}],
    )


class LookupBatch(BaseModel):
    """Points as two parallel arrays; a null coordinate gives an `outside` answer."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"lon": [113.8422, 113.83], "lat": [34.0663, 34.03], "crs": "wgs84"}]
        }
    )

    lon: list[Number | None] = Field(description="Longitudes in degrees.")
    lat: list[Number | None] = Field(description="Latitudes in degrees, as many as `lon`.")
    crs: CrsName = Field(default="wgs84", description=CRS_DESCRIPTION)
    tolerance: Number = Field(default=0.0, ge=0, description="Snapping tolerance in metres.")
    generation: GenerationText | None = Field(
        default=None, max_length=100, description="Generation label or id; default: active."
    )


class LookupBatchResult(BaseModel):
    """One array per answer, aligned with the input points."""

    generation: GenerationRef
    crs: CrsName
    count: int
    district_code: list[str | None] = Field(default_factory=list)
    street_code: list[str | None]
    community_code: list[str | None]
    grid_code: list[str | None]
    micro_grid_code: list[str | None]
    status: list[AssignStatus]
    distance_m: list[float | None]
    themes: dict[str, list[str | None]] = Field(
        default_factory=dict,
        description="Thematic layers (多格合一): theme → the unit code covering each point "
        "(null outside every unit), aligned with the input like the other arrays.",
        examples=[{"police": ["P07", None]}],
    )


class Neighbour(BaseModel):
    code: str
    name: str | None
    kind: str | None
    parent_code: str | None
    shared_boundary_m: float = Field(
        description="Length of the common boundary in metres (≈0 when only a corner is shared)."
    )


class Neighbours(BaseModel):
    code: str
    level: str
    generation: GenerationRef
    neighbours: list[Neighbour]


class GenerationOut(BaseModel):
    id: int
    label: str
    is_active: bool
    created_at: datetime
    activated_at: datetime | None
    note: str | None
    counts: dict[str, int] = Field(description="Areas per level.")


class ActivationResult(BaseModel):
    generation: str
    assigned: int = Field(description="Incidents re-assigned to the generation's areas.")
    by_status: dict[str, int]


# -- incidents -------------------------------------------------------------------------
class IncidentIn(BaseModel):
    """A new incident; coordinates, an address, or both."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "source": "resident",
                    "external_id": "wx-20230301-0001",
                    "category": "0401",
                    "description": "楼道内电动车飞线充电",
                    "lon": 113.848097,
                    "lat": 34.064786,
                    "crs": "gcj02",
                }
            ]
        }
    )

    source: str = Field(
        pattern=r"^[a-z][a-z0-9_]{1,63}$",
        description=(
            "Channel: hotline_12345, police_110, patrol, resident, petition, other, or a name "
            "of yours (lower-case letters, digits, _)."
        ),
    )
    external_id: Text = Field(
        min_length=1,
        max_length=128,
        description=(
            "The id in the source system; (source, external_id) makes creation idempotent."
        ),
    )
    category: Text = Field(
        min_length=1,
        max_length=64,
        description=(
            "Taxonomy item code (e.g. 0401) or its Chinese or English name; see "
            "/open311/v2/services.json."
        ),
    )
    description: Text | None = Field(
        default=None, max_length=4000, description="What was reported, in the reporter's words."
    )
    address: Text | None = Field(
        default=None,
        max_length=500,
        description=("Used to geocode against the gazetteer when there are no coordinates."),
    )
    reported_at: datetime | None = Field(
        default=None,
        description=("When it was reported; default now. Without an offset: China Standard Time."),
    )
    lon: Number | None = Field(
        default=None, ge=-180, le=180, description="Longitude in `crs`; omit to geocode `address`."
    )
    lat: Number | None = Field(default=None, ge=-90, le=90, description="Latitude in `crs`.")
    crs: CrsName = Field(default="wgs84", description=CRS_DESCRIPTION)
    tolerance: Number = Field(default=0.0, ge=0, description="Snapping tolerance in metres.")


#: A department code as `gridmap departments import` stores it.
DepartmentCode = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]


class TransitionIn(BaseModel):
    """A step of the closed loop, an escalation, a dispatch to someone, or a whistle (吹哨)."""

    model_config = ConfigDict(
        extra="forbid",  # a misspelt field must not be ignored with a 200
        json_schema_extra={
            "examples": [
                {"status": "dispatched", "handling_level": "community", "note": "需社区协调物业"},
                {"status": "dispatched", "assignee": 1234, "version": 3},
                {"action": "whistle", "departments": ["CGJ", "SJJ"], "version": 5},
                {"status": "handled", "department": "CGJ", "note": "已清理", "version": 6},
            ]
        },
    )

    action: Literal["step", "whistle"] = Field(
        default="step",
        description="`step` (default): move to `status`. `whistle` (吹哨): the street calls "
        "`departments` in; only when the handling level is street.",
    )
    status: Status | None = Field(
        default=None,
        description=(
            "The next step (reported → registered → dispatched → handled → verified → closed); "
            "`dispatched` from `handled` when verification fails; the current status to only "
            "escalate the handling level, or `dispatched` again with a new assignee or "
            "department. Required for a step, absent for a whistle."
        ),
    )
    handling_level: HandlingLevel | None = Field(
        default=None,
        description=(
            "Who handles it: grid (self-handled), community or street (escalated). Set at "
            "registration or dispatch; it can only go up."
        ),
    )
    assignee: int | None = Field(
        default=None,
        ge=1,
        le=2**63 - 1,
        description="With status `dispatched`: the staff member (roster id) who handles it; "
        "must serve the incident's grid (or one of its micro-grids).",
    )
    department: DepartmentCode | None = Field(
        default=None,
        description="With status `dispatched`: the department that handles it. With status "
        "`handled`: the whistled department reporting in (报到) by handling it; the incident "
        "is handled when the last whistled department has reported.",
    )
    departments: list[DepartmentCode] | None = Field(
        default=None,
        min_length=1,
        max_length=20,
        description="With action `whistle`: the departments called in.",
    )
    version: int | None = Field(
        default=None,
        ge=1,
        le=2**31 - 1,
        description="The incident's `version` this action was decided on (or send it as "
        "`If-Match`); if someone changed the incident since, the action is refused with 409 "
        "and what it is now.",
    )
    note: Text | None = Field(
        default=None, max_length=2000, description="Why: kept in the incident's history."
    )

    @model_validator(mode="after")
    def _one_action(self) -> TransitionIn:
        if self.action == "whistle":
            if not self.departments:
                raise ValueError("a whistle names the departments called in (departments)")
            if self.status is not None or self.assignee is not None or self.department:
                raise ValueError(
                    "a whistle takes departments (and note, version) only, not status, "
                    "assignee or department"
                )
        else:
            if self.status is None:
                raise ValueError("give the status to move to (or action: whistle)")
            if self.departments is not None:
                raise ValueError("departments go with action whistle")
        return self


class StatusStep(BaseModel):
    from_status: str | None
    to_status: str
    from_level: str | None
    to_level: str | None
    note: str | None
    at: datetime
    action: str | None = Field(
        default=None,
        description="advance, escalate, reopen, reassign, whistle (吹哨), report_in (报到), "
        "or archive: a step an imported record carries a time for, taken before the import "
        "(nobody here is named for it).",
    )
    departments: list[str] | None = Field(
        default=None, description="Departments dispatched to, whistled or reporting in."
    )
    assignee_name: str | None = Field(default=None, description="The staff member dispatched to.")
    by: str | None = Field(
        default=None, description="Who took the step: a user's name, or an API key's name."
    )


class Assignee(BaseModel):
    staff_id: int | None = Field(description="Roster id; null once the roster was replaced.")
    name: str | None


class DepartmentRef(BaseModel):
    code: str
    name: str | None


class Whistle(BaseModel):
    """A department the street called in (吹哨) and when it reported in (报到)."""

    department: DepartmentRef
    whistled_at: datetime
    reported_at: datetime | None
    report_note: str | None


class AssigneeOut(BaseModel):
    """A staff member a dispatch may name (no phone: see the roster for that)."""

    id: int = Field(description="Roster id: the `assignee` of a dispatch.")
    name: str
    role: str
    area_code: str = Field(description="The grid, or one of its micro-grids.")


class DepartmentOut(BaseModel):
    code: str
    name: str
    contact: str | None


class Assignment(BaseModel):
    generation_id: int | None
    status: AssignStatus | None
    distance_m: float | None
    assigned_at: datetime | None
    street: AreaRef | None
    community: AreaRef | None
    grid: AreaRef | None
    micro_grid: AreaRef | None


class IncidentOut(BaseModel):
    id: int
    source: str
    external_id: str
    category: str | None
    category_name: str | None
    description: str | None
    address: str | None
    reported_at: datetime | None
    status: Status
    handling_level: HandlingLevel | None
    timestamps: dict[str, datetime | None] = Field(description="When each step was reached.")
    deadline_at: datetime | None = Field(
        description="reported_at + the deadline of its category (in its taxonomy version)."
    )
    overdue: bool | None = Field(
        description="Still open (not handled) and past the deadline now; what "
        "`overdue=true` selects. Null without a deadline."
    )
    handled_late: bool | None = Field(
        default=None,
        description="Handled after the deadline; null when not handled yet or without one.",
    )
    version: int = Field(
        default=1, description="Raised by every transition; send it back with the next one."
    )
    assignee: Assignee | None = Field(default=None, description="The staff member handling it.")
    department: DepartmentRef | None = Field(
        default=None, description="The department it was dispatched to."
    )
    whistled: list[Whistle] = Field(
        default_factory=list, description="Departments whistled for it (吹哨报到)."
    )
    location: LonLat | None = Field(description="WGS84; null when unlocated.")
    raw: dict[str, Any] = Field(description="Coordinates as received, with their CRS.")
    location_status: LocationStatus
    unlocated_reason: str | None
    assignment: Assignment
    photos: list[str] = Field(
        default_factory=list,
        description="Absolute URLs of its photos, oldest first (GET them with a key or the "
        "session, within scope); added by POST /incidents/{id}/photos or the console's report.",
    )
    history: list[StatusStep] | None = None


class PhotosOut(BaseModel):
    incident_id: int
    stored: list[str] = Field(description="URLs of the photos of this upload.")
    photos: list[str] = Field(description="URLs of all the incident's photos, oldest first.")


class GridStats(BaseModel):
    code: str
    level: str
    name: str | None
    window: dict[str, datetime | None]
    totals: dict[str, int]
    overdue: dict[str, Any]
    handling: dict[str, Any]
    by_category: list[dict[str, Any]]
    by_status: dict[str, int]
    by_source: dict[str, int]
    by_period: list[dict[str, Any]]
