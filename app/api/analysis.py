"""Analysis endpoints: coverage defects and Gi* hot spots, as GeoJSON.

- ``GET /coverage`` — gaps, overlaps, slivers, invalid geometries, nesting errors,
  unstaffed grids and incidents outside every grid (:func:`gis.coverage.check_coverage`)
  of a generation, with a summary (counts by type, coverage ratio by level).
- ``GET /hotspots`` — per grid: incidents of a time window, categories and sources,
  rates, and Getis-Ord Gi* z, p and confidence bin (:class:`gis.hotspots.HotSpots`).

Both answer from the map data the app keeps in memory
(:class:`app.services.map_data.MapDataCache`), so repeated questions cost milliseconds.
"""

from __future__ import annotations

import json
from typing import Annotated, Literal

import numpy as np
import shapely
from fastapi import APIRouter, Query

from app.api.deps import (
    GenerationParam,
    PrincipalDep,
    SelectionDep,
    StateDep,
    check_role,
    list_pattern,
)
from app.api.errors import ERROR_RESPONSES
from app.api.geojson import GEOJSON, GeoJSONResponse, dumps
from app.maps.layers import HOT_LABELS
from app.services import analysis
from app.services.scope import audience_of, map_view, scope_grids
from app.services.stats import narrow_to_district
from gis.coverage import DEFECT_TYPES

__all__ = ["router"]

router = APIRouter(tags=["analysis"], responses=ERROR_RESPONSES)
_DECIMALS = 7  # ~1 cm: finer than any boundary survey, and a third shorter than repr


@router.get(
    "/coverage",
    response_class=GeoJSONResponse,
    summary="Coverage defects",
    responses={200: {"content": {GEOJSON: {}}}},
)
def coverage(
    state: StateDep,
    principal: PrincipalDep,
    generation: GenerationParam = None,
    types: Annotated[
        str | None,
        Query(
            pattern=list_pattern(DEFECT_TYPES),
            description=f"Defect types to return, comma-separated ({', '.join(DEFECT_TYPES)}); "
            "default all. The summary always counts every type.",
        ),
    ] = None,
    sliver_m2: Annotated[
        float,
        Query(
            ge=0, le=1e6, description="Gap and overlap pieces smaller than this (m²) are slivers."
        ),
    ] = 100.0,
    nesting_tolerance_m: Annotated[
        float, Query(ge=0, le=1000, description="How far (m) an area may reach outside its parent.")
    ] = 1.0,
    incident_tolerance_m: Annotated[
        float,
        Query(
            ge=0,
            le=1000,
            description="Incidents this close (m) to a grid are not reported "
            "(the snapping tolerance of the assignment).",
        ),
    ] = 0.0,
) -> GeoJSONResponse:
    """Where the grid layer fails "全覆盖、无死角" (full coverage, no blind spots).

    One feature per defect (EPSG:4326): ``type``, ``level``, ``area_m2``, ``codes``
    (parents first, then the areas involved; for an incident, the nearest grid) and
    ``detail``. ``summary`` has the counts by type, the coverage ratio of every level
    and the tolerances; ``levels`` the areas and covered surface per level.

    Incidents outside every grid are reported to unscoped callers with a key or a
    session only: anonymous callers get the boundaries' defects (no `outside_incident`
    type), scoped callers see no incident outside the grids.
    """
    audience = audience_of(principal, state.api.public_staff)
    data = map_view(state.map_data.data(generation), audience)
    report = analysis.coverage(
        data,
        sliver_m2=sliver_m2,
        nesting_tolerance_m=nesting_tolerance_m,
        incident_tolerance_m=incident_tolerance_m,
    )
    defects = report.defects
    if types:
        defects = defects[defects["type"].isin(types.split(","))]
    features = [
        {
            "type": "Feature",
            "id": f"defect-{i}",
            "geometry": _geometry(geom),
            "properties": {
                "type": kind,
                "level": level,
                "area_m2": _float(area),
                "codes": list(codes),
                "detail": detail,
            },
        }
        for i, (kind, level, area, codes, detail, geom) in enumerate(
            zip(
                defects["type"],
                defects["level"],
                defects["area_m2"],
                defects["codes"],
                defects["detail"],
                defects.geometry,
                strict=True,
            )
        )
    ]
    levels = report.levels.astype(object).where(report.levels.notna(), None)
    summary = report.summary()
    if not audience.incidents:  # not even a zero: the public answer says nothing of incidents
        summary["defects"] = {
            k: v for k, v in summary["defects"].items() if k != "outside_incident"
        }
    body = {
        "type": "FeatureCollection",
        "features": features,
        "generation": data.generation,
        "summary": summary,
        "levels": levels.to_dict("records"),
        "numberReturned": len(features),
    }
    return GeoJSONResponse(dumps(body))


