"""The crosswalk of a theme and the grids: who shares which grid, and how well they align.

For every (thematic unit, grid) pair that share area: the shared area as a share
of the grid and of the unit, and the households in it. Households are counted
through the micro-grids (buildings) when they are given: a micro-grid's
households are split between units by area, then summed per grid. Without
micro-grids a grid's households are split by area share.

Each grid is ``aligned`` when at least ``threshold`` (default 99 %) of its area
lies in one unit, ``split`` when it does not (the units and areas it is split
into are listed), ``uncovered`` when no unit touches it. The theme's alignment
score is the share of the grids it touches that are aligned, and the share of
its boundary length lying within ``tolerance_m`` metres of a grid boundary.
Everything is measured in :func:`gis.crs.metric_crs` of the grids.

How, for 39,000 micro-grids in a fraction of a second: the grids are projected as
arrays of vertices, each distinct vertex once, and their areas and boxes read
from them (:mod:`gis.layers.vertices`; a projected geometry is built only for a
grid GEOS must measure); pairs come from one hash of the grids' boxes; the shared
areas of convex grids are clipped in NumPy (:mod:`gis.layers.clip`), the other
pairs measured by GEOS; the boundary score compares pieces of the theme's
boundary with the nearby grid edges in closed form. The tables take their codes
from pandas' own text arrays. ``benchmarks/bench_crosswalk.py`` checks the shares
against ``geopandas.overlay`` and times both.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any, Literal

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely

from gis.crs import metric_crs
from gis.layers.clip import (
    ConvexCells,
    clipped_areas,
    convex_cells_of,
    only,
    polygon_rings,
    segments_meet_cells,
    subject_vertices,
)
from gis.layers.vertices import MetricPolygons, box_pairs

__all__ = [
    "CROSSWALK_COLUMNS",
    "GRID_CLASS_COLUMNS",
    "Crosswalk",
    "GridClass",
    "alignment_score",
    "build_crosswalk",
    "shared_areas",
]

GridClass = Literal["aligned", "split", "uncovered"]

#: One row per (unit, grid) pair sharing area.
CROSSWALK_COLUMNS = [
    "unit_code",
    "unit_name",
    "grid_code",
    "grid_name",
    "shared_m2",
    "share_of_grid",
    "share_of_unit",
    "households",
    "household_share",
    "grid_status",
]

#: One row per grid: its class, the unit holding most of it, and what it is split into.
GRID_CLASS_COLUMNS = [
    "grid_code",
    "grid_name",
    "status",
    "unit_code",
    "share",
    "area_m2",
    "outside_m2",
    "households",
    "units",
    "split_into",
]

#: The grid classes, in the order :func:`_classify` numbers them, as pandas holds text.
_STATUS_TEXT = pd.Series(["aligned", "split", "uncovered"]).array

#: Shared areas below this (m²) are touching edges and rounding, not sharing.
MIN_SHARED_M2 = 1e-6

#: Units with more vertices than this are measured by GEOS: clipping would cut every
#: vertex of the unit for every grid it touches, GEOS only those near the grid.
CLIPPED_VERTICES = 256


@dataclass
class Crosswalk:
    """What :func:`build_crosswalk` found for one theme.

    ``classes`` is :attr:`grids` without the ``split_into`` text, which is formatted
    from the pairs when :attr:`grids` is first read (a few microseconds a piece,
    more than the rest of the crosswalk when a theme cuts thousands of grids).
    """

    pairs: pd.DataFrame
    classes: pd.DataFrame
    score: dict[str, Any]
    threshold: float
    tolerance_m: float

    @cached_property
    def grids(self) -> pd.DataFrame:
        """One row per grid (:data:`GRID_CLASS_COLUMNS`): its class, main unit and pieces."""
        listing = _split_listing(self.pairs)
        text = [listing.get(code, "") for code in self.classes["grid_code"].tolist()]
        grids = self.classes.assign(split_into=np.array(text, dtype=object))
        return grids[GRID_CLASS_COLUMNS]

    @property
    def split(self) -> pd.DataFrame:
        """The split grids, largest first."""
        split = self.grids[self.grids["status"] == "split"]
        return split.sort_values("area_m2", ascending=False)

    def units_of_grid(self, grid_code: str) -> pd.DataFrame:
        """The pairs of one grid, largest share first."""
        rows = self.pairs[self.pairs["grid_code"] == grid_code]
        return rows.sort_values("share_of_grid", ascending=False)


def build_crosswalk(
    units: gpd.GeoDataFrame,
    grids: gpd.GeoDataFrame,
    micro_grids: gpd.GeoDataFrame | None = None,
    *,
    threshold: float = 0.99,
    tolerance_m: float = 10.0,
    metric: Any = None,
) -> Crosswalk:
    """Relate a theme's units (``code``, ``name``, geometry) to the grids.

    Parameters
    ----------
    units : GeoDataFrame
        The theme's units: ``code``, optional ``name``, polygons.
    grids : GeoDataFrame
        The grids: ``code``, optional ``name`` and ``households``, polygons.
    micro_grids : GeoDataFrame, optional
        Micro-grids with ``parent_code`` (their grid) and ``households``.
    threshold : float
        Share of a grid's area in one unit from which the grid counts as aligned.
    tolerance_m : float
        Distance from a grid boundary within which the theme's boundary counts as
        following it.
    metric : CRS, optional
        The metric CRS; by default :func:`gis.crs.metric_crs` of the grids.
    """
    if not 0 < threshold <= 1:
        raise ValueError(f"threshold must be in (0, 1], got {threshold}")
    crs = metric_crs(grids, metric)
    unit_geoms = _projected(units.geometry, crs)
    grid_m = MetricPolygons.of(grids.geometry, crs)
    # The grids' convex shapes and the theme's boundary near them serve both the
    # shares and the boundary score.
    near = _Near.of(grid_m, unit_geoms, tolerance_m)
    grid_i, unit_i, shared = _shared_areas(grid_m, unit_geoms, near)
    grid_area = grid_m.area
    unit_area = shapely.area(unit_geoms)
    # The codes as pandas holds text: the tables take from them without reading
    # every string again.
    grid_code_text = grids["code"].astype(str).array
    unit_code_text = units["code"].astype(str).array
    grid_codes = np.asarray(grid_code_text, dtype=object)
    households, grid_households = _pair_households(
        grids, grid_codes, grid_i, unit_i, shared / grid_area[grid_i], unit_geoms, micro_grids, crs
    )
    share_of_grid = shared / grid_area[grid_i]
    # Pairs by grid code, then largest share first.
    order = np.lexsort((-share_of_grid, _ranks(grid_codes)[grid_i]))
    grid_i, unit_i, shared, share_of_grid = (
        grid_i[order],
        unit_i[order],
        shared[order],
        share_of_grid[order],
    )
    households = households[order]
    classes, status = _classify(
        grid_i,
        unit_i,
        unit_code_text,
        shared,
        share_of_grid,
        grids,
        grid_code_text,
        grid_area,
        grid_households,
        threshold,
    )
    pairs = pd.DataFrame(
        {
            "unit_code": _text_at(unit_code_text, unit_i),
            "unit_name": _taken(units, "name", unit_i),
            "grid_code": _text_at(grid_code_text, grid_i),
            "grid_name": _taken(grids, "name", grid_i),
            "shared_m2": shared,
            "share_of_grid": share_of_grid,
            "share_of_unit": shared / unit_area[unit_i],
            "households": households,
            "household_share": _ratio(households, grid_households[grid_i]),
            "grid_status": _text_at(_STATUS_TEXT, status[grid_i]),
        },
        copy=False,
    )
    score = alignment_score(classes, unit_geoms, grid_m, tolerance_m, near=near)
    return Crosswalk(pairs, classes, score, threshold, tolerance_m)


def shared_areas(
    units: gpd.GeoDataFrame, grids: gpd.GeoDataFrame, *, metric: Any = None
) -> pd.DataFrame:
    """Only the shares: every (grid, unit) pair sharing area, by grid then unit.

    ``grid_code``, ``unit_code``, ``shared_m2``, ``share_of_grid``, ``share_of_unit``
    in the metric CRS of the grids; what :func:`build_crosswalk` starts from, and
    what ``geopandas.overlay(how="intersection")`` and a groupby give.
    """
    crs = metric_crs(grids, metric)
    unit_geoms = _projected(units.geometry, crs)
    grid_m = MetricPolygons.of(grids.geometry, crs)
    grid_i, unit_i, shared = _shared_areas(grid_m, unit_geoms)
    return pd.DataFrame(
        {
            "grid_code": grids["code"].astype(str).to_numpy()[grid_i],
            "unit_code": units["code"].astype(str).to_numpy()[unit_i],
            "shared_m2": shared,
            "share_of_grid": shared / grid_m.area[grid_i],
            "share_of_unit": shared / shapely.area(unit_geoms)[unit_i],
        }
    )


def _ranks(codes: np.ndarray) -> np.ndarray:
    """The rank of each code in code order."""
    ranks = np.empty(len(codes), dtype=np.int64)
    ranks[np.argsort(codes, kind="stable")] = np.arange(len(codes))  # codes are str
    return ranks


def _shared_areas(
    grids: MetricPolygons, unit_geoms: np.ndarray, near: _Near | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(grid index, unit index, shared m²) of every pair sharing area, by grid then unit.

    A convex grid that no unit boundary meets lies wholly inside the units holding
    one of its corners (or outside all): its shared area is its own, with nothing
    to compute. The others share with the units whose boxes meet theirs what
    :func:`gis.layers.clip.clipped_areas` finds when the grid is convex and the unit
    has at most :data:`CLIPPED_VERTICES` vertices, and GEOS otherwise.
    """
    near = _Near.of(grids, unit_geoms, 0.0) if near is None else near
    unit_i, grid_i = box_pairs(
        tuple(shapely.bounds(unit_geoms).T), grids.bounds, ordered=False
    )  # the areas decide
    cells = near.cells
    cut = near.cut()
    whole = ~cut[grid_i]
    corner = cells.start[grid_i[whole]]
    shapely.prepare(unit_geoms)
    inside = shapely.contains_xy(unit_geoms[unit_i[whole]], cells.x[corner], cells.y[corner])
    whole_grid, whole_unit = grid_i[whole][inside], unit_i[whole][inside]
    grid_i, unit_i = grid_i[~whole], unit_i[~whole]
    rings = polygon_rings(unit_geoms)
    fast = cells.convex[grid_i] & (subject_vertices(rings) <= CLIPPED_VERTICES)[unit_i]
    shared = np.empty(len(grid_i))
    shared[fast] = clipped_areas(cells, grid_i[fast], rings, unit_i[fast])
    shared[~fast] = _geos_shared(grids.geoms(grid_i[~fast]), unit_geoms, unit_i[~fast])
    grid_i, unit_i = np.r_[grid_i, whole_grid], np.r_[unit_i, whole_unit]
    shared = np.r_[shared, grids.area[whole_grid]]
    keep = np.flatnonzero(shared > MIN_SHARED_M2)
    keep = keep[np.lexsort((unit_i[keep], grid_i[keep]))]
    return grid_i[keep], unit_i[keep], shared[keep]


