"""MapIt-style lookup: the district, street, community, grid and micro-grid containing a point.

Answered from the in-memory index of the generation (``app/api/state.py``),
never from SQL. A single point takes microseconds and is answered on the event
loop; a batch, snapping (whose metric index may still have to be built) and
inactive generations go to a worker thread.
"""

from __future__ import annotations

import math
from typing import Annotated

import numpy as np
from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool

from app.api.deps import (
    CRS_DESCRIPTION,
    AppState,
    CrsName,
    GenerationParam,
    Lat,
    Lon,
    PrincipalDep,
    StateDep,
    ToleranceParam,
    checked_tolerance,
)
from app.api.errors import ERROR_RESPONSES
from app.api.geojson import JSONBytesResponse, dumps
from app.api.schemas import LookupBatch, LookupBatchResult, LookupResult
from app.errors import PayloadTooLargeError
from app.services.registry import GenerationView, assign_hierarchy, assign_point
from app.services.scope import visible_staff
from app.services.security import Principal
from gis import crs as crs_mod
from gis.codes import DEFAULT_SCHEME
from gis.errors import InvalidCodeError, ValidationError

#: Public unless GRIDMAP_PUBLIC_BOUNDARIES=false (then create_app adds a viewer check).
router = APIRouter(tags=["lookup"], responses=ERROR_RESPONSES)

CrsQuery = Annotated[CrsName, Query(description=CRS_DESCRIPTION)]
#: Systems gis.crs treats as WGS84 (CGCS2000 differs by centimetres): no conversion.
_SAME_AS_WGS84 = ("wgs84", "cgcs2000")


@router.get(
    "/lookup",
    response_model=LookupResult,
    response_class=JSONBytesResponse,
    summary="Areas containing a point",
)
async def lookup_point(
    request: Request,
    principal: PrincipalDep,
    lon: Lon,
    lat: Lat,
    crs: CrsQuery = "wgs84",
    tolerance: ToleranceParam = 0.0,
    generation: GenerationParam = None,
) -> JSONBytesResponse:
    """District, street, community, grid and micro-grid (code, name, staff) of one point.

    `status` and `distance_m` are the grid's: `inside`, on a grid `boundary`,
    `snapped` to the nearest grid within `tolerance` metres, or `outside` every
    grid (a coverage gap; the other levels may still answer).
    """
    # Every dependency costs on this hot path: state and checks are resolved inline.
    state: AppState = request.app.state.gridmap
    tolerance = checked_tolerance(tolerance, state.api.max_tolerance_m)
    view = state.registry.active
    if view is None or not view.matches(generation) or tolerance > 0:
        view = await run_in_threadpool(state.registry.view, generation)
        doc = await run_in_threadpool(_lookup_one, view, lon, lat, crs, tolerance)
    else:
        x, y = _to_wgs84(np.array([lon]), np.array([lat]), crs)
        answer = assign_point(view.index, float(x[0]), float(y[0]))
        doc = _document(view, lon, lat, crs, float(x[0]), float(y[0]), answer)
    _staff_for(doc, principal, state.api.public_staff)
    wgs84 = doc["wgs84"]  # the unit of every thematic layer too (多格合一)
    doc["themes"] = view.theme_units(wgs84["lon"], wgs84["lat"])
    return JSONBytesResponse(dumps(doc))


def _staff_for(doc: dict, principal: Principal | None, public_staff: str) -> None:
    """Phones only for callers whose area holds the grid; others get GRIDMAP_PUBLIC_STAFF."""
    for level in ("grid", "micro_grid"):
        area = doc.get(level)
        if area is not None:
            area["staff"] = visible_staff(area["staff"], area["code"], principal, public_staff)


def _lookup_one(view: GenerationView, lon: float, lat: float, crs: str, tolerance: float) -> dict:
    x, y = _to_wgs84(np.array([lon]), np.array([lat]), crs)
    answer = assign_hierarchy(view.index, x, y, tolerance)
    return _document(
        view,
        lon,
        lat,
        crs,
        float(x[0]),
        float(y[0]),
        {key: values[0] for key, values in answer.items()},
    )


