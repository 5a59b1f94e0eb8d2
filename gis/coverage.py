"""Coverage checks of an area hierarchy: "全覆盖、无死角" — full coverage, no blind spots.

:func:`check_coverage` looks at every level of an area set (district, street,
community, grid, micro-grid) and reports one GeoDataFrame of
defects in EPSG:4326, of these types:

``gap``
    Part of the parent level that no area of the child level covers: the union
    of the parent level minus the union of the child level, one row per
    connected piece. A community not fully covered by grids has a gap at level
    ``grid``.
``overlap``
    Part shared by two areas of the same level (siblings or not): their
    intersection, one row per pair. Pairs come from an STRtree and a DE-9IM
    test ("interiors meet in 2-D"), so areas that merely touch cost no overlay.
``sliver``
    A gap or overlap piece that is real but small or thin: area below
    ``sliver_m2`` or mean width (2·area / perimeter) below ``sliver_width_m``.
    The detail says whether it is a gap or an overlap sliver.
``invalid``
    An invalid, empty or non-polygonal geometry, with ``shapely.is_valid_reason``.
    Invalid polygons are repaired with ``shapely.make_valid`` for the other
    checks, so one bad ring neither hides nor fakes the other defects.
``nesting``
    An area reaching more than ``nesting_tolerance_m`` outside its parent (the
    area its ``parent_code`` names): the child minus the parent buffered by the
    tolerance is more than noise. The row's geometry is the whole part of the
    child outside the (unbuffered) parent and ``area_m2`` its area. A
    ``parent_code`` missing from the parent level is a nesting defect too.
``unstaffed``
    A grid with no grid-level staff (a leader or worker role of
    :mod:`gis.staff`) on its own code. Micro-grid workers staff their
    micro-grid only (see :attr:`CoverageReport.staffing`).
``outside_incident``
    A located incident that no grid covers (interior or boundary, the
    ``ST_Covers`` rule of ``docs/assignment.md``) and that is farther than
    ``incident_tolerance_m`` from every grid, with the nearest grid and its
    distance. The point test runs in EPSG:4326, like the assignment itself.

Gap and overlap pieces below ``noise_m2`` (default 1 m²) are dropped: overlays
of floating-point boundaries leave such crumbs even where the data are right.
Overlays and measurements run in a projected CRS in metres: the areas' own CRS
if it is one, else the UTM zone (WGS84 datum) of the centre of their bounds.

The parent level of a level is the one directly above it in
:data:`gis.codes.LEVELS`; a level whose parent level is absent from the input
gets no gap or nesting check (there is nothing to compare it with).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely

from gis import crs as crs_mod
from gis.codes import LEVELS
from gis.errors import CRSError, ValidationError
from gis.staff import staffed_codes

__all__ = [
    "DEFECT_TYPES",
    "DEFECT_COLUMNS",
    "STAFFING_COLUMNS",
    "CoverageReport",
    "check_coverage",
    "coverage_summary_table",
    "incident_lonlat",
]

#: Defect types, in the order reports list them.
DEFECT_TYPES: tuple[str, ...] = (
    "gap",
    "overlap",
    "sliver",
    "invalid",
    "nesting",
    "unstaffed",
    "outside_incident",
)
#: Columns of :attr:`CoverageReport.staffing`.
STAFFING_COLUMNS = ["code", "level", "parent_code", "staffed"]
#: Columns of :attr:`CoverageReport.defects`.
DEFECT_COLUMNS = ["type", "level", "area_m2", "codes", "detail", "geometry"]
_POLYGON_TYPES = (shapely.GeometryType.POLYGON, shapely.GeometryType.MULTIPOLYGON)
# The nesting buffer only has to reach ``nesting_tolerance_m``; coarse round
# corners are enough and keep buffering ~700 parents cheap.
_BUFFER_QUAD_SEGS = 2


@dataclass
class CoverageReport:
    """What :func:`check_coverage` found.

    Attributes
    ----------
    defects : geopandas.GeoDataFrame
        One row per defect, columns :data:`DEFECT_COLUMNS`, EPSG:4326, sorted
        by type (in :data:`DEFECT_TYPES` order), level (top to bottom), codes
        and area. ``codes`` is a list of the area codes involved: parents
        first, then the areas of the defect's level (for an
        ``outside_incident``: the nearest grid). ``area_m2`` is 0.0 for an
        incident and NaN for an invalid geometry that could not be repaired.
    levels : pandas.DataFrame
        One row per level present, top to bottom: ``level``, ``parent_level``
        (None when absent), ``areas`` (count), ``area_m2`` (of the level's
        union), ``parent_area_m2`` (of the parent level's union),
        ``covered_m2`` (of the intersection of both unions) and
        ``coverage_ratio`` = covered / parent area (NaN without a parent level).
    metric_crs : pyproj.CRS
        The CRS areas and distances were measured in.
    settings : dict
        The tolerances used: ``noise_m2``, ``sliver_m2``, ``sliver_width_m``,
        ``nesting_tolerance_m``, ``incident_tolerance_m``.
    staffing : pandas.DataFrame or None
        With staff given: one row per grid and micro-grid, columns
        :data:`STAFFING_COLUMNS`, ``staffed`` under the rule of
        :func:`gis.staff.staffed_codes`. Unstaffed grids are also defects;
        a micro-grid without its worker is reported here only, since many
        micro-grids (a few households) have none by design.
    """

    defects: gpd.GeoDataFrame
    levels: pd.DataFrame
    metric_crs: pyproj.CRS
    settings: dict = field(default_factory=dict)
    staffing: pd.DataFrame | None = None

    @property
    def unstaffed_micro_grids(self) -> list[str]:
        """Micro-grids without their own micro-grid worker ([] when no staff was given)."""
        if self.staffing is None:
            return []
        rows = self.staffing[(self.staffing["level"] == "micro_grid") & ~self.staffing["staffed"]]
        return sorted(rows["code"])

    @property
    def counts(self) -> dict[str, int]:
        """Number of defects of every type (zeros included)."""
        found = self.defects["type"].value_counts()
        return {t: int(found.get(t, 0)) for t in DEFECT_TYPES}

    @property
    def coverage_ratio(self) -> dict[str, float]:
        """Coverage ratio of every level that has a parent level."""
        rows = self.levels.dropna(subset=["parent_level"])
        return dict(zip(rows["level"], rows["coverage_ratio"].astype(float), strict=True))

    @property
    def ok(self) -> bool:
        """True when no defect of any type was found."""
        return len(self.defects) == 0

    def summary(self) -> dict:
        """Counts by type, coverage ratio by level and the settings, JSON-ready."""
        return {
            "defects": self.counts,
            "coverage_ratio": self.coverage_ratio,
            "metric_crs": self.metric_crs.to_string(),
            "settings": dict(self.settings),
        }


def check_coverage(
    areas: gpd.GeoDataFrame,
    staff: pd.DataFrame | None = None,
    incidents: pd.DataFrame | gpd.GeoDataFrame | None = None,
    *,
    sliver_m2: float = 100.0,
    sliver_width_m: float = 1.0,
    nesting_tolerance_m: float = 1.0,
    incident_tolerance_m: float = 0.0,
    noise_m2: float = 1.0,
    metric_crs: Any = None,
) -> CoverageReport:
    """Find gaps, overlaps, slivers, invalid geometries, nesting errors, unstaffed grids.

    Parameters
    ----------
    areas : geopandas.GeoDataFrame
        Areas of one generation, any subset of levels, with columns ``code``
        (unique), ``level`` (one of :data:`gis.codes.LEVELS`), ``parent_code``
        and a polygon geometry, in any CRS.
    staff : pandas.DataFrame, optional
        Staff roster with ``area_code`` and ``role`` columns; enables ``unstaffed``.
        An optional ``staffs`` column (``grid``, ``micro_grid`` or None) says
        what each row's role staffs, for roles beyond
        :data:`gis.staff.DEFAULT_ROLES` (see :func:`gis.staff.staffed_codes`).
    incidents : pandas.DataFrame or geopandas.GeoDataFrame, optional
        Incident points (see :func:`incident_lonlat`); enables
        ``outside_incident``. Unlocated rows (NaN coordinates) are skipped.
    sliver_m2 : float, default 100.0
        Gap and overlap pieces smaller than this (m²) are slivers.
    sliver_width_m : float, default 1.0
        Pieces thinner than this on average (2·area / perimeter, m) are slivers.
    nesting_tolerance_m : float, default 1.0
        How far (m) an area may reach outside its parent before it is a
        nesting defect.
    incident_tolerance_m : float, default 0.0
        Incidents within this distance (m) of a grid are not reported: the
        snapping tolerance of the assignment (``docs/assignment.md``).
    noise_m2 : float, default 1.0
        Gap and overlap pieces smaller than this (m²) are floating-point noise
        and not reported; must not exceed ``sliver_m2``.
    metric_crs : anything pyproj.CRS accepts, optional
        Projected CRS in metres for the overlays and measurements. Default: the
        areas' CRS if it is one, else the UTM zone of their centre.

    Returns
    -------
    CoverageReport

    Raises
    ------
    ValidationError
        If ``areas`` lacks a column, has unknown levels or duplicate codes, if
        ``staff`` lacks ``area_code``, if incidents are given but the areas
        have no grids, or if a tolerance is not a finite number >= 0.
    CRSError
        If ``areas`` has no CRS or ``metric_crs`` is not projected in metres.

    Examples
    --------
    >>> report = check_coverage(demo.areas(), demo.staff, demo.incidents)  # doctest: +SKIP
    >>> coverage_summary_table(report)                                     # doctest: +SKIP
    """
    _check_areas(areas)
    settings = _settings(
        noise_m2=noise_m2,
        sliver_m2=sliver_m2,
        sliver_width_m=sliver_width_m,
        nesting_tolerance_m=nesting_tolerance_m,
        incident_tolerance_m=incident_tolerance_m,
    )
    if staff is not None and not (
        isinstance(staff, pd.DataFrame) and {"area_code", "role"} <= set(staff.columns)
    ):
        raise ValidationError("staff must be a DataFrame with 'area_code' and 'role' columns")
    if incidents is not None and not (areas["level"] == "grid").any():
        raise ValidationError("incidents were given but areas has no level 'grid' to cover them")
    metric = crs_mod.metric_crs(areas, metric_crs)
    layers, invalid = _layers(areas, metric)
    check = _Checker(layers, metric, settings)
    rows = invalid + check.overlaps() + check.gaps() + check.nesting()
    staffing = None
    if staff is not None:
        staffed = staffed_codes(staff)
        rows += check.unstaffed(staffed)
        staffing = check.staffing(staffed)
    if incidents is not None:
        rows += check.outside(incidents)
    return CoverageReport(_defect_frame(rows), check.level_table(), metric, settings, staffing)


def coverage_summary_table(report: CoverageReport) -> pd.DataFrame:
    """One row per level: coverage ratio and the number of defects of each type.

    Parameters
    ----------
    report : CoverageReport

    Returns
    -------
    pandas.DataFrame
        Indexed by level (top to bottom) plus a last row ``total``; columns
        ``areas``, ``coverage_ratio`` and one count column per
        :data:`DEFECT_TYPES` entry.

    Raises
    ------
    ValidationError
        If ``report`` is not a :class:`CoverageReport`.
    """
    if not isinstance(report, CoverageReport):
        raise ValidationError(f"report must be a CoverageReport, got {type(report).__name__}")
    table = report.levels.set_index("level")[["areas", "coverage_ratio"]].copy()
    counts = pd.crosstab(report.defects["level"], report.defects["type"])
    counts = counts.reindex(index=table.index, columns=list(DEFECT_TYPES), fill_value=0)
    table = table.join(counts)
    table.loc["total"] = {
        "areas": table["areas"].sum(),
        "coverage_ratio": np.nan,
        **table[list(DEFECT_TYPES)].sum().to_dict(),
    }
    whole = ["areas", *DEFECT_TYPES]
    table[whole] = table[whole].astype(int)
    return table


def incident_lonlat(incidents: pd.DataFrame | gpd.GeoDataFrame) -> tuple[np.ndarray, np.ndarray]:
    """WGS84 longitude and latitude of incident points, NaN where unlocated.

    Parameters
    ----------
    incidents : pandas.DataFrame or geopandas.GeoDataFrame
        Either columns ``lon`` and ``lat`` (used first when present), or point
        geometries with a CRS, reprojected to EPSG:4326 (missing or empty
        points give NaN). With lon/lat columns, an optional ``crs`` column
        names each row's system (``wgs84``, ``cgcs2000``, ``gcj02``, ``bd09``:
        see :func:`gis.crs.normalize_crs_name`); a missing value means WGS84.

    Returns
    -------
    lon, lat : numpy.ndarray of float

    Raises
    ------
    ValidationError
        If there are neither lon/lat columns nor point geometries.
    CRSError
        If a ``crs`` value is unknown or a GeoDataFrame has no CRS.
    """
    columns = isinstance(incidents, pd.DataFrame) and {"lon", "lat"} <= set(incidents.columns)
    if not columns and isinstance(incidents, gpd.GeoDataFrame | gpd.GeoSeries):
        return _geometry_lonlat(gpd.GeoSeries(incidents.geometry))
    if not columns:
        raise ValidationError(
            "incidents must be a DataFrame with 'lon' and 'lat' columns or a GeoDataFrame "
            f"of points, got {type(incidents).__name__}"
        )
    lon = pd.to_numeric(incidents["lon"], errors="coerce").to_numpy(dtype=float, copy=True)
    lat = pd.to_numeric(incidents["lat"], errors="coerce").to_numpy(dtype=float, copy=True)
    if "crs" in incidents:
        names = incidents["crs"].to_numpy(dtype=object)
        given = pd.notna(names)
        for name in pd.unique(names[given]):
            if crs_mod.normalize_crs_name(name) in ("wgs84", "cgcs2000"):
                continue  # equal to centimetres (docs/domain.md, "Coordinate systems")
            rows = given & (names == name)
            lon[rows], lat[rows] = crs_mod.to_wgs84(lon[rows], lat[rows], name)
    return lon, lat


# -- input ---------------------------------------------------------------------------
def _check_areas(areas: Any) -> None:
    if not isinstance(areas, gpd.GeoDataFrame):
        raise ValidationError(f"areas must be a GeoDataFrame, got {type(areas).__name__}")
    missing = [c for c in ("code", "level", "parent_code") if c not in areas]
    if missing:
        raise ValidationError(f"areas lacks column(s) {missing}; needs code, level, parent_code")
    if areas.crs is None:
        raise CRSError("areas has no CRS; set it with set_crs(...)")
    if not len(areas):
        raise ValidationError("areas is empty: there is nothing to check")
    level = areas["level"]
    problems = [
        {"row": row, "reason": f"level {value!r} is not one of {list(LEVELS)}"}
        for row, value in level[~level.isin(list(LEVELS))].items()
    ]
    codes = areas["code"]
    problems += [{"row": row, "reason": "missing code"} for row in codes.index[codes.isna()]]
    problems += [
        {"row": row, "reason": f"duplicate code {code!r}"}
        for row, code in codes[codes.duplicated(keep="first") & codes.notna()].items()
    ]
    if problems:
        raise ValidationError(f"areas refused: {problems[0]['reason']}, …", problems)


def _settings(**values: Any) -> dict[str, float]:
    for name, value in values.items():
        ok = isinstance(value, int | float | np.number) and not isinstance(value, bool)
        if not (ok and np.isfinite(value) and value >= 0):
            raise ValidationError(f"{name} must be a finite number >= 0, got {value!r}")
    if values["noise_m2"] > values["sliver_m2"]:
        raise ValidationError(
            f"noise_m2 ({values['noise_m2']!r}) must not exceed sliver_m2 ({values['sliver_m2']!r})"
        )
    return {name: float(value) for name, value in values.items()}


@dataclass
class _Layer:
    """One level: codes, parent codes and geometries.

    ``geoms`` are repaired and in the metric CRS (None where unusable),
    ``lonlat`` the same in EPSG:4326 for point tests, ``shown`` the areas as
    given, in EPSG:4326, for reporting whole areas.
    """

    level: str
    codes: np.ndarray
    parents: np.ndarray
    geoms: np.ndarray
    lonlat: np.ndarray
    shown: np.ndarray
    _tree: shapely.STRtree | None = None
    _union: Any = None
    _coverage: bool | None = None

    @property
    def usable(self) -> np.ndarray:
        return np.flatnonzero(~shapely.is_missing(self.geoms))

    @property
    def tree(self) -> shapely.STRtree:
        """STRtree over the metric geometries (missing ones are never hit)."""
        if self._tree is None:
            self._tree = shapely.STRtree(self.geoms)
        return self._tree

    @property
    def is_coverage(self) -> bool:
        """Whether the usable areas form a valid polygonal coverage.

        That is: valid polygons whose interiors do not overlap and whose shared
        edges have the same vertices, as tessellations drawn in a GIS have. The
        check is linear in the vertices (a city's 39,000 micro-grids: about half
        a second), and such a level needs neither an overlap search nor a full
        overlay to be united.
        """
        if self._coverage is None:
            geoms = self.geoms[self.usable]
            try:
                self._coverage = bool(shapely.is_valid(geoms).all()) and bool(
                    shapely.coverage_is_valid(geoms)
                )
            except shapely.errors.GEOSException:
                self._coverage = False
        return self._coverage

    @property
    def union(self):
        if self._union is None:
            geoms = self.geoms[self.usable]
            # The same area either way: edges shared by two areas of a coverage cancel
            # out (linear time), where a general union overlays every polygon
            # (a city's micro-grids: seconds).
            self._union = (
                shapely.coverage_union_all(geoms) if self.is_coverage else shapely.union_all(geoms)
            )
        return self._union


def _layers(areas: gpd.GeoDataFrame, metric: pyproj.CRS) -> tuple[dict[str, _Layer], list[dict]]:
    """Layers by level, top to bottom, and the ``invalid`` defect rows."""
    given = gpd.GeoSeries(areas.geometry.array, crs=areas.crs)
    shown = _array(given, 4326)
    level = areas["level"].to_numpy(dtype=object)
    codes = areas["code"].astype(str).to_numpy(dtype=object)
    given_parents = areas["parent_code"].to_numpy(dtype=object)
    parents = np.array(
        [
            None if na else str(p)
            for p, na in zip(given_parents, pd.isna(given_parents), strict=True)
        ],
        dtype=object,
    )
    repaired, reasons = _repair(np.asarray(given.array, dtype=object))
    repaired_series = gpd.GeoSeries(repaired, crs=areas.crs)
    geoms, lonlat = _array(repaired_series, metric), _array(repaired_series, 4326)
    invalid = [
        _row(
            "invalid",
            level[i],
            shapely.area(geoms[i]) if geoms[i] is not None else np.nan,
            [codes[i]],
            f"{level[i]} {codes[i]}: {reason}",
            shown[i],
        )
        for i, reason in reasons.items()
    ]
    layers = {}
    for name in LEVELS:
        rows = np.flatnonzero(level == name)
        if len(rows):
            layers[name] = _Layer(
                name, codes[rows], parents[rows], geoms[rows], lonlat[rows], shown[rows]
            )
    return layers, invalid


def _array(series: gpd.GeoSeries, crs: Any) -> np.ndarray:
    if not series.crs.equals(pyproj.CRS.from_user_input(crs)):
        series = series.to_crs(crs)
    return np.asarray(series.array, dtype=object)


def _repair(geoms: np.ndarray) -> tuple[np.ndarray, dict[int, str]]:
    """Valid polygonal geometries (None where nothing is usable) and the reasons."""
    out = np.array(geoms, dtype=object)
    missing = shapely.is_missing(geoms) | shapely.is_empty(geoms)
    polygonal = np.isin(shapely.get_type_id(geoms), _POLYGON_TYPES)
    valid = np.zeros(len(geoms), dtype=bool)
    valid[polygonal] = shapely.is_valid(geoms[polygonal])
    valid &= ~missing  # an empty polygon is "valid" but covers nothing
    reasons: dict[int, str] = {}
    for i in np.flatnonzero(~valid):
        geom = geoms[i]
        if missing[i]:
            reasons[int(i)] = "missing or empty geometry"
            out[i] = None
            continue
        if polygonal[i]:
            reasons[int(i)] = f"invalid geometry: {shapely.is_valid_reason(geom)}"
        else:
            reasons[int(i)] = f"not a polygon ({geom.geom_type})"
        out[i] = _polygonal(shapely.make_valid(geom))
    return out, reasons


def _polygonal(geom):
    """The polygonal part of ``geom`` as a Polygon or MultiPolygon (None when there is none)."""
    parts = [
        p
        for p in shapely.get_parts(shapely.get_parts(geom))
        if p.geom_type == "Polygon" and not p.is_empty
    ]
    if not parts:
        return None
    return parts[0] if len(parts) == 1 else shapely.MultiPolygon(parts)


# -- the checks ----------------------------------------------------------------------
class _Checker:
    """The checks over prepared layers; each returns a list of defect rows."""

    def __init__(self, layers: dict[str, _Layer], metric: pyproj.CRS, settings: dict):
        self.layers = layers
        self.metric = metric
        self.settings = settings
        self._to_wgs84 = pyproj.Transformer.from_crs(metric, 4326, always_xy=True)

    def parent_layer(self, level: str) -> _Layer | None:
        index = LEVELS.index(level)
        return self.layers.get(LEVELS[index - 1]) if index else None

    def _each_with_parent(self, check: Callable[[_Layer, _Layer], list[dict]]) -> list[dict]:
        """The rows of ``check(layer, parent)`` for every level whose parent level is given."""
        rows: list[dict] = []
        for layer in self.layers.values():
            parent = self.parent_layer(layer.level)
            if parent is not None:
                rows += check(layer, parent)
        return rows

    # overlaps
    def overlaps(self) -> list[dict]:
        rows: list[dict] = []
        for layer in self.layers.values():
            if layer.is_coverage:  # interiors that do not overlap: nothing to look for
                continue
            if self._overlap_total(layer) >= self.settings["noise_m2"]:
                rows += self._overlaps(layer)
        return rows

    @staticmethod
    def _overlap_total(layer: _Layer) -> float:
        # Sum of areas minus area of the union is the area covered twice or
        # more: below the noise floor no single overlap can be reported, and
        # the pairwise test (the costly part on ~5,000 micro-grids) is skipped.
        areas = shapely.area(layer.geoms[layer.usable])
        return float(areas.sum() - shapely.area(layer.union))

    def _overlaps(self, layer: _Layer) -> list[dict]:
        usable = layer.usable
        left, right = layer.tree.query(layer.geoms[usable], predicate="intersects")
        left = usable[left]
        pairs = left < right
        left, right = left[pairs], right[pairs]
        # Neighbours share edges: only pairs whose interiors meet in 2-D need an overlay.
        inner = shapely.relate_pattern(layer.geoms[left], layer.geoms[right], "2********")
        rows = []
        for i, j in zip(left[inner], right[inner], strict=True):
            piece = _polygonal(shapely.intersection(layer.geoms[i], layer.geoms[j]))
            if piece is None or piece.area < self.settings["noise_m2"]:
                continue
            codes = sorted([layer.codes[i], layer.codes[j]])
            kind = self._kind(piece, "overlap")
            detail = (
                f"{_kind_text(kind, 'overlap')} of {piece.area:,.1f} m² between "
                f"{layer.level} {codes[0]} and {codes[1]}{_parents_text(layer.parents[[i, j]])}"
            )
            rows.append(_row(kind, layer.level, piece.area, codes, detail, self._wgs84(piece)))
        return rows

    # gaps
    def gaps(self) -> list[dict]:
        return self._each_with_parent(self._gaps)

    def _gaps(self, layer: _Layer, parent: _Layer) -> list[dict]:
        missing = shapely.difference(parent.union, layer.union)
        rows = []
        for piece in shapely.get_parts(missing):
            if piece.geom_type != "Polygon" or piece.area < self.settings["noise_m2"]:
                continue
            hit = parent.tree.query(piece, predicate="intersects")
            inside = sorted(parent.codes[hit[_interiors_meet(parent.geoms[hit], piece)]])
            around = sorted(layer.codes[layer.tree.query(piece, predicate="intersects")])
            kind = self._kind(piece, "gap")
            detail = (
                f"{_kind_text(kind, 'gap')} of {piece.area:,.1f} m² in the {layer.level} layer, "
                f"inside {parent.level} {', '.join(inside) or '?'}"
                + (f", next to {layer.level} {', '.join(around)}" if around else "")
            )
            rows.append(
                _row(kind, layer.level, piece.area, inside + around, detail, self._wgs84(piece))
            )
        return rows

    # nesting
    def nesting(self) -> list[dict]:
        return self._each_with_parent(self._nesting)

    def _nesting(self, layer: _Layer, parent: _Layer) -> list[dict]:
        position = {code: i for i, code in enumerate(parent.codes)}
        usable = layer.usable
        mother = np.array([position.get(layer.parents[i], -1) for i in usable], dtype=np.int64)
        rows = [self._orphan_row(layer, parent, i) for i in usable[mother < 0]]
        child, mother = usable[mother >= 0], mother[mother >= 0]
        keep = ~shapely.is_missing(parent.geoms[mother])
        child, mother = child[keep], mother[keep]
        reach = self._reach(parent)
        # A child well inside its buffered parent touches none of its boundary:
        # the prepared contains_properly test answers from the vertices alone.
        loose = ~shapely.contains_properly(reach[mother], layer.geoms[child])
        for i, p in zip(child[loose], mother[loose], strict=True):
            if (
                shapely.area(shapely.difference(layer.geoms[i], reach[p]))
                >= self.settings["noise_m2"]
            ):
                rows.append(self._nesting_row(layer, parent, i, p))
        return rows

    def _reach(self, parent: _Layer) -> np.ndarray:
        tolerance = self.settings["nesting_tolerance_m"]
        reach = parent.geoms
        if tolerance > 0:
            reach = shapely.buffer(parent.geoms, tolerance, quad_segs=_BUFFER_QUAD_SEGS)
        shapely.prepare(reach)
        return reach

    def _orphan_row(self, layer: _Layer, parent: _Layer, i: int) -> dict:
        detail = (
            f"{layer.level} {layer.codes[i]}: parent {layer.parents[i]!r} "
            f"is not a {parent.level} of this area set"
        )
        return _row(
            "nesting", layer.level, layer.geoms[i].area, [layer.codes[i]], detail, layer.shown[i]
        )

    def _nesting_row(self, layer: _Layer, parent: _Layer, i: int, p: int) -> dict:
        outside = _polygonal(shapely.difference(layer.geoms[i], parent.geoms[p]))
        area = outside.area if outside is not None else 0.0
        detail = (
            f"{area:,.1f} m² of {layer.level} {layer.codes[i]} lie outside its {parent.level} "
            f"{parent.codes[p]}, more than {self.settings['nesting_tolerance_m']:g} m beyond it"
        )
        codes = [parent.codes[p], layer.codes[i]]
        return _row("nesting", layer.level, area, codes, detail, self._wgs84(outside))

    # staff and incidents
    def unstaffed(self, staffed: set[str]) -> list[dict]:
        # Only grid-level staff on the grid's own code staff it: a micro-grid worker
        # answers for their micro-grid, not for the grid above it (docs/domain.md).
        grids = self.layers.get("grid")
        if grids is None:
            return []
        rows = []
        for i in np.flatnonzero([code not in staffed for code in grids.codes]):
            area = grids.geoms[i].area if grids.geoms[i] is not None else np.nan
            detail = f"grid {grids.codes[i]} has no grid leader or grid worker"
            rows.append(_row("unstaffed", "grid", area, [grids.codes[i]], detail, grids.shown[i]))
        return rows

    def staffing(self, staffed: set[str]) -> pd.DataFrame:
        """One row per grid and micro-grid: code, level, parent_code, staffed."""
        frames = [
            pd.DataFrame(
                {
                    "code": layer.codes,
                    "level": layer.level,
                    "parent_code": layer.parents,
                    "staffed": [code in staffed for code in layer.codes],
                }
            )
            for name in ("grid", "micro_grid")
            if (layer := self.layers.get(name)) is not None
        ]
        if not frames:
            return pd.DataFrame(columns=STAFFING_COLUMNS)
        return pd.concat(frames, ignore_index=True)[STAFFING_COLUMNS]

    def outside(self, incidents: pd.DataFrame | gpd.GeoDataFrame) -> list[dict]:
        grids = self.layers["grid"]
        lon, lat = incident_lonlat(incidents)
        located = np.flatnonzero(np.isfinite(lon) & np.isfinite(lat))
        lost = located[~_covered(grids.lonlat, lon[located], lat[located])]
        if not len(lost):
            return []
        x, y = pyproj.Transformer.from_crs(4326, self.metric, always_xy=True).transform(
            lon[lost], lat[lost]
        )
        (where, near), dist = grids.tree.query_nearest(
            shapely.points(x, y), return_distance=True, all_matches=False
        )
        names = _incident_names(incidents)
        rows = []
        for k, g, d in zip(where, near, dist, strict=True):
            if d <= self.settings["incident_tolerance_m"]:
                continue
            row = lost[k]
            detail = (
                f"incident {names[row]} is covered by no grid; nearest grid "
                f"{grids.codes[g]} is {d:,.2f} m away"
            )
            point = shapely.Point(lon[row], lat[row])
            rows.append(_row("outside_incident", "grid", 0.0, [grids.codes[g]], detail, point))
        return rows

    # summary
    def level_table(self) -> pd.DataFrame:
        records = []
        for layer in self.layers.values():
            parent = self.parent_layer(layer.level)
            record = {
                "level": layer.level,
                "parent_level": None if parent is None else parent.level,
                "areas": len(layer.codes),
                "area_m2": float(shapely.area(layer.union)),
                "parent_area_m2": np.nan,
                "covered_m2": np.nan,
                "coverage_ratio": np.nan,
            }
            if parent is not None:
                whole = float(shapely.area(parent.union))
                covered = float(shapely.area(shapely.intersection(parent.union, layer.union)))
                record.update(
                    parent_area_m2=whole,
                    covered_m2=covered,
                    coverage_ratio=covered / whole if whole > 0 else np.nan,
                )
            records.append(record)
        return pd.DataFrame.from_records(records)

    # helpers
    def _kind(self, piece, name: str) -> str:
        thin = piece.length > 0 and 2 * piece.area / piece.length < self.settings["sliver_width_m"]
        return "sliver" if piece.area < self.settings["sliver_m2"] or thin else name

    def _wgs84(self, geom):
        if geom is None:
            return None
        return shapely.transform(
            geom, lambda xy: np.column_stack(self._to_wgs84.transform(xy[:, 0], xy[:, 1]))
        )


def _interiors_meet(geoms: np.ndarray, piece) -> np.ndarray:
    return shapely.relate_pattern(geoms, piece, "2********").astype(bool)


def _covered(geoms: np.ndarray, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """True for points some geometry covers (interior or boundary)."""
    points = shapely.points(lon, lat)
    tree = shapely.STRtree(geoms)
    shapely.prepare(geoms[~shapely.is_missing(geoms)])
    covered = np.zeros(len(points), dtype=bool)
    # for a point, intersects is covered-by: a point on a grid's edge is in
    covered[tree.query(points, predicate="intersects")[0]] = True
    return covered


def _kind_text(kind: str, name: str) -> str:
    return f"{name} sliver" if kind == "sliver" else name


def _parents_text(parents: np.ndarray) -> str:
    names = sorted({str(p) for p in parents if p is not None})
    if not names:
        return ""
    return f" (siblings in {names[0]})" if len(names) == 1 else f" (across {', '.join(names)})"


def _incident_names(incidents: pd.DataFrame | gpd.GeoDataFrame) -> np.ndarray:
    for column in ("external_id", "id"):
        if column in incidents:
            return incidents[column].astype(str).to_numpy()
    return np.array([f"row {i}" for i in incidents.index], dtype=object)


def _geometry_lonlat(points: gpd.GeoSeries) -> tuple[np.ndarray, np.ndarray]:
    if points.crs is None:
        raise CRSError("incidents have no CRS; set it with set_crs(...)")
    points = points.to_crs(4326)
    ok = ~(points.isna() | points.is_empty).to_numpy()
    kinds = set(points[ok].geom_type)
    if kinds - {"Point"}:
        raise ValidationError(f"incident geometries must be points, got {sorted(kinds)}")
    lon = np.full(len(points), np.nan)
    lat = np.full(len(points), np.nan)
    lon[ok], lat[ok] = points[ok].x.to_numpy(), points[ok].y.to_numpy()
    return lon, lat


def _row(kind, level, area, codes, detail, geometry) -> dict:
    return {
        "type": kind,
        "level": level,
        "area_m2": float(area),
        "codes": [str(c) for c in codes],
        "detail": detail,
        "geometry": geometry,
    }


def _defect_frame(rows: list[dict]) -> gpd.GeoDataFrame:
    frame = pd.DataFrame.from_records(rows, columns=DEFECT_COLUMNS)
    if len(frame):
        order = pd.DataFrame(
            {
                "t": frame["type"].map(DEFECT_TYPES.index),
                "l": frame["level"].map(LEVELS.index),
                "c": frame["codes"].map(" ".join),
                "a": -frame["area_m2"].fillna(0.0),
            }
        ).sort_values(["t", "l", "c", "a"], kind="stable")
        frame = frame.loc[order.index].reset_index(drop=True)
    frame["area_m2"] = frame["area_m2"].astype(float)
    return gpd.GeoDataFrame(frame, geometry="geometry", crs="EPSG:4326")