@dataclass
class _Near:
    """The grids (vertices, convex shapes) and the theme's boundary cut into pieces no
    longer than a grid, each piece with the grids whose boxes come within ``reach``.
    """

    grids: MetricPolygons
    cells: ConvexCells
    length: float
    pieces: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]
    piece: np.ndarray
    grid: np.ndarray
    reach: float

    @classmethod
    def of(cls, grids: MetricPolygons | np.ndarray, unit_geoms: np.ndarray, reach: float) -> _Near:
        """``grids`` (or their geometries in metres) near the boundary of ``unit_geoms``."""
        if not isinstance(grids, MetricPolygons):
            grids = MetricPolygons.of(grids)
        cells = convex_cells_of(grids.simple, grids.xy, grids.which)
        lines = shapely.line_merge(shapely.union_all(shapely.boundary(unit_geoms)))
        length = float(shapely.length(lines)) if len(unit_geoms) else 0.0
        if length == 0 or len(grids) == 0:
            empty = np.zeros(0)
            none = np.zeros(0, dtype=np.int64)
            return cls(grids, cells, length, (empty,) * 4, none, none, reach)
        step = max(float(np.sqrt(np.median(grids.area))), reach, 1e-9)
        x0, y0, x1, y1 = _pieces(lines, step)
        boxes = (
            np.minimum(x0, x1) - reach,
            np.minimum(y0, y1) - reach,
            np.maximum(x0, x1) + reach,
            np.maximum(y0, y1) + reach,
        )
        piece, grid = box_pairs(boxes, grids.bounds)
        return cls(grids, cells, length, (x0, y0, x1, y1), piece, grid, reach)

    def cut(self) -> np.ndarray:
        """Per grid: whether a unit's boundary meets it (always True for a grid not convex)."""
        cut = ~self.cells.convex
        x0, y0, x1, y1 = self.pieces
        # The pairs came within ``reach``; a piece can meet only a grid whose box its
        # own box meets (a micrometre more, for rounding).
        close = self.cells.convex[self.grid] & _boxes_meet(
            (np.minimum(x0, x1), np.minimum(y0, y1), np.maximum(x0, x1), np.maximum(y0, y1)),
            self.piece,
            self.grids.bounds,
            self.grid,
            1e-6,
        )
        piece, grid = self.piece[close], self.grid[close]
        x0, y0, x1, y1 = (a[piece] for a in self.pieces)
        cut[grid[segments_meet_cells(self.cells, grid, x0, y0, x1, y1)]] = True
        return cut

    def edges(self, grids: np.ndarray) -> tuple[np.ndarray, ...]:
        """Every edge of ``grids`` (indices, sorted): ax, ay, bx, by and the grid's position."""
        convex = self.cells.convex[grids]
        # Convex grids: their corners, already known; the others from their rings.
        own, owner = _ranges(self.cells.start[grids[convex]], self.cells.count[grids[convex]])
        size = self.cells.count[grids[convex]][owner]
        first = self.cells.start[grids[convex]][owner]
        nxt = first + (own - first + 1) % size
        x, y = self.cells.x, self.cells.y
        ax, ay, bx, by, other = _edges(self.grids.geoms(grids[~convex]))
        position = np.r_[np.flatnonzero(convex)[owner], np.flatnonzero(~convex)[other]]
        order = np.argsort(position, kind="stable")
        return (
            np.r_[x[own], ax][order],
            np.r_[y[own], ay][order],
            np.r_[x[nxt], bx][order],
            np.r_[y[nxt], by][order],
            position[order],
        )


