"""Reading and validating boundary layers before anything is written.

An area file loads completely or not at all, so validation collects *every*
problem (row, code, reason) instead of stopping at the first: a planner fixing
a file wants the whole list. Nothing here touches a database; ``app/`` passes
in the parent areas and the codes that already exist and writes the result.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from io import BytesIO
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gis import crs as crs_mod
from gis.codes import DEFAULT_SCHEME, LEVELS, CodeScheme
from gis.errors import GridmapError, InvalidCodeError, ValidationError
from gis.polygons import (
    FORMATS,
    as_text,
    check_duplicates,
    check_geometries,
    format_of,
    problem,
    to_wgs84,
)
from gis.tables import decode_text, detect_encoding

__all__ = [
    "AREA_COLUMNS",
    "FORMATS",
    "PreparedAreas",
    "read_areas",
    "write_areas",
    "prepare_areas",
    "spatial_parents",
    "parent_level",
]

#: Columns of a prepared area layer, in storage order.
AREA_COLUMNS = [
    "code",
    "name",
    "level",
    "kind",
    "parent_code",
    "population",
    "households",
    "responsible",
    "area_m2",
    "geometry",
]


# Below this share of its area inside the chosen parent, a polygon is "mostly
# outside" and refused: it is a wrong file, a wrong CRS or a wrong parent.
MIN_SHARE_IN_PARENT = 0.5

_DEFAULT_KIND = {
    "district": "administrative",
    "street": "administrative",
    "community": "administrative",
    "grid": "comprehensive",
    "micro_grid": "micro",
}


@dataclass
class PreparedAreas:
    """Result of :func:`prepare_areas`: the layer ready to store, or the problems."""

    areas: gpd.GeoDataFrame
    problems: list[dict] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def raise_if_problems(self, source: str = "input") -> None:
        if self.problems:
            raise ValidationError(f"{source}: refused, nothing was stored", self.problems)


def parent_level(level: str) -> str | None:
    """The level directly above ``level`` (None for a district)."""
    _check_level(level)
    index = LEVELS.index(level)
    return LEVELS[index - 1] if index else None


# -- reading / writing ---------------------------------------------------------------
def read_areas(
    path: str | Path,
    crs: str | None = None,
    layer: str | None = None,
    encoding: str | None = None,
) -> gpd.GeoDataFrame:
    """Read a polygon layer (GeoJSON, GeoPackage, Shapefile, GeoParquet) in EPSG:4326.

    Parameters
    ----------
    path : path-like
        The file; the format follows the suffix.
    crs : str, optional
        CRS of the coordinates when the file has none or states it wrongly:
        ``wgs84``, ``cgcs2000``, ``gcj02``, ``bd09`` or anything pyproj accepts
        (``EPSG:4547``). GCJ-02 and BD-09 geometries are converted vertex by vertex.
    layer : str, optional
        Layer of a multi-layer file (GeoPackage).
    encoding : str, optional
        Of a Shapefile's attributes or a GeoJSON file. By default a Shapefile's
        ``.cpg`` is honoured; without one the DBF's text is detected as UTF-8 or
        GBK (GDAL would read it as Latin-1 and store mojibake). GeoJSON is
        detected the same way.

    The encoding used is in ``attrs["encoding"]`` of the result (None when the
    format has its own, as GeoPackage and GeoParquet do).
    """
    path = Path(path)
    if not path.exists():
        raise GridmapError(f"file not found: {path}")
    fmt = format_of(path)
    used = None
    try:
        if fmt == "parquet":
            gdf = gpd.read_parquet(path)
        elif fmt == "GeoJSON":
            text, used = decode_text(path.read_bytes(), path.name, encoding)
            gdf = gpd.read_file(BytesIO(text.encode("utf-8")), layer=layer, engine="pyogrio")
        elif fmt == "ESRI Shapefile":
            used = encoding or shapefile_encoding(path)
            gdf = gpd.read_file(path, layer=layer, engine="pyogrio", encoding=used)
        else:
            gdf = gpd.read_file(path, layer=layer, engine="pyogrio")
    except GridmapError:
        raise
    except Exception as exc:  # pyogrio/arrow raise many types; the message is what matters
        raise GridmapError(f"cannot read {path.name} as {fmt}: {exc}") from exc
    gdf = to_wgs84(gdf, crs, path.name)
    gdf.attrs["encoding"] = used
    return gdf


def shapefile_encoding(path: str | Path) -> str:
    """The encoding of a Shapefile's attributes: its ``.cpg``, else detected on the DBF.

    Chinese Shapefiles made by older ArcGIS or SuperMap are GBK and often come
    without a ``.cpg``; the DBF's records are detected as UTF-8 or GB18030/GBK
    (:func:`gis.tables.detect_encoding`).
    """
    path = Path(path)
    for cpg in (path.with_suffix(".cpg"), path.with_suffix(".CPG")):
        if cpg.exists():
            return cpg.read_text(encoding="ascii", errors="replace").strip() or "utf-8"
    dbf = next(
        (p for p in (path.with_suffix(".dbf"), path.with_suffix(".DBF")) if p.exists()), None
    )
    if dbf is None:
        return "utf-8"
    data = dbf.read_bytes()
    header_length = int.from_bytes(data[8:10], "little")
    try:
        found = detect_encoding(data[header_length:].rstrip(b"\x1a"))
    except ValidationError as exc:
        raise ValidationError(
            f"{path.name}: no .cpg and the attribute text is neither UTF-8 nor GBK; pass --encoding"
        ) from exc
    return "utf-8" if found == "utf-8-sig" else found


def write_areas(gdf: gpd.GeoDataFrame, path: str | Path) -> Path:
    """Write a layer in the format its suffix names (any of :data:`FORMATS`)."""
    path = Path(path)
    fmt = format_of(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "parquet":
        gdf.to_parquet(path)
    else:
        if path.exists():
            path.unlink()  # pyogrio appends to an existing GeoPackage/Shapefile otherwise
        gdf.to_file(path, driver=fmt, engine="pyogrio")
    return path


# -- validation ----------------------------------------------------------------------
def prepare_areas(
    gdf: gpd.GeoDataFrame,
    level: str,
    *,
    code_field: str | None = None,
    parent_field: str | None = None,
    name_field: str | None = None,
    kind_field: str | None = None,
    parent_code: str | None = None,
    parents: gpd.GeoDataFrame | None = None,
    existing_codes: set[str] | frozenset[str] = frozenset(),
    repair: bool = False,
    scheme: CodeScheme = DEFAULT_SCHEME,
) -> PreparedAreas:
    """Validate a layer and give it unified codes and parents.

    Parameters
    ----------
    gdf : GeoDataFrame
        Polygons in EPSG:4326 (as :func:`read_areas` returns them).
    level : str
        One of :data:`gis.codes.LEVELS`.
    code_field : str, optional
        Column with the unified codes. Without it codes are generated,
        numbered west → east, north → south inside each parent, after the
        highest sequence already used there.
    parent_field : str, optional
        Column with parent codes. Without it the parent is the area of
        ``parents`` that holds most of the polygon.
    name_field, kind_field : str, optional
        Columns with the name and the kind (e.g. comprehensive / dedicated).
    parent_code : str, optional
        One parent for every row, for a layer loaded on its own (no parent
        areas in the generation), e.g. a real city's beats as grids.
    parents : GeoDataFrame, optional
        Areas of the level above (``code``, geometry) in the target generation.
    existing_codes : set of str
        Codes already stored in the target generation.
    repair : bool
        Repair invalid geometries with ``make_valid`` instead of refusing them.

    Returns
    -------
    PreparedAreas
        ``areas`` with :data:`AREA_COLUMNS`, and ``problems`` (empty when the
        layer can be stored). Each problem has ``row`` (1-based feature
        number), ``code`` and ``reason``.
    """
    _check_level(level)
    for option, column in (
        ("code_field", code_field),
        ("parent_field", parent_field),
        ("name_field", name_field),
        ("kind_field", kind_field),
    ):
        if column is not None and column not in gdf.columns:
            raise GridmapError(
                f"{option} {column!r} is not a column of the file; it has "
                f"{', '.join(map(str, gdf.columns.drop('geometry')))}"
            )
    problems: list[dict] = []
    if len(gdf) == 0:
        return PreparedAreas(
            _empty_layer(), [{"row": None, "code": None, "reason": "the file holds no features"}]
        )
    work = gdf.reset_index(drop=True)
    rows = np.arange(1, len(work) + 1)
    geometry, geom_problems = check_geometries(work.geometry.values, rows, repair)
    problems += geom_problems
    usable = np.array([g is not None for g in geometry])
    codes = _given_codes(work, code_field, level, scheme, rows, problems)
    parent_codes = _resolve_parents(
        work, geometry, usable, level, parent_field, parent_code, parents, rows, problems
    )
    if code_field is None:
        codes = _number(
            geometry, usable, parent_codes, level, existing_codes, scheme, problems, rows
        )
    else:
        _check_codes_against_parents(codes, parent_codes, rows, problems)
    check_duplicates(codes, rows, existing_codes, code_field, problems)
    areas = _assemble(work, geometry, codes, parent_codes, level, name_field, kind_field)
    problems.sort(key=lambda p: (p["row"] is None, p["row"] or 0))
    return PreparedAreas(areas, problems)


def _given_codes(
    work: pd.DataFrame,
    code_field: str | None,
    level: str,
    scheme: CodeScheme,
    rows: np.ndarray,
    problems: list[dict],
) -> list[str | None]:
    if code_field is None:
        return [None] * len(work)
    codes: list[str | None] = []
    for row, value in zip(rows, work[code_field], strict=True):
        text = as_text(value)
        if text is None:
            problems.append(problem(row, None, f"missing code in {code_field!r}"))
            codes.append(None)
            continue
        try:
            codes.append(scheme.validate(text, level))
        except InvalidCodeError as exc:
            problems.append(problem(row, text, f"malformed code: {exc}"))
            codes.append(text)
    return codes


def _resolve_parents(
    work, geometry, usable, level, parent_field, parent_code, parents, rows, problems
) -> list[str | None]:
    above = parent_level(level)
    if above is None:
        return [None] * len(work)
    if parent_code is not None:
        return [parent_code] * len(work)
    have_parents = parents is not None and len(parents) > 0
    if parent_field is not None:
        result = [as_text(v) for v in work[parent_field]]
        known = set(parents["code"]) if have_parents else set()
        for row, code in zip(rows, result, strict=True):
            if code is None:
                problems.append(problem(row, None, f"missing parent code in {parent_field!r}"))
            elif have_parents and code not in known:
                problems.append(
                    problem(
                        row,
                        None,
                        f"parent {above} {code!r} does not exist in the target generation",
                    )
                )
        if have_parents:
            _check_share_in_named_parent(geometry, usable, result, parents, rows, problems)
        return result
    if not have_parents:
        problems.append(
            problem(
                None,
                None,
                (
                    f"no {above} areas in the target generation to place these {level} areas in: "
                    f"load the {above} layer first, or give --parent-field, or --parent-code CODE "
                    "to "
                    f"number every {level} under one {above}"
                ),
            )
        )
        return [None] * len(work)
    codes, shares = spatial_parents(geometry, parents)
    for row, code, share, ok in zip(rows, codes, shares, usable, strict=True):
        if ok and (code is None or share < MIN_SHARE_IN_PARENT):
            where = f"{share:.0%} inside {above} {code}" if code else f"outside every {above}"
            problems.append(problem(row, None, f"polygon mostly outside its parent: {where}"))
    return codes


def spatial_parents(geometry, parents: gpd.GeoDataFrame) -> tuple[list[str | None], np.ndarray]:
    """For each polygon, the parent holding most of its area and that share (0–1).

    Shares are measured in the local UTM zone: in degrees, areas shrink with
    latitude and the largest overlap could be the wrong one.
    """
    geoms = np.array([g if g is not None else shapely.Polygon() for g in geometry], dtype=object)
    parent_series = gpd.GeoSeries(parents.geometry.values, crs=4326)
    metric = crs_mod.metric_crs(parent_series)
    child = gpd.GeoSeries(geoms, crs=4326).to_crs(metric).values
    parent_geoms = parent_series.to_crs(metric).values
    tree = shapely.STRtree(parent_geoms)
    left, right = tree.query(child, predicate="intersects")
    overlap = shapely.area(shapely.intersection(child[left], parent_geoms[right]))
    best_code: list[str | None] = [None] * len(geoms)
    best_share = np.zeros(len(geoms))
    child_area = shapely.area(child)
    parent_codes = np.asarray(parents["code"].values)
    for i, j, a in zip(left, right, overlap, strict=True):
        share = a / child_area[i] if child_area[i] > 0 else 0.0
        if share > best_share[i]:
            best_share[i], best_code[i] = share, parent_codes[j]
    return best_code, best_share


def _check_share_in_named_parent(geometry, usable, parent_codes, parents, rows, problems):
    by_code = dict(zip(parents["code"], parents.geometry.values, strict=True))
    named = [(i, by_code[c]) for i, c in enumerate(parent_codes) if usable[i] and c in by_code]
    if not named:
        return
    idx = [i for i, _ in named]
    metric = crs_mod.metric_crs(gpd.GeoSeries(parents.geometry.values, crs=4326))
    child = gpd.GeoSeries([geometry[i] for i in idx], crs=4326).to_crs(metric).values
    parent = gpd.GeoSeries([g for _, g in named], crs=4326).to_crs(metric).values
    shares = shapely.area(shapely.intersection(child, parent)) / shapely.area(child)
    for i, share in zip(idx, shares, strict=True):
        if share < MIN_SHARE_IN_PARENT:
            problems.append(
                problem(
                    rows[i],
                    None,
                    f"polygon mostly outside its parent {parent_codes[i]}: {share:.0%} inside",
                )
            )


def _number(
    geometry, usable, parent_codes, level, existing_codes, scheme, problems, rows
) -> list[str | None]:
    codes: list[str | None] = [None] * len(geometry)
    groups: dict[str, list[int]] = {}
    for i, parent in enumerate(parent_codes):
        if usable[i] and parent is not None:
            groups.setdefault(parent, []).append(i)
    for parent, members in groups.items():
        try:
            used = [
                int(c[len(parent) :])
                for c in existing_codes
                if c.startswith(parent) and len(c) == scheme.length(level)
            ]
            numbered = scheme.number_children(
                parent, [geometry[i] for i in members], start=max(used, default=0) + 1
            )
        except InvalidCodeError as exc:
            problems.append(problem(rows[members[0]], None, f"cannot number: {exc}"))
            continue
        for i, code in zip(members, numbered, strict=True):
            codes[i] = code
    return codes


def _check_codes_against_parents(codes, parent_codes, rows, problems) -> None:
    for row, code, parent in zip(rows, codes, parent_codes, strict=True):
        if code and parent and not code.startswith(parent):
            problems.append(
                problem(row, code, f"code {code} does not start with its parent's code {parent}")
            )


def _assemble(
    work, geometry, codes, parent_codes, level, name_field, kind_field
) -> gpd.GeoDataFrame:
    multi = [
        shapely.MultiPolygon(shapely.get_parts(g)) if g is not None else None for g in geometry
    ]
    gdf = gpd.GeoDataFrame(
        {
            "code": codes,
            "name": [as_text(v) for v in work[name_field]] if name_field else None,
            "level": level,
            "kind": (
                [as_text(v) or _DEFAULT_KIND[level] for v in work[kind_field]]
                if kind_field
                else _DEFAULT_KIND[level]
            ),
            "parent_code": parent_codes,
            "population": _optional_int(work, "population"),
            "households": _optional_int(work, "households"),
            "responsible": [as_text(v) for v in work["responsible"]]
            if "responsible" in work
            else None,
        },
        geometry=gpd.GeoSeries(multi, crs=4326),
    )
    valid = gdf.geometry.notna()
    gdf["area_m2"] = np.nan
    if valid.any():
        metric = crs_mod.metric_crs(gdf.loc[valid])
        gdf.loc[valid, "area_m2"] = gdf.loc[valid].to_crs(metric).area
    return gdf[AREA_COLUMNS]


def _optional_int(work: pd.DataFrame, column: str):
    if column not in work:
        return None
    return pd.to_numeric(work[column], errors="coerce").round().astype("Int64")


def _empty_layer() -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame({c: [] for c in AREA_COLUMNS[:-1]}, geometry=[], crs=4326)


def _check_level(level: str) -> None:
    if level not in LEVELS:
        raise GridmapError(f"unknown level {level!r}; expected one of {', '.join(LEVELS)}")
