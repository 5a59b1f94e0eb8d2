"""Reading and validating a thematic layer: a department's units with its own codes.

A theme loads completely or not at all, like an area file (see ``gis.areas``),
and shares its checks: geometries, lon/lat range and duplicate codes are found
by the same helpers, so a planner gets the same list of problems for both. The
codes are the department's own (police district "16", market zone "SJ-03"), not
unified codes, so only their presence and uniqueness are checked.
"""

from __future__ import annotations

import re
from pathlib import Path

import geopandas as gpd
import numpy as np
import shapely

from gis import crs as crs_mod
from gis.areas import PreparedAreas, read_areas
from gis.errors import GridmapError
from gis.polygons import (
    as_text,
    check_duplicates,
    check_geometries,
    format_of,
    problem,
    to_wgs84,
)

__all__ = [
    "KNOWN_THEMES",
    "UNIT_COLUMNS",
    "PreparedUnits",
    "check_theme",
    "prepare_units",
    "read_units",
]

#: The departments' layers named in 多格合一 (any other lower-case name is allowed too).
KNOWN_THEMES: dict[str, str] = {
    "police": "警务网格 police",
    "market": "市场监管网格 market supervision",
    "party": "党建网格 party building",
    "mediation": "调解网格 mediation",
}

#: Columns of a prepared theme, in storage order.
UNIT_COLUMNS = ["code", "name", "area_m2", "geometry"]

# Lower-case, so it can name an OGC collection (layer_{theme}) and a URL path segment.
_THEME = re.compile(r"^[a-z][a-z0-9_]{0,31}$")


class PreparedUnits(PreparedAreas):
    """Result of :func:`prepare_units`: the units ready to store, or every problem."""

    @property
    def units(self) -> gpd.GeoDataFrame:
        return self.areas


def check_theme(theme: str) -> str:
    """The theme name, or a GridmapError saying what a theme name may be."""
    if not _THEME.match(theme or ""):
        known = ", ".join(KNOWN_THEMES)
        raise GridmapError(
            f"theme {theme!r} is not a valid name: use {known} or another lower-case name "
            "(a-z, digits, _; at most 32 characters)"
        )
    return theme


def read_units(
    path: str | Path,
    crs: str | None = None,
    layer: str | None = None,
    encoding: str | None = None,
) -> gpd.GeoDataFrame:
    """Read a theme's polygons in EPSG:4326, as :func:`gis.areas.read_areas` does.

    ``encoding`` names the attribute encoding of files that do not declare it
    (a Shapefile without ``.cpg`` written in GBK, say).
    """
    if encoding is None:
        return read_areas(path, crs=crs, layer=layer)
    path = Path(path)
    if not path.exists():
        raise GridmapError(f"file not found: {path}")
    fmt = format_of(path)
    if fmt == "parquet":
        raise GridmapError("--encoding applies to GeoJSON, GeoPackage and Shapefile, not Parquet")
    try:
        gdf = gpd.read_file(path, layer=layer, engine="pyogrio", encoding=encoding)
    except (LookupError, UnicodeError) as exc:
        raise GridmapError(f"cannot read {path.name} as {encoding}: {exc}") from exc
    except Exception as exc:  # pyogrio raises many types; the message is what matters
        raise GridmapError(f"cannot read {path.name} as {fmt}: {exc}") from exc
    return to_wgs84(gdf, crs, path.name)