def _geos_shared(grids: np.ndarray, unit_geoms: np.ndarray, unit_i: np.ndarray) -> np.ndarray:
    """Shared areas by GEOS; a grid wholly inside its unit needs no intersection."""
    shapely.prepare(unit_geoms)
    units = unit_geoms[unit_i]
    shared = np.zeros(len(grids))
    meets = shapely.intersects(units, grids)
    inside = meets & shapely.contains_properly(units, grids)
    shared[inside] = shapely.area(grids[inside])
    cut = meets & ~inside
    shared[cut] = shapely.area(shapely.intersection(grids[cut], units[cut]))
    return shared


def _projected(geoms: gpd.GeoSeries, crs: Any) -> np.ndarray:
    """``geoms`` in ``crs`` as an array, each distinct vertex transformed once.

    Neighbouring grids share their vertices (about four times each on a lattice):
    PROJ transforms each once, giving the coordinates ``GeoSeries.to_crs`` gives
    at a fraction of the cost.
    """
    if geoms.crs is None or pyproj.CRS(geoms.crs) == pyproj.CRS(crs):
        return geoms.to_numpy()
    to_metric = pyproj.Transformer.from_crs(geoms.crs, crs, always_xy=True)
    array = geoms.to_numpy()
    xy = shapely.get_coordinates(array)
    which, distinct = pd.factorize(xy[:, 0] + 1j * xy[:, 1], use_na_sentinel=False)
    x, y = to_metric.transform(np.real(distinct), np.imag(distinct))
    return shapely.set_coordinates(array.copy(), np.column_stack([x, y])[which])


