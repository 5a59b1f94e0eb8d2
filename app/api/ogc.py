"""OGC API – Features: landing page, conformance, collections and their items.

Collections: ``streets``, ``communities``, ``grids``, ``micro_grids`` (areas of a
generation, public unless configured otherwise) and ``incidents`` (need a
viewer key), and ``layer_{theme}`` for each thematic layer of the generation
(police, market, party, mediation … units with the department's own codes; see
``app/services/layers.py``). Items are GeoJSON assembled from PostGIS text, never
re-encoded.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request

from app.api.deps import (
    CRS84,
    EPSG4326,
    EPSG4490,
    LAT_FIRST,
    BBoxDep,
    ConnDep,
    GenerationParam,
    IncidentQueryDep,
    OutputCrs,
    PageDep,
    PrincipalDep,
    StateDep,
    TimeWindowDep,
    check_role,
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
    paging_links,
)
from app.api.incident_lists import grid_incident_filter
from app.api.schemas import (
    Collection,
    Collections,
    Conformance,
    Feature,
    FeatureCollection,
    LandingPage,
)
from app.db import layers as layer_queries
from app.db import queries
from app.errors import NotFoundError
from app.services.layers import layer_of, layers_of
from app.services.scope import check_incident_id
from gis.errors import GridmapError, ValidationError
from gis.layers import KNOWN_THEMES, check_theme

router = APIRouter(tags=["OGC API – Features"], responses=ERROR_RESPONSES)

#: Collection id → (area level or None for incidents, title, description).
COLLECTIONS: dict[str, tuple[str | None, str, str]] = {
    "streets": ("street", "Streets 街道", "Streets (subdistricts) and towns of the district."),
    "communities": ("community", "Communities 社区", "Residents' and villagers' committees."),
    "grids": (
        "grid",
        "Grids 网格",
        "Comprehensive, dedicated and basic grids with their unified 15-digit codes.",
    ),
    "micro_grids": (
        "micro_grid",
        "Micro-grids 微网格",
        "Buildings or groups of buildings inside a grid.",
    ),
    "incidents": (
        None,
        "Incidents 事件",
        "Reported incidents with their assignment; needs the viewer role "
        "(a signed-in user or an API key).",
    ),
}
CONFORMANCE = [
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
    "http://www.opengis.net/spec/ogcapi-features-2/1.0/conf/crs",
]
CRS_LIST = [CRS84, EPSG4326, EPSG4490]
#: Collections of thematic layers are named this prefix + the theme (layer_police).
LAYER_PREFIX = "layer_"
CollectionId = Annotated[
    str,
    Path(
        max_length=64,
        description="streets, communities, grids, micro_grids, incidents, or layer_{theme} "
        "for a thematic layer (layer_police, layer_market …).",
    ),
]


@router.get("/", response_model=LandingPage, summary="Landing page")
def landing(request: Request) -> dict:
    """Links to the API definition, the conformance classes and the collections."""
    base = str(request.base_url)
    return {
        "title": "gridmap",
        "description": "Grid governance GIS: unified-code grids, incident assignment, "
        "lookups and the closed loop of incident handling.",
        "links": [
            link(str(request.url), "self", JSON, "this document"),
            link(
                base + "openapi.json",
                "service-desc",
                "application/vnd.oai.openapi+json;version=3.0",
                "the API definition",
            ),
            link(base + "docs", "service-doc", "text/html", "the API documentation"),
            link(base + "conformance", "conformance", JSON, "conformance classes"),
            link(base + "collections", "data", JSON, "the collections"),
        ],
    }


@router.get("/conformance", response_model=Conformance, summary="Conformance classes")
def conformance() -> dict:
    return {"conformsTo": CONFORMANCE}


@router.get("/collections", response_model=Collections, summary="Collections")
def collections(
    request: Request,
    state: StateDep,
    conn: ConnDep,
    principal: PrincipalDep,
    generation: GenerationParam = None,
) -> dict:
    """The four area levels, the incidents and each thematic layer, with their extents."""
    _guard_boundaries(state, principal)
    gen = resolve_generation(conn, generation)
    extents = queries.level_extents(conn, gen.id)
    docs = [_collection(request, cid, extents) for cid in COLLECTIONS]
    docs += [
        _layer_collection(request, conn, layer.theme, layer.id, layer.units)
        for layer in layers_of(conn, gen.id)
    ]
    return {"collections": docs, "links": [link(str(request.url), "self", JSON)]}


@router.get("/collections/{collection_id}", response_model=Collection, summary="One collection")
def collection(
    request: Request,
    state: StateDep,
    conn: ConnDep,
    principal: PrincipalDep,
    collection_id: CollectionId,
    generation: GenerationParam = None,
) -> dict:
    theme = _theme(collection_id)
    if theme is not None:
        _guard_boundaries(state, principal)
        layer = layer_of(conn, theme, _generation_ref(conn, generation))
        return _layer_collection(request, conn, theme, layer.id, layer.units)
    _level(collection_id)
    _guard_boundaries(state, principal)
    gen = resolve_generation(conn, generation)
    return _collection(request, collection_id, queries.level_extents(conn, gen.id))


@router.get(
    "/collections/{collection_id}/items",
    response_class=GeoJSONResponse,
    response_model=FeatureCollection,
    summary="Features of a collection",
)
def items(
    request: Request,
    state: StateDep,
    conn: ConnDep,
    principal: PrincipalDep,
    collection_id: CollectionId,
    bbox: BBoxDep,
    page: PageDep,
    window: TimeWindowDep,
    incident_filter: IncidentQueryDep,
    crs: OutputCrs = CRS84,
    code: Annotated[
        str | None, Query(pattern=r"^\d{1,32}$", description=("Areas: this unified code."))
    ] = None,
    parent: Annotated[
        str | None,
        Query(
            pattern=r"^\d{1,32}$",
            description=("Areas: children of this code (e.g. the grids of a community)."),
        ),
    ] = None,
    kind: Annotated[
        str | None,
        Query(
            max_length=32,
            pattern=r"^[a-z_]+$",
            description=("Areas: comprehensive, dedicated, basic, micro, administrative, …."),
        ),
    ] = None,
    grid: Annotated[
        str | None, Query(pattern=r"^\d{1,32}$", description=("Incidents: assigned to this grid."))
    ] = None,
    generation: GenerationParam = None,
) -> GeoJSONResponse:
    """Features with bbox, paging, `datetime` (incidents' report time) and property filters.

    Area collections take `code`, `parent`, `kind` and `generation`; `incidents`
    takes `category`, `status`, `source`, `handling_level`, `location_status`,
    `grid`, `datetime` and `generation` (of the assignment). Thematic layers
    (`layer_{theme}`) take `code`, `bbox` and `generation`.
    """
    lat_first = crs in LAT_FIRST
    theme = _theme(collection_id)
    level = None if theme is not None else _level(collection_id)
    if theme is not None:
        _guard_boundaries(state, principal)
        _refuse(
            collection_id,
            parent=parent,
            kind=kind,
            grid=grid,
            datetime=window.bounded or None,
            **{k: v or None for k, v in vars(incident_filter).items()},
        )
        layer = layer_of(conn, theme, _generation_ref(conn, generation))
        matched, features = layer_queries.unit_features(
            conn, layer.id, page.limit, page.offset, code=code, bbox=bbox, lat_first=lat_first
        )
    elif level is None:
        viewer = check_role(principal, "viewer")
        _refuse(collection_id, code=code, parent=parent, kind=kind)
        incidents = grid_incident_filter(
            conn, incident_filter, window, bbox, grid, generation, viewer.area
        )
        matched, features = queries.incident_features(
            conn, incidents, page.limit, page.offset, lat_first
        )
    else:
        _guard_boundaries(state, principal)
        _refuse(
            collection_id,
            grid=grid,
            datetime=window.bounded or None,
            **{k: v or None for k, v in vars(incident_filter).items()},
        )
        gen = resolve_generation(conn, generation)
        filters = queries.AreaFilter(gen.id, level, code, parent, kind, bbox)
        matched, features = queries.area_features(conn, filters, page.limit, page.offset, lat_first)
    links = paging_links(request, page.offset, page.limit, len(features), matched)
    body = feature_collection(features, matched=matched, links=links)
    return GeoJSONResponse(body, headers={"Content-Crs": f"<{crs}>"})


@router.get(
    "/collections/{collection_id}/items/{feature_id}",
    response_class=GeoJSONResponse,
    response_model=Feature,
    summary="One feature",
)
def item(
    request: Request,
    state: StateDep,
    conn: ConnDep,
    principal: PrincipalDep,
    collection_id: CollectionId,
    feature_id: Annotated[str, Path(max_length=64, description=("Area code, or incident id."))],
    crs: OutputCrs = CRS84,
    generation: GenerationParam = None,
) -> GeoJSONResponse:
    lat_first = crs in LAT_FIRST
    theme = _theme(collection_id)
    level = None if theme is not None else _level(collection_id)
    if theme is not None:
        _guard_boundaries(state, principal)
        layer = layer_of(conn, theme, _generation_ref(conn, generation))
        text = layer_queries.unit_feature(conn, layer.id, feature_id, lat_first)
    elif level is None:
        viewer = check_role(principal, "viewer")
        text = None
        if feature_id.isdigit() and len(feature_id) < 19:
            check_incident_id(conn, viewer, int(feature_id))  # 403 outside the caller's area
            text = queries.incident_feature(conn, int(feature_id), lat_first)
    else:
        _guard_boundaries(state, principal)
        gen = resolve_generation(conn, generation)
        text = queries.area_feature(conn, gen.id, feature_id, level, lat_first)
    if text is None:
        raise NotFoundError(f"no feature {feature_id!r} in {collection_id}")
    links = [
        link(str(request.url), "self", GEOJSON),
        link(str(request.url_for("items", collection_id=collection_id)), "collection", GEOJSON),
    ]
    body = text[:-1].encode() + b',"links":' + dumps(links) + b"}"
    return GeoJSONResponse(body, headers={"Content-Crs": f"<{crs}>"})


def _theme(collection_id: str) -> str | None:
    """The theme of a ``layer_{theme}`` collection, None for the other collections."""
    if not collection_id.startswith(LAYER_PREFIX):
        return None
    theme = collection_id[len(LAYER_PREFIX) :]
    try:
        return check_theme(theme)
    except GridmapError as exc:
        raise NotFoundError(f"no collection {collection_id!r}: {exc}") from exc


def _generation_ref(conn, generation: str | None) -> str:
    """The generation as a label, checked the API's way (404 unknown, 409 none active)."""
    return resolve_generation(conn, generation).label


def _layer_collection(request: Request, conn, theme: str, layer_id: int, units: int) -> dict:
    collection_id = LAYER_PREFIX + theme
    base = str(request.base_url) + f"collections/{collection_id}"
    title = f"{KNOWN_THEMES.get(theme, theme)} · 专题图层 thematic layer"
    bbox = layer_queries.unit_extent(conn, layer_id)
    return {
        "id": collection_id,
        "title": title,
        "description": f"{units} units of theme {theme!r} with the department's own codes, "
        "stored beside the grids; their crosswalk is GET /layers/"
        f"{theme}/crosswalk.",
        "itemType": "feature",
        "crs": CRS_LIST,
        "storageCrs": CRS84,
        "extent": {"spatial": {"bbox": [bbox], "crs": CRS84}} if bbox else None,
        "links": [
            link(base, "self", JSON, title),
            link(base + "/items", "items", GEOJSON, f"{title}: features"),
        ],
    }


def _level(collection_id: str) -> str | None:
    if collection_id not in COLLECTIONS:
        raise NotFoundError(
            f"no collection {collection_id!r}; collections are {', '.join(COLLECTIONS)}"
        )
    return COLLECTIONS[collection_id][0]


def _guard_boundaries(state: Any, principal: Any) -> None:
    if not state.api.public_boundaries:
        check_role(principal, "viewer")


def _refuse(collection_id: str, **given: Any) -> None:
    """Filters of the other kind of collection are an error, not silently ignored."""
    wrong = [name for name, value in given.items() if value is not None]
    if wrong:
        raise ValidationError(f"{', '.join(sorted(wrong))} cannot filter {collection_id}")


def _collection(request: Request, collection_id: str, extents: dict) -> dict:
    level, title, description = COLLECTIONS[collection_id]
    base = str(request.base_url) + f"collections/{collection_id}"
    bbox = extents.get(level) if level else extents.get("district") or extents.get("grid")
    extent: dict[str, Any] = {"spatial": {"bbox": [bbox], "crs": CRS84}} if bbox else {}
    if level is None:
        extent["temporal"] = {
            "interval": [[None, None]],
            "trs": "http://www.opengis.net/def/uom/ISO-8601/0/Gregorian",
        }
    return {
        "id": collection_id,
        "title": title,
        "description": description,
        "itemType": "feature",
        "crs": CRS_LIST,
        "storageCrs": CRS84,
        "extent": extent or None,
        "links": [
            link(base, "self", JSON, title),
            link(base + "/items", "items", GEOJSON, f"{title}: features"),
        ],
    }
