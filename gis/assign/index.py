"""Assign points to grids by point-in-polygon, with the answer PostGIS would give.

Semantics (see ``docs/assignment.md``), for a point p and grids G with unique string codes:

1. If some grids cover p (``ST_Covers``: interior or boundary), p goes to the
   one with the smallest code (plain string comparison, i.e. ``COLLATE "C"``).
   Its status is ``"boundary"`` when p lies on the boundary of that chosen
   grid (``ST_Covers(g, p) AND NOT ST_Contains(g, p)``), else ``"inside"``.
   For grids that do not overlap this is the same as "p lies on the boundary
   of any covering grid".
2. Else, if ``tolerance > 0`` and the nearest grid is at most ``tolerance``
   metres away, p goes to it (ties: smallest code); status ``"snapped"``.
   Distances are measured in :attr:`GridIndex.metric_crs`, a projected CRS in
   metres, after projecting the grids' vertices and the point.
3. Else the code is ``None`` and the status ``"outside"``. Points that are
   missing (None), empty or have a non-finite coordinate are ``"outside"`` too.

``distance_m`` is 0.0 for ``inside`` and ``boundary``, the distance in metres
for ``snapped`` and NaN for ``outside``.

The SQL definition, which ``tests/test_assign_postgis.py`` checks point by
point against this module (``:epsg`` is :attr:`GridIndex.metric_epsg`)::

    SELECT p.id,
           COALESCE(c.code, s.code) AS code,
           COALESCE(c.status, s.status, 'outside') AS status,
           COALESCE(c.distance_m, s.distance_m) AS distance_m
    FROM p
    LEFT JOIN LATERAL (
        SELECT g.code, 0.0 AS distance_m,
               CASE WHEN ST_Contains(g.geom, p.geom) THEN 'inside' ELSE 'boundary' END AS status
        FROM g WHERE ST_Covers(g.geom, p.geom)
        ORDER BY g.code COLLATE "C" LIMIT 1) c ON true
    LEFT JOIN LATERAL (
        SELECT g.code, 'snapped' AS status,
               ST_Distance(ST_Transform(g.geom, :epsg), ST_Transform(p.geom, :epsg)) AS distance_m
        FROM g
        WHERE :tolerance > 0 AND c.code IS NULL
          AND ST_DWithin(ST_Transform(g.geom, :epsg), ST_Transform(p.geom, :epsg), :tolerance)
        ORDER BY distance_m, g.code COLLATE "C" LIMIT 1) s ON true

How it is fast: a raster of square cells over the grids' extent is labelled
once (``gis.assign.cells``). Cells that no grid boundary comes near answer by
an array lookup, ``inside`` a grid or ``outside`` all; only points in the few
cells a boundary crosses (2-5 % of the extent by default) take exact GEOS tests
(``contains_xy`` / ``intersects_xy`` on prepared polygons, grouped by grid for
cache locality) against the grids whose boundary crosses their cell. Snapping
projects the leftover points, asks an STRtree of the projected grids for those
within the tolerance (``dwithin``) and keeps the nearest. ``geopandas.sjoin``
instead queries a tree for every point and tests every candidate pair against
an unprepared polygon.

Exactness: GEOS decides point-in-polygon with exact (robust) orientation tests,
PostGIS 3.x in plain double arithmetic (``lw_segment_side``). Both are exact
for vertices, points on axis-parallel edges, exact edge midpoints and any point
not within ~1e-19 degrees of an edge's line, so they agree there (checked point
by point in ``tests/test_assign_postgis.py``). They can disagree on points
rounded onto a slanted edge (interpolated along it, about 1 in 20,000 of them
on a 1 km edge): PostGIS may call such a point ``boundary`` although it is a
hair off the edge; this module gives the exact answer.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Hashable, Sequence
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely

from gis import crs as crs_mod
from gis.assign.cells import (
    CELL_LIMIT,
    DEFAULT_MAX_CELLS,
    OUTSIDE,
    build_cell_index,
    has_overlaps,
)
from gis.errors import CRSError, ValidationError
from gis.vocabulary import ASSIGN_STATUSES

__all__ = ["STATUSES", "GridIndex", "assign_points"]

#: The assignment statuses, in the order of their internal codes.
STATUSES: tuple[str, ...] = ASSIGN_STATUSES
_INSIDE, _BOUNDARY, _SNAPPED, _OUTSIDE = range(4)
_STATUS_NAMES = np.array(STATUSES, dtype=object)
#: Points processed at a time: bounds the temporaries for 10^7-point inputs.
_CHUNK = 1 << 20
_NO_RANK = np.iinfo(np.int32).max


class GridIndex:
    """Grids prepared for repeated point assignment.

    Parameters
    ----------
    grids : geopandas.GeoDataFrame
        Valid, non-empty Polygon/MultiPolygon grids (holes allowed) with a CRS,
        geographic or projected.
    code : str, default "code"
        Column of ``grids`` holding the unique, non-null string grid codes.
    metric_crs : anything pyproj.CRS accepts, optional
        Projected CRS in metres for distances (snapping). Default: the grids'
        own CRS if it is projected in metres, else the UTM zone of the centre of
        the grids' bounds (:func:`gis.crs.metric_crs`).
    cell_size : float, optional
        Tuning: width of the pre-index cells in the grids' CRS units. By
        default chosen from the total boundary length and the extent so that
        boundary cells cover about 3 % of it, within ``max_cells`` cells.
    max_cells : int, default 2**24
        Tuning: cap on the number of pre-index cells when ``cell_size`` is not
        given (4 bytes each). Fewer cells build faster but send more points to
        the exact tests.

    Attributes
    ----------
    codes : numpy.ndarray of str
        The grid codes, ascending.
    crs : pyproj.CRS
        The grids' CRS; points must be in it.
    metric_crs : pyproj.CRS
        The CRS distances are measured in (the default is found on first
        access).
    metric_epsg : int or None
        EPSG code of ``metric_crs`` for ``ST_Transform`` in SQL, None if it has none.
    cell_size : float
        Width of the pre-index cells, in ``crs`` units.
    boundary_share : float
        Share of the pre-index cells that need exact tests.

    Raises
    ------
    ValidationError
        If ``grids`` is not a non-empty GeoDataFrame, ``code`` is not a column,
        codes are missing, not strings or duplicated, or a geometry is not a
        valid non-empty Polygon/MultiPolygon.
    CRSError
        If ``grids`` has no CRS or ``metric_crs`` is not projected in metres.

    Examples
    --------
    >>> index = GridIndex(grids)                          # doctest: +SKIP
    >>> index.assign(incidents.geometry, tolerance=30.0)  # doctest: +SKIP
    """

    def __init__(
        self,
        grids: gpd.GeoDataFrame,
        code: str = "code",
        metric_crs: Any = None,
        *,
        cell_size: float | None = None,
        max_cells: int = DEFAULT_MAX_CELLS,
    ) -> None:
        codes, geoms = _validated_grids(grids, code)
        if cell_size is not None and not _is_positive(cell_size):
            raise ValidationError(f"cell_size must be a number > 0, got {cell_size!r}")
        if not (isinstance(max_cells, int | np.integer) and 1 <= max_cells <= CELL_LIMIT):
            raise ValidationError(
                f"max_cells must be an integer 1..{CELL_LIMIT:,}, got {max_cells!r}"
            )
        self.crs: pyproj.CRS = grids.crs
        # A given metric CRS is checked now; the default is found on first use.
        self._metric_crs = None if metric_crs is None else crs_mod.metric_crs(grids, metric_crs)
        order = np.argsort(codes, kind="stable")  # ranks follow the code order
        self.codes: np.ndarray = codes[order]
        self._codes_or_none = np.array([*self.codes, None], dtype=object)  # rank -1: None
        # Private copies: preparing must not mutate the caller's geometries.
        self._geoms = shapely.from_wkb(shapely.to_wkb(geoms[order]))
        _prepare(self._geoms)
        self._overlapping = has_overlaps(self._geoms)
        self._cells = build_cell_index(self._geoms, cell_size, max_cells, self._overlapping)
        self._metric: tuple[shapely.STRtree, pyproj.Transformer] | None = None
        self._metric_lock = threading.RLock()

    @property
    def metric_crs(self) -> pyproj.CRS:
        with self._metric_lock:
            if self._metric_crs is None:
                self._metric_crs = crs_mod.metric_crs(gpd.GeoSeries(self._geoms, crs=self.crs))
            return self._metric_crs

    @property
    def metric_epsg(self) -> int | None:
        return self.metric_crs.to_epsg()

    @property
    def cell_size(self) -> float:
        return self._cells.cell

    @property
    def boundary_share(self) -> float:
        return self._cells.n_boundary / len(self._cells.labels)

    def __len__(self) -> int:
        return len(self.codes)

    def __repr__(self) -> str:
        return (
            f"GridIndex({len(self)} grids, crs={self.crs.to_string()}, "
            f"metric_epsg={self.metric_epsg}, cells={self._cells.nx}x{self._cells.ny})"
        )

    def __getstate__(self) -> dict:
        # Prepared geometries, the STRtree, the transformer and the lock are
        # rebuilt after unpickling (e.g. on Dask workers).
        state = dict(self.__dict__)
        del state["_metric_lock"]
        # One WKB array: pickling each shapely geometry on its own costs a Python
        # call per geometry each way (a second for a city's 39,000 micro-grids).
        return {**state, "_metric": None, "_geoms": shapely.to_wkb(self._geoms)}

    def __setstate__(self, state: dict) -> None:
        state["_geoms"] = shapely.from_wkb(state["_geoms"])
        self.__dict__.update(state)
        self._metric_lock = threading.RLock()
        _prepare(self._geoms)

    def assign(self, points: Any, tolerance: float = 0.0) -> pd.DataFrame:
        """Assign each point to a grid.

        Parameters
        ----------
        points : geopandas.GeoSeries, geopandas.GeoDataFrame or (x, y)
            Point geometries in :attr:`crs` (None and empty points allowed), or
            a pair of coordinate arrays in :attr:`crs` (see :meth:`assign_xy`).
        tolerance : float, default 0.0
            Snapping distance in metres for points no grid covers; 0 disables
            snapping.

        Returns
        -------
        pandas.DataFrame
            Indexed like ``points`` (a RangeIndex for arrays), with columns
            ``code`` (object: the grid code, None when outside), ``status``
            (one of :data:`STATUSES`) and ``distance_m`` (float: 0.0 inside or
            on the boundary, metres when snapped, NaN when outside).

        Raises
        ------
        CRSError
            If the points have no CRS or one different from :attr:`crs`.
        ValidationError
            If ``points`` holds non-point geometries or is of another type, or
            ``tolerance`` is not a finite number >= 0.
        """
        if isinstance(points, gpd.GeoDataFrame | gpd.GeoSeries):
            x, y = _point_coordinates(points, self.crs)
            return self._assign(x, y, _checked_tolerance(tolerance), points.index)
        if isinstance(points, Sequence) and not isinstance(points, str) and len(points) == 2:
            return self.assign_xy(points[0], points[1], tolerance)
        raise ValidationError(
            "points must be a GeoSeries or GeoDataFrame of points or an (x, y) pair of "
            f"coordinate arrays, got {type(points).__name__}"
        )

    def assign_xy(self, x: Any, y: Any, tolerance: float = 0.0, *, crs: Any = None) -> pd.DataFrame:
        """Assign points given as coordinate arrays: the fast path.

        Parameters
        ----------
        x, y : array-like of float
            Coordinates in :attr:`crs` (longitude and latitude for EPSG:4326);
            NaN marks a missing point.
        tolerance : float, default 0.0
            Snapping distance in metres; 0 disables snapping.
        crs : anything pyproj.CRS accepts, optional
            The coordinates' CRS, checked against :attr:`crs` when given.

        Returns
        -------
        pandas.DataFrame
            As :meth:`assign`, with a RangeIndex.

        Raises
        ------
        CRSError
            If ``crs`` is given and differs from :attr:`crs`.
        ValidationError
            If ``x`` and ``y`` are not 1-D numeric arrays of the same length,
            or ``tolerance`` is not a finite number >= 0.
        """
        if crs is not None:
            _check_same_crs(_as_crs(crs, "crs"), self.crs, "crs")
        x, y = _coordinate_arrays(x, y)
        return self._assign(x, y, _checked_tolerance(tolerance), pd.RangeIndex(len(x)))

    def assign_arrays(
        self, x: Any, y: Any, tolerance: float = 0.0
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """As :meth:`assign_xy`, but plain arrays ``(code, status, distance_m)``.

        For hot paths (a web lookup of one point, four levels at a time) where
        building a DataFrame per call costs more than the assignment itself.
        ``code`` and ``status`` are object arrays, ``distance_m`` float.
        """
        x, y = _coordinate_arrays(x, y)
        rank, status, distance = self._ranks(x, y, _checked_tolerance(tolerance))
        return self._codes_or_none[rank], _STATUS_NAMES[status], distance

    def assign_point(
        self, x: float, y: float, tolerance: float = 0.0
    ) -> tuple[str | None, str, float]:
        """One point as ``(code, status, distance_m)``, the fast way for a web lookup.

        Most points fall in a raster cell no boundary crosses: their answer is
        a table read in plain Python (microseconds). The rest take the exact
        path of :meth:`assign_arrays`; the answer is the same either way.
        """
        label = self._cells.locate_one(float(x), float(y))
        if label >= 0:
            return self.codes[label], "inside", 0.0
        if label == OUTSIDE and tolerance == 0:
            return None, "outside", math.nan
        codes, status, distance = self.assign_arrays([x], [y], tolerance)
        return codes[0], status[0], float(distance[0])

    # -- internals ---------------------------------------------------------------------
    def _assign(
        self, x: np.ndarray, y: np.ndarray, tolerance: float, index: pd.Index
    ) -> pd.DataFrame:
        return self._frame(*self._ranks(x, y, tolerance), index)

    def _ranks(
        self, x: np.ndarray, y: np.ndarray, tolerance: float
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if len(x) <= _CHUNK:
            return self._assign_chunk(x, y, tolerance)
        rank = np.empty(len(x), dtype=np.int32)
        status = np.empty(len(x), dtype=np.uint8)
        distance = np.empty(len(x), dtype=np.float64)
        for lo in range(0, len(x), _CHUNK):
            part = slice(lo, lo + _CHUNK)
            answer = self._assign_chunk(x[part], y[part], tolerance)
            rank[part], status[part], distance[part] = answer
        return rank, status, distance

    def _assign_chunk(
        self, x: np.ndarray, y: np.ndarray, tolerance: float
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        label = self._cells.locate(x, y)
        known = label >= 0
        rank = np.maximum(label, np.int32(OUTSIDE))  # boundary cells: undecided yet
        status = np.where(known, np.uint8(_INSIDE), np.uint8(_OUTSIDE))
        distance = np.where(known, 0.0, np.nan)
        near = np.flatnonzero(label < OUTSIDE)
        if len(near):
            self._assign_exact(x, y, near, label[near], rank, status, distance)
        if tolerance > 0:
            loose = np.flatnonzero((rank == OUTSIDE) & np.isfinite(x) & np.isfinite(y))
            if len(loose):
                self._snap(x, y, loose, tolerance, rank, status, distance)
        return rank, status, distance

    def _assign_exact(self, x, y, near, labels, rank, status, distance) -> None:
        """Exact tests for points in boundary cells, against their cell's grids (in place)."""
        pair_point, pair_rank, first = self._cells.candidates(labels)
        px, py = x[near][pair_point], y[near][pair_point]
        interior = self._test(shapely.contains_xy, pair_rank, px, py)
        covered = interior.copy()
        if self._overlapping:
            rest = ~interior
        else:
            # Without overlaps a point interior to one grid lies on no other grid,
            # so only points interior to none need the covers test.
            rest = ~np.logical_or.reduceat(interior, first)[pair_point]
        covered[rest] = self._test(shapely.intersects_xy, pair_rank[rest], px[rest], py[rest])
        # Candidates ascend by rank within a point, so the minimum is the smallest code.
        best = np.minimum.reduceat(np.where(covered, pair_rank, _NO_RANK), first)
        best_interior = np.minimum.reduceat(np.where(interior, pair_rank, _NO_RANK), first)
        hit = best != _NO_RANK
        rank[near[hit]] = best[hit]
        status[near[hit]] = np.where(best_interior[hit] == best[hit], _INSIDE, _BOUNDARY)
        distance[near[hit]] = 0.0

    def _test(self, predicate, ranks: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """``predicate(grid, x, y)`` per pair, with the pairs grouped by grid.

        The *_xy predicates skip building point geometries (contains = interior,
        intersects = covers for a point). Grouping keeps each prepared grid's
        point locator in cache: about 5x faster than pairs in point order.
        """
        order = np.argsort(ranks)
        result = np.empty(len(ranks), dtype=bool)
        result[order] = predicate(self._geoms[ranks[order]], x[order], y[order])
        return result

    def _snap(self, x, y, loose, tolerance, rank, status, distance) -> None:
        """Nearest grid within ``tolerance`` metres for uncovered points (in place)."""
        tree, transformer = self._metric_index()
        mx, my = transformer.transform(x[loose], y[loose])
        finite = np.isfinite(mx) & np.isfinite(my)  # off the projection's domain
        loose, mx, my = loose[finite], mx[finite], my[finite]
        points = shapely.points(mx, my)
        # All grids within the tolerance (a tree query with early-out distance
        # tests, ~5x faster than query_nearest), then the nearest of them.
        point, grid = tree.query(points, predicate="dwithin", distance=tolerance)
        if len(point) == 0:  # nothing within the tolerance: every point stays outside
            return
        dist = shapely.distance(tree.geometries[grid], points[point])
        # By point, then distance, then rank: ties go to the smallest code.
        order = np.lexsort((grid, dist, point))
        point, grid, dist = point[order], grid[order], dist[order]
        first = np.concatenate(([True], point[1:] != point[:-1]))
        rank[loose[point[first]]] = grid[first]
        status[loose[point[first]]] = _SNAPPED
        distance[loose[point[first]]] = dist[first]

    def _metric_index(self) -> tuple[shapely.STRtree, pyproj.Transformer]:
        # Built on first use (many callers never snap), once even under threads.
        with self._metric_lock:
            if self._metric is None:
                projected = gpd.GeoSeries(self._geoms, crs=self.crs).to_crs(self.metric_crs)
                transformer = pyproj.Transformer.from_crs(self.crs, self.metric_crs, always_xy=True)
                self._metric = (shapely.STRtree(np.asarray(projected.values)), transformer)
            return self._metric

    def _frame(self, rank, status, distance, index: pd.Index) -> pd.DataFrame:
        codes = self._codes_or_none[rank]  # rank -1 (outside) picks the trailing None
        # dtype=object explicitly: pandas 3 would otherwise infer its str dtype.
        return pd.DataFrame(
            {
                "code": pd.Series(codes, index=index, dtype=object, copy=False),
                "status": pd.Series(_STATUS_NAMES[status], index=index, dtype=object, copy=False),
                "distance_m": pd.Series(distance, index=index, copy=False),
            },
            copy=False,
        )


def assign_points(
    points: Any,
    grids: gpd.GeoDataFrame,
    code: str = "code",
    tolerance: float = 0.0,
    *,
    metric_crs: Any = None,
) -> pd.DataFrame:
    """Assign points to grids in one call (builds a :class:`GridIndex`).

    Parameters
    ----------
    points : geopandas.GeoSeries, geopandas.GeoDataFrame or (x, y)
        See :meth:`GridIndex.assign`.
    grids : geopandas.GeoDataFrame
        See :class:`GridIndex`.
    code : str, default "code"
        Column of ``grids`` with the grid codes.
    tolerance : float, default 0.0
        Snapping distance in metres; 0 disables snapping.
    metric_crs : anything pyproj.CRS accepts, optional
        See :class:`GridIndex`.

    Returns
    -------
    pandas.DataFrame
        Columns ``code``, ``status``, ``distance_m``, aligned with ``points``.

    See Also
    --------
    GridIndex : build once, assign many times.
    """
    # A raster sized to the job: building 16 M cells for a handful of points
    # would cost more than it saves.
    max_cells = int(np.clip(8 * _count(points), 1 << 16, DEFAULT_MAX_CELLS))
    index = GridIndex(grids, code=code, metric_crs=metric_crs, max_cells=max_cells)
    return index.assign(points, tolerance)


def _prepare(geoms: np.ndarray) -> None:
    """Prepare the grids and build their point locators now.

    GEOS builds a prepared polygon's point locator on first use, without a
    lock; shapely releases the GIL, so one test per grid here keeps concurrent
    queries (threaded web workers) from racing to build it.
    """
    shapely.prepare(geoms)
    coords, owner = shapely.get_coordinates(geoms, return_index=True)
    x, y = coords[np.searchsorted(owner, np.arange(len(geoms)))].T  # a vertex of each grid
    shapely.intersects_xy(geoms, x, y)
    shapely.contains_xy(geoms, x, y)


def _count(points: Any) -> int:
    """Number of points in any form :meth:`GridIndex.assign` accepts (0 if unknown)."""
    if isinstance(points, gpd.GeoDataFrame | gpd.GeoSeries):
        return len(points)
    if isinstance(points, Sequence) and len(points) == 2:
        return int(np.size(points[0]))
    return 0


# -- validation ------------------------------------------------------------------------
def _validated_grids(grids: Any, code: str) -> tuple[np.ndarray, np.ndarray]:
    """Codes (object array) and geometries of ``grids``, or an error naming every problem."""
    if not isinstance(grids, gpd.GeoDataFrame):
        raise ValidationError(f"grids must be a GeoDataFrame, got {type(grids).__name__}")
    if len(grids) == 0:
        raise ValidationError("grids is empty: at least one grid polygon is needed")
    if code not in grids.columns:
        raise ValidationError(
            f"code={code!r} is not a column of grids; columns are {list(map(str, grids.columns))}"
        )
    if grids.crs is None:
        raise CRSError("grids has no CRS; set it first, e.g. grids.set_crs('EPSG:4326')")
    codes = np.asarray(grids[code].to_numpy(dtype=object), dtype=object)
    geoms = np.asarray(grids.geometry.values, dtype=object)
    problems = _code_problems(codes, grids.index) + _geometry_problems(geoms, grids.index)
    if problems:
        raise ValidationError(
            f"grids rejected: bad codes in column {code!r} or bad geometries", problems
        )
    return codes, geoms


def _code_problems(codes: np.ndarray, index: pd.Index) -> list[dict]:
    problems = [
        {"row": row, "reason": f"code must be a non-empty string, got {value!r}"}
        for row, value in zip(index, codes, strict=True)
        if not isinstance(value, str) or not value
    ]
    duplicated = pd.Series(codes).duplicated(keep=False).to_numpy()
    problems += [
        {"row": row, "reason": f"duplicate code {value!r}"}
        for row, value, dup in zip(index, codes, duplicated, strict=True)
        if dup and isinstance(value, str)
    ]
    return problems


def _geometry_problems(geoms: np.ndarray, index: pd.Index) -> list[dict]:
    kind = shapely.get_type_id(geoms)
    polygonal = (kind == shapely.GeometryType.POLYGON) | (kind == shapely.GeometryType.MULTIPOLYGON)
    problems = [
        {
            "row": row,
            "reason": "geometry must be a Polygon or MultiPolygon, "
            f"got {'None' if g is None else g.geom_type}",
        }
        for row, g, ok in zip(index, geoms, polygonal, strict=True)
        if not ok
    ]
    empty = polygonal & shapely.is_empty(geoms)
    problems += [{"row": row, "reason": "geometry is empty"} for row in index[empty]]
    checked = polygonal & ~empty
    invalid = np.zeros(len(geoms), dtype=bool)
    invalid[checked] = ~shapely.is_valid(geoms[checked])
    problems += [
        {"row": row, "reason": f"invalid geometry ({reason}); repair it, e.g. shapely.make_valid"}
        for row, reason in zip(index[invalid], shapely.is_valid_reason(geoms[invalid]), strict=True)
    ]
    return problems


def _as_crs(value: Any, name: str) -> pyproj.CRS:
    try:
        return pyproj.CRS.from_user_input(value)
    except pyproj.exceptions.CRSError as error:
        raise CRSError(f"{name}={value!r} is not a CRS pyproj understands: {error}") from error


def _check_same_crs(crs: pyproj.CRS | None, grids_crs: pyproj.CRS, name: str) -> None:
    if crs is None:
        raise CRSError(
            f"{name} has no CRS; the grids are in {grids_crs.to_string()}: set it with set_crs(...)"
        )
    # EPSG:4326 and OGC:CRS84 differ only in axis order, which geopandas ignores.
    if not crs.equals(grids_crs, ignore_axis_order=True):
        raise CRSError(
            f"{name} are in {crs.to_string()} but the grids are in "
            f"{grids_crs.to_string()}; reproject with .to_crs(...)"
        )


def _checked_tolerance(tolerance: Any) -> float:
    if isinstance(tolerance, bool) or not isinstance(tolerance, int | float | np.number):
        raise ValidationError(f"tolerance must be a number of metres >= 0, got {tolerance!r}")
    if not (np.isfinite(tolerance) and tolerance >= 0):
        raise ValidationError(
            f"tolerance must be a finite number of metres >= 0, got {tolerance!r}"
        )
    return float(tolerance)


def _is_positive(value: Any) -> bool:
    return (
        isinstance(value, int | float | np.number)
        and not isinstance(value, bool)
        and bool(np.isfinite(value))
        and bool(value > 0)
    )


def _coordinate_arrays(x: Any, y: Any) -> tuple[np.ndarray, np.ndarray]:
    try:
        x = np.ascontiguousarray(x, dtype=np.float64)
        y = np.ascontiguousarray(y, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise ValidationError(f"x and y must be arrays of numbers: {error}") from error
    if x.ndim != 1 or y.ndim != 1 or len(x) != len(y):
        raise ValidationError(
            f"x and y must be 1-D arrays of the same length, got shapes {x.shape} and {y.shape}"
        )
    return x, y


def _point_coordinates(
    points: gpd.GeoSeries | gpd.GeoDataFrame, crs: pyproj.CRS
) -> tuple[np.ndarray, np.ndarray]:
    """x and y of point geometries; NaN for None and empty points."""
    _check_same_crs(points.crs, crs, "points")
    geoms = np.asarray(points.geometry.values, dtype=object)
    try:
        # get_x/get_y give NaN for None and for non-points; GEOS refuses empty points.
        x, y = shapely.get_x(geoms), shapely.get_y(geoms)
    except shapely.errors.GEOSException:
        present = ~shapely.is_empty(geoms)
        x, y = np.full(len(geoms), np.nan), np.full(len(geoms), np.nan)
        x[present], y[present] = shapely.get_x(geoms[present]), shapely.get_y(geoms[present])
    # Only a NaN can hide a non-point, so only those need their type checked.
    suspect = np.flatnonzero(np.isnan(x))
    _check_points(geoms[suspect], points.index[suspect])
    return x, y


def _check_points(geoms: np.ndarray, index: pd.Index) -> None:
    kind = shapely.get_type_id(geoms)
    wrong = (kind != shapely.GeometryType.POINT) & (kind != shapely.GeometryType.MISSING)
    if wrong.any():
        rows: list[Hashable] = list(index[wrong][:5])
        raise ValidationError(
            f"points must be Point geometries (or None/empty); {int(wrong.sum())} are not, "
            f"e.g. rows {rows}",
            [
                {"row": row, "reason": f"geometry is a {g.geom_type}"}
                for row, g in zip(index[wrong], geoms[wrong], strict=True)
            ],
        )