def _pair_households(
    grids, grid_codes, grid_i, unit_i, share_of_grid, unit_geoms, micro_grids, crs
) -> tuple[np.ndarray, np.ndarray]:
    """Households of each pair and of each grid (NaN when nothing says how many live there)."""
    if micro_grids is not None and len(micro_grids) and "households" in micro_grids:
        return _households_through_micro(grid_codes, grid_i, unit_i, unit_geoms, micro_grids, crs)
    if "households" in grids:
        per_grid = pd.to_numeric(grids["households"], errors="coerce").to_numpy(dtype=float)
        return per_grid[grid_i] * share_of_grid, per_grid
    return np.full(len(grid_i), np.nan), np.full(len(grid_codes), np.nan)


def _households_through_micro(grid_codes, grid_i, unit_i, unit_geoms, micro_grids, crs):
    micro = micro_grids[micro_grids["parent_code"].astype(str).isin(set(grid_codes))]
    hh = pd.to_numeric(micro["households"], errors="coerce").fillna(0).to_numpy(dtype=float)
    parent = micro["parent_code"].astype(str).to_numpy()
    grid_households = (
        pd.Series(hh).groupby(parent).sum().reindex(grid_codes, fill_value=0.0).to_numpy()
    )
    geoms = MetricPolygons.of(micro.geometry, crs)
    m_i, u_i, shared = _shared_areas(geoms, unit_geoms)
    in_unit = hh[m_i] * shared / geoms.area[m_i]
    by_pair = pd.Series(in_unit).groupby([parent[m_i], u_i]).sum()
    keys = pd.MultiIndex.from_arrays([grid_codes[grid_i], unit_i])
    return by_pair.reindex(keys, fill_value=0.0).to_numpy(), grid_households


