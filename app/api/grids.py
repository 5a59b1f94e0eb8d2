"""One area by its unified code: properties, staff, children, neighbours, incidents, stats.

The path says grids, the most asked-for level, but any level's code works: a
community's children are its grids, a street's statistics cover its incidents.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Request

from app.api.deps import (
    BBoxDep,
    ConnDep,
    GenerationParam,
    IncidentQueryDep,
    PageDep,
    PrincipalDep,
    StateDep,
    TimeWindowDep,
    ViewerDep,
    resolve_generation,
)
from app.api.errors import ERROR_RESPONSES
from app.api.geojson import (
    GEOJSON,
    JSON,
    GeoJSONResponse,
    dumps,
    feature_collection,
    link,
)
from app.api.incident_lists import newest_incidents_page
from app.api.schemas import Feature, FeatureCollection, GridStats, Neighbours
from app.db import queries
from app.db.repo import GenerationInfo
from app.errors import NotFoundError
from app.services.scope import check_area, on_branch, visible_staff

#: Boundaries are public unless GRIDMAP_PUBLIC_BOUNDARIES=false (then create_app adds a
#: viewer check); incidents and statistics always need a viewer key.
router = APIRouter(prefix="/grids", tags=["grids"], responses=ERROR_RESPONSES)

Code = Annotated[
    str,
    Path(
        pattern=r"^\d{1,32}$",
        description=("Unified code of a grid (15 digits by default), or of any other level."),
    ),
]


@router.get(
    "/{code}",
    response_class=GeoJSONResponse,
    response_model=Feature,
    summary="A grid with its staff and counts",
)
def grid(
    request: Request,
    state: StateDep,
    conn: ConnDep,
    principal: PrincipalDep,
    code: Code,
    generation: GenerationParam = None,
) -> GeoJSONResponse:
    """The area as a GeoJSON Feature: properties, geometry, staff, counts and links.

    Incident counts (within the caller's area) and staff phone numbers are included for
    callers with a viewer key or a session; anonymous callers get the staff that
    GRIDMAP_PUBLIC_STAFF publishes (names and roles by default), never phones.
    """
    gen, record = _area(conn, code, generation)
    counts: dict = {"children": queries.child_count(conn, gen.id, code)}
    staff = queries.staff_of(conn, gen.id, [code])
    counts["staff"] = len(staff)
    if (
        principal is not None
        and principal.allows("viewer")
        and record["level"] != "district"
        and on_branch(principal.area, code)
    ):
        counts["incidents"] = queries.incident_counts(
            conn, gen.id, record["level"], code, area_prefix=principal.area
        )
    shown = visible_staff(staff, code, principal, state.api.public_staff)
    geometry = record.pop("geometry")
    properties = {
        **record,
        "generation": {"id": gen.id, "label": gen.label},
        "staff": [{k: s[k] for k in ("name", "role", "phone")} for s in shown],
        "counts": counts,
    }
    base = str(request.base_url) + f"grids/{code}"
    links = [link(str(request.url), "self", GEOJSON)]
    links += [
        link(f"{base}/{rel}", rel, GEOJSON if rel != "neighbors" and rel != "stats" else JSON)
        for rel in ("children", "neighbors", "incidents", "stats")
    ]
    if record["parent_code"]:
        links.append(link(str(request.base_url) + f"grids/{record['parent_code']}", "up", GEOJSON))
    head = dumps({"type": "Feature", "id": code})[:-1]
    body = (
        head
        + b',"geometry":'
        + geometry.encode()
        + b',"properties":'
        + dumps(properties)
        + b',"links":'
        + dumps(links)
        + b"}"
    )
    return GeoJSONResponse(body)


@router.get(
    "/{code}/children",
    response_class=GeoJSONResponse,
    response_model=FeatureCollection,
    summary="Areas one level down",
)
def children(
    request: Request, conn: ConnDep, code: Code, generation: GenerationParam = None
) -> GeoJSONResponse:
    """Micro-grids of a grid (grids of a community, …), ordered by code."""
    gen, _record = _area(conn, code, generation)
    features = queries.child_features(conn, gen.id, code)
    links = [link(str(request.url), "self", GEOJSON)]
    return GeoJSONResponse(feature_collection(features, matched=len(features), links=links))


@router.get("/{code}/neighbors", response_model=Neighbours, summary="Adjacent areas")
def neighbors(conn: ConnDep, code: Code, generation: GenerationParam = None) -> dict:
    """Areas of the same level sharing a boundary, longest shared boundary first."""
    gen, record = _area(conn, code, generation)
    return {
        "code": code,
        "level": record["level"],
        "generation": {"id": gen.id, "label": gen.label},
        "neighbours": queries.neighbours(conn, gen.id, code),
    }


@router.get(
    "/{code}/incidents",
    response_class=GeoJSONResponse,
    response_model=FeatureCollection,
    summary="Incidents assigned to a grid",
)
def grid_incidents(
    request: Request,
    conn: ConnDep,
    viewer: ViewerDep,
    code: Code,
    bbox: BBoxDep,
    page: PageDep,
    window: TimeWindowDep,
    f: IncidentQueryDep,
    generation: GenerationParam = None,
) -> GeoJSONResponse:
    """Incidents assigned to the area, newest first (needs a viewer key).

    With `generation`, the area of that generation and the incidents as they were
    assigned under it (the assignment history). A caller scoped to an area gets 403 for
    an area off its branch, and only its own incidents of an area containing it.
    """
    check_area(viewer, code)
    gen, record = _area(conn, code, generation)
    filters = f.to_filter(
        window,
        bbox,
        generation_id=gen.id,
        area_level=record["level"],
        area_code=None if record["level"] == "district" else code,
        area_prefix=viewer.area,
    )
    return newest_incidents_page(request, conn, filters, page)


@router.get("/{code}/stats", response_model=GridStats, summary="Incident statistics")
def grid_stats(
    state: StateDep,
    conn: ConnDep,
    viewer: ViewerDep,
    code: Code,
    window: TimeWindowDep,
    f: IncidentQueryDep,
    interval: Annotated[
        Literal["day", "week", "month", "year"],
        Query(description="Period of the time series `by_period`."),
    ] = "month",
    generation: GenerationParam = None,
) -> dict:
    """Counts by category, status, source and period; overdue; self-handled vs escalated.

    Overdue is measured against the category deadlines of the taxonomy: open past
    the deadline now, or handled after it. Self-handled means handled at grid
    level; escalated means handled by the community or the street. Within the caller's
    area only (403 for an area off its branch).
    """
    check_area(viewer, code)
    gen, record = _area(conn, code, generation)
    level = record["level"]
    filters = f.to_filter(
        window,
        generation_id=gen.id,
        area_level=level,
        area_code=None if level == "district" else code,
        area_prefix=viewer.area,
    )
    now = datetime.now(UTC)
    stats = queries.incident_stats(conn, filters, state.taxonomy.deadlines(), interval, now)
    totals = stats["totals"]
    return {
        "code": code,
        "level": level,
        "name": record["name"],
        "window": {"start": window.start, "end": window.end},
        "totals": {
            "incidents": totals["total"],
            "open": totals["open"],
            "resolved": totals["total"] - totals["open"],
        },
        "overdue": _overdue(totals, now),
        "handling": _handling(totals),
        "by_category": [
            {"code": c, "name": state.taxonomy.name(c), "count": n}
            for c, n in stats["by_category"].items()
        ],
        "by_status": stats["by_status"],
        "by_source": stats["by_source"],
        "by_period": stats["by_period"],
    }


def _area(conn, code: str, generation: str | None) -> tuple[GenerationInfo, dict]:
    gen = resolve_generation(conn, generation)
    record = queries.area_record(conn, gen.id, code)
    if record is None:
        raise NotFoundError(f"no area {code!r} in generation {gen.label!r}")
    return gen, record


def _overdue(totals: dict, now: datetime) -> dict:
    late = totals["overdue_open"] + totals["handled_late"]
    return {
        "as_of": now.isoformat(timespec="seconds"),
        "open_past_deadline": totals["overdue_open"],
        "handled_late": totals["handled_late"],
        "handled_on_time": totals["handled_on_time"],
        "with_deadline": totals["with_deadline"],
        "share": round(late / totals["with_deadline"], 4) if totals["with_deadline"] else None,
    }


def _handling(totals: dict) -> dict:
    by_level = {level: totals[level] for level in ("grid", "community", "street")}
    known = sum(by_level.values())
    escalated = by_level["community"] + by_level["street"]
    return {
        "by_level": by_level,
        "self_handled": by_level["grid"],
        "escalated": escalated,
        "self_handled_share": round(by_level["grid"] / known, 4) if known else None,
        "escalated_share": round(escalated / known, 4) if known else None,
    }