@router.get(
    "/hotspots",
    response_class=GeoJSONResponse,
    summary="Gi* hot spots per grid",
    responses={200: {"content": {GEOJSON: {}}}},
)
def hotspots(
    state: StateDep,
    principal: PrincipalDep,
    selection: SelectionDep,
    value: Annotated[
        analysis.Measure,
        Query(description="The value analysed: incidents, per 1,000 residents or per km²."),
    ] = "count",
    permutations: Annotated[
        int,
        Query(
            ge=0,
            le=9999,
            description="Conditional permutations for pseudo p-values; 0 for "
            "the normal approximation (ArcGIS). 199 is the fewest that can reach 99 %.",
        ),
    ] = 999,
    seed: Annotated[int, Query(ge=0, le=2**31 - 1, description="Seed of the permutations.")] = 0,
    fdr: Annotated[
        bool,
        Query(
            description="Control the false discovery rate at each "
            "confidence level (use with permutations=0)."
        ),
    ] = False,
    alpha: Annotated[
        Literal["0.1", "0.05", "0.01"], Query(description="Widest confidence level reported.")
    ] = "0.1",
    geometry: Annotated[bool, Query(description="Include the grids' polygons.")] = True,
    district: Annotated[
        str | None,
        Query(
            max_length=20,
            description="A district's 6-digit code: Gi* among that district's grids only "
            "(a city's generation holds several). Default: every grid.",
        ),
    ] = None,
) -> GeoJSONResponse:
    """Getis-Ord Gi* of incidents per grid, binned as in ArcGIS (±3 = 99 %, ±2 = 95 %,
    ±1 = 90 %, 0 = not significant), on queen contiguity with the grid itself included.

    Selection parameters (``start``, ``end``, ``category``, ``source``) are those of
    ``/map``. One feature per grid: ``code``, ``name``, ``count``, ``population``,
    ``rate_per_1000``, ``area_km2``, ``per_km2``, ``z``, ``p``, ``bin``, ``class``.

    Needs a viewer key or a session (401 otherwise: counts per grid are incident data).
    A caller scoped to an area gets its grids only, Gi* compared among them (at least
    3 grids; a one-grid scope gets 422).
    """
    viewer = check_role(principal, "viewer")
    data = state.map_data.data()
    area = narrow_to_district(viewer.area, district)
    if area is not None:
        data = scope_grids(data, area)
    stats = analysis.grid_stats(data, selection, permutations, seed, fdr, float(alpha), value)
    columns = [
        "code",
        "name",
        "count",
        "population",
        "rate_per_1000",
        "area_km2",
        "per_km2",
        "z",
        "p",
        "bin",
    ]
    table = stats[[c for c in columns if c in stats]]
    clean = table.astype(object).where(table.notna(), None).to_dict("records")
    shapes = stats.geometry if geometry else [None] * len(stats)
    features = [
        {
            "type": "Feature",
            "id": row["code"],
            "geometry": _geometry(geom),
            "properties": {**row, "class": HOT_LABELS[int(row["bin"])]},
        }
        for row, geom in zip(clean, shapes, strict=True)
    ]
    bins = {str(b): int((stats["bin"] == b).sum()) for b in range(-3, 4)}
    body = {
        "type": "FeatureCollection",
        "features": features,
        "generation": data.generation,
        "parameters": {
            "selection": selection.describe(),
            "value": value,
            "permutations": permutations,
            "seed": seed,
            "fdr": fdr,
            "alpha": float(alpha),
        },
        "summary": {
            "selected": stats.attrs.get("selected"),
            "unassigned": stats.attrs.get("unassigned"),
            "bins": bins,
            "thresholds": {str(k): v for k, v in stats.attrs.get("thresholds", {}).items()},
        },
        "numberReturned": len(features),
    }
    return GeoJSONResponse(dumps(body))


def _geometry(geom) -> dict | None:
    if geom is None or geom.is_empty:
        return None
    rounded = shapely.transform(geom, lambda xy: np.round(xy, _DECIMALS))
    return json.loads(shapely.to_geojson(rounded))


def _float(value) -> float | None:
    number = float(value)
    return number if np.isfinite(number) else None