def _classify(
    grid_i,
    unit_i,
    unit_codes,
    shared,
    share_of_grid,
    grids,
    grid_codes,
    grid_area,
    grid_households,
    threshold,
) -> tuple[pd.DataFrame, np.ndarray]:
    """One row per grid: aligned, split or uncovered, with the units it lies in, and the
    status of each grid as a position in :data:`_STATUS_TEXT`.

    The pairs come by grid, largest share first: the first pair of a grid is its main unit.
    """
    n = len(grid_codes)
    first = np.flatnonzero(np.r_[True, grid_i[1:] != grid_i[:-1]]) if len(grid_i) else grid_i
    grids_with = grid_i[first]
    share = np.full(n, np.nan)
    share[grids_with] = share_of_grid[first]
    main = np.full(n, -1, dtype=np.int64)  # -1: no unit
    main[grids_with] = unit_i[first]
    covered = np.bincount(grid_i, weights=shared, minlength=n)
    status = np.where(np.isnan(share), 2, np.where(share >= threshold, 0, 1))
    classes = pd.DataFrame(
        {
            "grid_code": _text_at(grid_codes, np.arange(n)),
            "grid_name": _column(grids, "name").copy(),  # not a view of ``grids``
            "status": _text_at(_STATUS_TEXT, status),
            "unit_code": _text_at(unit_codes, main),
            "share": np.nan_to_num(share),
            "area_m2": grid_area,
            "outside_m2": np.maximum(grid_area - covered, 0.0),
            "households": grid_households.copy(),
            "units": np.bincount(grid_i, minlength=n),
        },
        copy=False,
    )
    return classes, status


