"""Request and response models: they document the API (OpenAPI at /docs) and check input."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

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
    name: str
    role: str
    phone: str | None = None


class AreaRef(BaseModel):
    code: str
    name: str | None = None
    kind: str | None = None
    staff: list[StaffMember] | None = None


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
    street: AreaRef | None
    community: AreaRef | None
    grid: AreaRef | None = Field(description="With the grid's staff.")
    micro_grid: AreaRef | None = Field(description="With the micro-grid's staff.")


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
    street_code: list[str | None]
    community_code: list[str | None]
    grid_code: list[str | None]
    micro_grid_code: list[str | None]
    status: list[AssignStatus]
    distance_m: list[float | None]


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


class TransitionIn(BaseModel):
    """A step of the closed loop, or an escalation of the handling level."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"status": "dispatched", "handling_level": "community", "note": "需社区协调物业"}
            ]
        }
    )

    status: Status = Field(
        description=(
            "The next step (reported → registered → dispatched → handled → verified → closed); "
            "`dispatched` from `handled` when verification fails; the current status to only "
            "escalate the handling level."
        )
    )
    handling_level: HandlingLevel | None = Field(
        default=None,
        description=(
            "Who handles it: grid (self-handled), community or street (escalated). Set at "
            "registration or dispatch; it can only go up."
        ),
    )
    note: Text | None = Field(
        default=None, max_length=2000, description="Why: kept in the incident's history."
    )


class StatusStep(BaseModel):
    from_status: str | None
    to_status: str
    from_level: str | None
    to_level: str | None
    note: str | None
    at: datetime


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
    deadline_at: datetime | None = Field(description="reported_at + the category's deadline.")
    overdue: bool | None = Field(
        description="Not handled by the deadline (still open past it, or handled after it)."
    )
    location: LonLat | None = Field(description="WGS84; null when unlocated.")
    raw: dict[str, Any] = Field(description="Coordinates as received, with their CRS.")
    location_status: LocationStatus
    unlocated_reason: str | None
    assignment: Assignment
    history: list[StatusStep] | None = None


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
