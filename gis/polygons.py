"""What every polygon layer import checks, whatever the layer (areas or thematic units).

Problems are plain dicts ``{row, code, reason[, kind]}`` collected for the whole
file, so that a planner gets every problem at once; the layer modules
(:mod:`gis.areas`, :mod:`gis.layers.units`) add their own level-specific checks.
"""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pyproj
import shapely

from gis import crs as crs_mod
from gis.errors import CRSError, GridmapError

__all__ = [
    "FORMATS",
    "as_text",
    "check_duplicates",
    "check_geometries",
    "format_of",
    "problem",
    "to_wgs84",
]

#: File suffix → format name (pyogrio driver, or "parquet" for GeoParquet).
FORMATS = {
    ".geojson": "GeoJSON",
    ".json": "GeoJSON",
    ".gpkg": "GPKG",
    ".shp": "ESRI Shapefile",
    ".parquet": "parquet",
    ".geoparquet": "parquet",
}


def format_of(path: Path) -> str:
    """The format name of a layer file, from its suffix; a clear error for any other."""
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise GridmapError(
            f"unsupported file type {path.suffix!r}; use one of {', '.join(sorted(FORMATS))}"
        )
    return fmt


def to_wgs84(gdf: gpd.GeoDataFrame, crs: str | None, name: str) -> gpd.GeoDataFrame:
    """The layer in EPSG:4326 from ``crs`` (or the file's own), GCJ-02 and BD-09 included."""
    if crs is None:
        if gdf.crs is None:
            raise CRSError(f"{name} does not say which CRS its coordinates are in; give --crs")
        return gdf.to_crs(4326)
    try:  # GCJ-02/BD-09 are not pyproj CRSs
        name_ = crs_mod.normalize_crs_name(crs)
    except CRSError:
        name_ = None
    if name_ in ("gcj02", "bd09"):

        def to_wgs84(coords: np.ndarray) -> np.ndarray:
            lon, lat = crs_mod.to_wgs84(coords[:, 0], coords[:, 1], name_)
            return np.column_stack([lon, lat])

        geometry = shapely.transform(gdf.geometry.values, to_wgs84)
        return gdf.set_geometry(gpd.GeoSeries(geometry, index=gdf.index, crs=4326))
    if name_ in ("wgs84", "cgcs2000"):
        return gdf.set_crs(4326, allow_override=True)
    try:
        return gdf.set_crs(pyproj.CRS.from_user_input(crs), allow_override=True).to_crs(4326)
    except pyproj.exceptions.CRSError as exc:
        raise CRSError(
            f"unknown --crs {crs!r}; use wgs84, cgcs2000, gcj02, bd09 or an EPSG code"
        ) from exc


def check_geometries(values: np.ndarray, rows: np.ndarray, repair: bool) -> tuple[list, list[dict]]:
    """Polygons ready to store (None where refused) and the problems of the rest."""
    problems: list[dict] = []
    out: list = []
    for row, geom in zip(rows, values, strict=True):
        if geom is None or shapely.is_empty(geom):
            problems.append(problem(row, None, "empty geometry"))
            out.append(None)
            continue
        if geom.geom_type not in ("Polygon", "MultiPolygon") and not (
            repair and geom.geom_type == "GeometryCollection"
        ):
            problems.append(problem(row, None, f"not a polygon: {geom.geom_type}"))
            out.append(None)
            continue
        if not shapely.is_valid(geom):
            if not repair:
                # is_valid_reason gives the kind and the place: "Self-intersection[113.8 34.0]"
                reason = shapely.is_valid_reason(geom)
                problems.append(
                    problem(
                        row, None, f"invalid geometry: {reason} (use --repair to apply make_valid)"
                    )
                )
                out.append(None)
                continue
            geom = _polygonal_part(shapely.make_valid(geom))
            if geom is None:
                problems.append(
                    problem(
                        row, None, "invalid geometry with no polygonal part left after make_valid"
                    )
                )
                out.append(None)
                continue
        elif geom.geom_type == "GeometryCollection":
            geom = _polygonal_part(geom)
            if geom is None:
                problems.append(problem(row, None, "not a polygon: GeometryCollection"))
                out.append(None)
                continue
        out.append(shapely.force_2d(geom))
    _check_lonlat_range(out, rows, problems)
    return out, problems


def _polygonal_part(geom) -> shapely.MultiPolygon | None:
    parts = [g for g in shapely.get_parts(geom) if g.geom_type in ("Polygon", "MultiPolygon")]
    polys = [p for part in parts for p in shapely.get_parts(part)]
    return shapely.MultiPolygon(polys) if polys else None


def _check_lonlat_range(geoms: list, rows: np.ndarray, problems: list[dict]) -> None:
    for i, geom in enumerate(geoms):
        if geom is None:
            continue
        minx, miny, maxx, maxy = geom.bounds
        if minx < -180 or maxx > 180 or miny < -90 or maxy > 90:
            problems.append(
                problem(
                    rows[i],
                    None,
                    f"coordinates out of lon/lat range "
                    f"({minx:.6g}, {miny:.6g}, {maxx:.6g}, "
                    f"{maxy:.6g}): wrong --crs?",
                )
            )
            geoms[i] = None


def check_duplicates(codes, rows, existing_codes, code_field, problems) -> None:
    """Report codes given twice in the file, or already in the target generation."""
    seen: dict[str, list[int]] = {}
    for row, code in zip(rows, codes, strict=True):
        if code is not None:
            seen.setdefault(code, []).append(int(row))
    label = code_field or "code"
    for code, where in seen.items():
        if len(where) > 1:
            rows_text = ", ".join(map(str, where))
            for row in where:
                problems.append(
                    problem(
                        row,
                        code,
                        f"duplicate {label} {code!r} (rows {rows_text})",
                        kind="duplicate",
                    )
                )
        if code in existing_codes:
            problems.append(
                problem(
                    where[0],
                    code,
                    f"code {code!r} already exists in the target generation (use --replace)",
                )
            )


def as_text(value) -> str | None:
    """A cell as stripped text (``3.0`` → ``"3"``), or None when it is empty."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = str(value).strip()
    return text or None


def problem(row, code, reason: str, kind: str | None = None) -> dict:
    """One refused row: its number (1-based, None for the whole file), code and reason."""
    found = {"row": None if row is None else int(row), "code": code, "reason": reason}
    if kind:
        found["kind"] = kind
    return found