#: Pieces under this (m²) are left out of a split grid's listing (they stay in the pairs):
#: real layers drawn separately touch with slivers of a few cm².
_LISTED_M2 = 1.0


def _split_listing(pairs: pd.DataFrame) -> dict[str, str]:
    """Grid code → "unit: m² (share); …" of the split grids, largest share first."""
    rows = pairs[(pairs["grid_status"] == "split") & (pairs["shared_m2"] >= _LISTED_M2)]
    pieces: dict[str, list[str]] = {}
    for grid, unit, m2, share in zip(
        rows["grid_code"].tolist(),
        rows["unit_code"].tolist(),
        rows["shared_m2"].tolist(),
        rows["share_of_grid"].tolist(),
        strict=True,
    ):
        pieces.setdefault(grid, []).append(f"{unit}: {m2:,.0f} m² ({share:.1%})")
    return {grid: "; ".join(texts) for grid, texts in pieces.items()}


def alignment_score(
    classes: pd.DataFrame,
    unit_geoms: np.ndarray,
    grid_geoms: np.ndarray | MetricPolygons,
    tolerance_m: float,
    *,
    near: _Near | None = None,
) -> dict[str, Any]:
    """The theme's alignment: share of the grids it touches that are aligned, and of its
    boundary length within ``tolerance_m`` of a grid boundary (geometries in metres).
    """
    counts = classes["status"].value_counts()
    aligned, split = int(counts.get("aligned", 0)), int(counts.get("split", 0))
    touched = aligned + split
    length, within = _boundary_within(unit_geoms, grid_geoms, tolerance_m, near)
    return {
        "grids": int(len(classes)),
        "aligned": aligned,
        "split": split,
        "uncovered": int(counts.get("uncovered", 0)),
        "share_aligned": aligned / touched if touched else float("nan"),
        "boundary_m": length,
        "boundary_within_m": within,
        "share_boundary_within": within / length if length else float("nan"),
    }


def _boundary_within(
    unit_geoms: np.ndarray,
    grid_geoms: np.ndarray | MetricPolygons,
    tolerance_m: float,
    near: _Near | None = None,
) -> tuple[float, float]:
    """Length of the theme's boundary, and of the part within ``tolerance_m`` of a grid boundary.

    The theme's boundary (each shared edge once) is cut into pieces no longer than
    a grid; each piece is compared with every edge of the grids near it. The points
    of a piece within the tolerance of an edge form one interval (the band around an
    edge, a capsule, is convex), found in closed form for all (piece, edge) pairs at
    once; the piece's intervals are merged. Exact up to rounding, where buffering the
    grid boundaries approximates the capsules' round ends by polygons and costs
    seconds for 39,000 micro-grids.
    """
    if near is None or near.reach < tolerance_m:
        near = _Near.of(grid_geoms, unit_geoms, tolerance_m)
    if near.length == 0:
        return near.length, 0.0
    x0, y0, x1, y1 = near.pieces
    grids, grid = np.unique(near.grid, return_inverse=True)
    ax, ay, bx, by, owner = near.edges(grids)
    # Every edge of every grid near a piece.
    counts = np.bincount(owner, minlength=len(grids))
    edge, pair = _ranges((np.cumsum(counts) - counts)[grid], counts[grid])
    p = near.piece[pair]
    # Only the edges whose box comes within the tolerance (and a micrometre, for
    # rounding) of the piece's can have a point within it: the others' intervals are
    # empty, so leaving them out changes nothing.
    reach = tolerance_m * (1 + 1e-6) + 1e-6
    close = _boxes_meet(
        (np.minimum(x0, x1), np.minimum(y0, y1), np.maximum(x0, x1), np.maximum(y0, y1)),
        p,
        (np.minimum(ax, bx), np.minimum(ay, by), np.maximum(ax, bx), np.maximum(ay, by)),
        edge,
        reach,
    )
    p, edge = p[close], edge[close]
    lo, hi = _within_interval(
        x0[p], y0[p], x1[p], y1[p], ax[edge], ay[edge], bx[edge], by[edge], tolerance_m
    )
    hit = lo <= hi
    covered = _merged(np.concatenate([p, p])[hit], lo[hit], hi[hit], len(x0))
    return near.length, float(np.sum(covered * np.hypot(x1 - x0, y1 - y0)))