def _document(
    view: GenerationView, lon: float, lat: float, crs: str, x: float, y: float, answer: dict
) -> dict:
    distance = float(answer["distance_m"])
    return {
        "lon": lon,
        "lat": lat,
        "crs": crs,
        "wgs84": {"lon": x, "lat": y},
        "generation": {"id": view.generation.id, "label": view.generation.label},
        "status": answer["assign_status"],
        "distance_m": None if math.isnan(distance) else distance,
        "district": view.describe(_district_of(view, answer["street_code"])),
        "street": view.describe(answer["street_code"]),
        "community": view.describe(answer["community_code"]),
        "grid": view.describe(answer["grid_code"], with_staff=True),
        "micro_grid": view.describe(answer["micro_grid_code"], with_staff=True),
    }


@router.post(
    "/lookup",
    response_model=LookupBatchResult,
    response_class=JSONBytesResponse,
    summary="Areas of many points",
)
async def lookup_batch(state: StateDep, batch: LookupBatch) -> JSONBytesResponse:
    """Up to GRIDMAP_MAX_LOOKUP_POINTS (default 100,000) points in one request.

    JSON arrays in (`lon`, `lat`), arrays out, aligned with the input: codes of
    every level, the grid's `status` and `distance_m`.
    """
    if len(batch.lon) != len(batch.lat):
        raise ValidationError(
            f"lon has {len(batch.lon)} values and lat {len(batch.lat)}; give one of each per point"
        )
    if len(batch.lon) > state.api.max_lookup_points:
        raise PayloadTooLargeError(
            f"{len(batch.lon):,} points; at most {state.api.max_lookup_points:,} per request"
        )
    tolerance = checked_tolerance(batch.tolerance, state.api.max_tolerance_m)
    view = await run_in_threadpool(state.registry.view, batch.generation)
    body = await run_in_threadpool(_lookup_many, view, batch, tolerance)
    return JSONBytesResponse(body)


def _lookup_many(view: GenerationView, batch: LookupBatch, tolerance: float) -> bytes:
    lon = np.array(batch.lon, dtype=float)  # None becomes NaN: answered as outside
    lat = np.array(batch.lat, dtype=float)
    bad = ~np.isnan(lon) & ((np.abs(lon) > 180) | (np.abs(lat) > 90))
    if bad.any():
        first = np.flatnonzero(bad)[:10].tolist()
        raise ValidationError(
            f"{int(bad.sum())} points are out of range (|lon| ≤ 180, "
            f"|lat| ≤ 90), first at indexes {first}"
        )
    x, y = _to_wgs84(lon, lat, batch.crs)
    answer = assign_hierarchy(view.index, x, y, tolerance)
    return dumps(
        {
            "generation": {"id": view.generation.id, "label": view.generation.label},
            "crs": batch.crs,
            "count": len(lon),
            "district_code": [_district_of(view, c) for c in answer["street_code"].tolist()],
            **{
                key: answer[key].tolist()
                for key in ("street_code", "community_code", "grid_code", "micro_grid_code")
            },
            "status": answer["assign_status"].tolist(),
            "distance_m": answer["distance_m"],  # NaN (outside) serialises as null
            "themes": view.theme_codes(x, y),  # the unit of every thematic layer (多格合一)
        }
    )


def _district_of(view: GenerationView, street_code: str | None) -> str | None:
    """The district holding a street: its code's prefix, when the generation has that district.

    A city's generation holds several districts; the code says which one, no index needed.
    """
    if street_code is None:
        return None
    try:
        code = DEFAULT_SCHEME.ancestor(street_code, "district")
    except InvalidCodeError:  # areas imported with codes of their own
        return None
    return code if code in view.areas else None


def _to_wgs84(lon: np.ndarray, lat: np.ndarray, crs: str) -> tuple[np.ndarray, np.ndarray]:
    if crs in _SAME_AS_WGS84:
        return lon, lat
    x, y = crs_mod.to_wgs84(lon, lat, crs)
    return np.asarray(x, dtype=float), np.asarray(y, dtype=float)