def prepare_units(
    gdf: gpd.GeoDataFrame,
    *,
    code_field: str | None = None,
    name_field: str | None = None,
    existing_codes: set[str] | frozenset[str] = frozenset(),
    merge_parts: bool = False,
    repair: bool = False,
) -> PreparedUnits:
    """Validate a theme and give every unit one MultiPolygon, a code, a name and its area.

    Parameters
    ----------
    gdf : GeoDataFrame
        Polygons in EPSG:4326 (as :func:`read_units` returns them).
    code_field : str, optional
        Column with the department's codes; without it the units are numbered
        1, 2, … in file order.
    name_field : str, optional
        Column with the names.
    existing_codes : set of str
        Codes the theme already has in the target generation.
    merge_parts : bool
        Rows sharing a code are parts of one unit (a district in several pieces)
        and are merged, instead of being refused as duplicates.
    repair : bool
        Repair invalid geometries with ``make_valid`` instead of refusing them.

    Returns
    -------
    PreparedUnits
        ``units`` with :data:`UNIT_COLUMNS`, and ``problems`` (each with ``row``,
        ``code`` and ``reason``), empty when the theme can be stored.
    """
    for option, column in (("code_field", code_field), ("name_field", name_field)):
        if column is not None and column not in gdf.columns:
            raise GridmapError(
                f"{option} {column!r} is not a column of the file; it has "
                f"{', '.join(map(str, gdf.columns.drop('geometry')))}"
            )
    if len(gdf) == 0:
        return PreparedUnits(_empty_units(), [problem(None, None, "the file holds no features")])
    work = gdf.reset_index(drop=True)
    rows = np.arange(1, len(work) + 1)
    geometry, problems = check_geometries(work.geometry.values, rows, repair)
    codes = _codes(work, code_field, rows, problems)
    names = [as_text(v) for v in work[name_field]] if name_field else [None] * len(work)
    if merge_parts:
        codes, names, geometry, rows = _merge_parts(codes, names, geometry, rows)
    check_duplicates(codes, rows, existing_codes, code_field, problems)
    problems.sort(key=lambda p: (p["row"] is None, p["row"] or 0))
    return PreparedUnits(_assemble(codes, names, geometry), problems)


def _codes(work, code_field: str | None, rows: np.ndarray, problems: list[dict]) -> list:
    if code_field is None:
        return [str(int(r)) for r in rows]
    codes: list[str | None] = []
    for row, value in zip(rows, work[code_field], strict=True):
        text = as_text(value)
        if text is None:
            problems.append(problem(row, None, f"missing code in {code_field!r}"))
        elif len(text) > 64:
            problems.append(problem(row, text[:64], "code longer than 64 characters"))
        codes.append(text)
    return codes


def _merge_parts(codes, names, geometry, rows):
    """One entry per code: the union of its rows' polygons, numbered by its first row."""
    order: dict[str, list[int]] = {}
    for i, code in enumerate(codes):
        if code is not None:
            order.setdefault(code, []).append(i)
    keep_none = [i for i, code in enumerate(codes) if code is None]
    merged_codes, merged_names, merged_geoms, merged_rows = [], [], [], []
    for code, members in order.items():
        parts = [geometry[i] for i in members]
        usable = [g for g in parts if g is not None]
        merged_codes.append(code)
        merged_names.append(next((names[i] for i in members if names[i]), None))
        # A part refused above (already listed as a problem) leaves the unit incomplete.
        merged_geoms.append(shapely.union_all(usable) if len(usable) == len(parts) else None)
        merged_rows.append(rows[members[0]])
    for i in keep_none:
        merged_codes.append(None)
        merged_names.append(names[i])
        merged_geoms.append(geometry[i])
        merged_rows.append(rows[i])
    return merged_codes, merged_names, merged_geoms, np.array(merged_rows)


def _assemble(codes, names, geometry) -> gpd.GeoDataFrame:
    multi = [
        shapely.MultiPolygon(shapely.get_parts(g)) if g is not None else None for g in geometry
    ]
    units = gpd.GeoDataFrame(
        {"code": codes, "name": names}, geometry=gpd.GeoSeries(multi, crs=4326)
    )
    valid = units.geometry.notna()
    units["area_m2"] = np.nan
    if valid.any():
        metric = crs_mod.metric_crs(units.loc[valid])
        units.loc[valid, "area_m2"] = units.loc[valid].to_crs(metric).area
    return units[UNIT_COLUMNS]


def _empty_units() -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame({c: [] for c in UNIT_COLUMNS[:-1]}, geometry=[], crs=4326)