def _boxes_meet(a, a_i, b, b_i, reach: float) -> np.ndarray:
    """Whether box ``a[a_i]`` comes within ``reach`` of box ``b[b_i]`` in x and in y."""
    ax0, ay0, ax1, ay1 = a
    bx0, by0, bx1, by1 = b
    meet = bx0[b_i] <= ax1[a_i] + reach
    meet &= ax0[a_i] <= bx1[b_i] + reach
    meet &= by0[b_i] <= ay1[a_i] + reach
    meet &= ay0[a_i] <= by1[b_i] + reach
    return meet


def _edges(polygons: np.ndarray) -> tuple[np.ndarray, ...]:
    """Every edge of every ring of ``polygons``: ax, ay, bx, by and the polygon's index."""
    simple = (shapely.get_type_id(polygons) == 3) & (shapely.get_num_interior_rings(polygons) == 0)
    # A polygon without holes is one ring: its coordinates; the others ring by ring.
    coords, which = shapely.get_coordinates(only(polygons, simple), return_index=True)
    parts, part_of = shapely.get_parts(polygons[~simple], return_index=True)
    rings, ring_part = shapely.get_rings(parts, return_index=True)
    ring_coords, ring_of = shapely.get_coordinates(rings, return_index=True)
    owner = np.flatnonzero(~simple)[part_of[ring_part]]
    ring_ids = np.r_[which, len(polygons) + ring_of]  # rings after the simple polygons
    coords = np.concatenate([coords, ring_coords])
    polygon = np.r_[which, owner[ring_of]]
    same = ring_ids[1:] == ring_ids[:-1]
    a, b = coords[:-1][same], coords[1:][same]
    polygon = polygon[:-1][same]
    order = np.argsort(polygon, kind="stable")
    return a[order, 0], a[order, 1], b[order, 0], b[order, 1], polygon[order]


def _pieces(lines: Any, step: float) -> tuple[np.ndarray, ...]:
    """The segments of ``lines`` cut into pieces no longer than ``step``: x0, y0, x1, y1."""
    coords, which = shapely.get_coordinates(shapely.get_parts(lines), return_index=True)
    same = which[1:] == which[:-1]
    a, b = coords[:-1][same], coords[1:][same]
    n = np.maximum(np.ceil(np.hypot(*(b - a).T) / step).astype(np.int64), 1)
    seg = np.repeat(np.arange(len(a)), n)
    k = np.arange(len(seg)) - np.repeat(np.cumsum(n) - n, n)
    t0, t1 = k / n[seg], (k + 1) / n[seg]
    d = b[seg] - a[seg]
    start = a[seg] + d * t0[:, None]
    end = np.where((k + 1 == n[seg])[:, None], b[seg], a[seg] + d * t1[:, None])
    return start[:, 0], start[:, 1], end[:, 0], end[:, 1]


def _ranges(starts: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For ranges ``starts[i] : starts[i] + counts[i]``: every member, and its range."""
    owner = np.repeat(np.arange(len(counts)), counts)
    offsets = np.cumsum(counts) - counts
    return starts[owner] + np.arange(len(owner)) - offsets[owner], owner


def _within_interval(px0, py0, px1, py1, ax, ay, bx, by, tol):
    """Parameters [lo, hi] of the points of each piece within ``tol`` of each edge AB.

    The band around AB is the union of the disc around A, the rectangle along AB
    and the disc around B; B's disc is the next edge's A's, so each pair gives two
    intervals (disc, rectangle), one after the other; their union is merged later.
    """
    dx, dy = px1 - px0, py1 - py0
    rx, ry = px0 - ax, py0 - ay
    disc_lo, disc_hi = _line_in_disc(rx, ry, dx, dy, tol)
    ex, ey = bx - ax, by - ay
    edge = np.hypot(ex, ey)
    safe = np.where(edge > 0, edge, 1.0)
    ux, uy = ex / safe, ey / safe
    along = _slab(rx * ux + ry * uy, dx * ux + dy * uy, 0.0, edge)
    across = _slab(ry * ux - rx * uy, dy * ux - dx * uy, -tol, tol)
    rect_lo = np.where(edge > 0, np.maximum(along[0], across[0]), np.inf)
    rect_hi = np.minimum(along[1], across[1])
    lo = np.maximum(np.concatenate([disc_lo, rect_lo]), 0.0)
    hi = np.minimum(np.concatenate([disc_hi, rect_hi]), 1.0)
    return lo, hi


def _line_in_disc(rx, ry, dx, dy, tol):
    """t with |r + t d| ≤ tol: an interval, empty (lo > hi) when the line misses the disc."""
    a = dx * dx + dy * dy
    b = rx * dx + ry * dy
    c = rx * rx + ry * ry - tol * tol
    disc = b * b - a * c
    miss = (disc < 0) | (a == 0)
    root = np.sqrt(np.where(miss, 0.0, disc))
    safe = np.where(a > 0, a, 1.0)
    return np.where(miss, np.inf, (-b - root) / safe), np.where(miss, -np.inf, (-b + root) / safe)


def _slab(start, rate, low, high):
    """t with low ≤ start + t·rate ≤ high."""
    flat = rate == 0
    safe = np.where(flat, 1.0, rate)
    t1, t2 = (low - start) / safe, (high - start) / safe
    inside = (start >= low) & (start <= high)
    lo = np.where(flat, np.where(inside, -np.inf, np.inf), np.minimum(t1, t2))
    hi = np.where(flat, np.where(inside, np.inf, -np.inf), np.maximum(t1, t2))
    return lo, hi


def _merged(piece: np.ndarray, lo: np.ndarray, hi: np.ndarray, n: int) -> np.ndarray:
    """Per piece, the length (as a fraction of the piece) of the union of its intervals."""
    if len(piece) == 0:
        return np.zeros(n)
    order = np.lexsort((lo, piece))
    piece, lo, hi = piece[order], lo[order], hi[order]
    # Shift each piece's intervals by 2 × its number so one running maximum serves all.
    shift = 2.0 * piece
    reach = np.maximum.accumulate(hi + shift)
    before = np.r_[-np.inf, reach[:-1]]
    gained = np.maximum(0.0, (hi + shift) - np.maximum(lo + shift, before))
    return np.bincount(piece, weights=gained, minlength=n)


def _ratio(part: np.ndarray, whole: np.ndarray) -> np.ndarray:
    """part / whole, NaN where the whole is 0 or unknown (a grid nobody lives in)."""
    out = np.full(len(part), np.nan)
    np.divide(part, whole, out=out, where=whole > 0)
    return out


def _text_at(text: Any, index: np.ndarray) -> Any:
    """``text`` (pandas' text array) at ``index`` (-1: none), taken without reading every
    string again, and typed as pandas types the same strings in objects: text when
    there is one, else objects (None for none).
    """
    taken = text.take(index, allow_fill=True)
    if len(taken) and not taken.isna().all():
        return taken
    return np.full(len(taken), None, dtype=object)


def _taken(frame: pd.DataFrame, name: str, index: np.ndarray) -> Any:
    """``frame[name]`` at ``index``, as :func:`_column` gives it."""
    if name in frame and isinstance(frame[name].dtype, pd.StringDtype):
        taken = frame[name].array.take(index)
        if len(taken) and not taken.isna().all():
            return taken
    return _column(frame, name)[index]


def _column(frame: pd.DataFrame, name: str) -> np.ndarray:
    if name in frame:
        return frame[name].to_numpy(dtype=object)
    return np.full(len(frame), None, dtype=object)
