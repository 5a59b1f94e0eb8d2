"""Polygons in metres as arrays of vertices, and the pairs of boxes that meet.

The crosswalk of a city's grids needs their vertices in metres, their areas and
which of them meet which unit; it needs a projected *geometry* only where GEOS
measures a pair (a grid that is not convex, a unit with many vertices).
``GeoSeries.to_crs`` (or ``shapely.set_coordinates``) builds 39,000 new
geometries, most of the cost of projecting; here each distinct vertex is
projected once into arrays and a polygon's projected geometry is built only
when it is asked for.

:func:`box_pairs` finds the (query box, box) pairs that meet with a uniform hash
of the boxes in NumPy, where an STRtree would need a geometry for every box.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd
import pyproj
import shapely

__all__ = ["MetricPolygons", "box_pairs"]

#: A query that would visit more hash cells than this many per box goes to an STRtree.
_CELLS_PER_BOX = 64


@dataclass
class MetricPolygons:
    """Polygons in a metric CRS: the projected vertices, and geometries on demand.

    ``xy`` holds every vertex in :func:`shapely.get_coordinates` order (rings
    closed), ``which`` the polygon of each; ``source`` the geometries as given.
    """

    source: np.ndarray
    xy: np.ndarray
    which: np.ndarray
    transformed: bool
    _built: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._built = np.full(len(self.source), None, dtype=object)

    @classmethod
    def of(cls, geoms: Any, crs: Any = None) -> MetricPolygons:
        """``geoms`` (a GeoSeries, or an array already in metres when ``crs`` is None)
        in ``crs``, each distinct vertex transformed once.

        Neighbouring grids share their vertices (about four times each on a lattice):
        PROJ transforms each once, giving the coordinates ``GeoSeries.to_crs`` gives.
        """
        source = np.asarray(geoms.to_numpy() if hasattr(geoms, "to_numpy") else geoms)
        source = source.astype(object, copy=False)
        xy, which = shapely.get_coordinates(source, return_index=True)
        from_crs = getattr(geoms, "crs", None)
        if crs is None or from_crs is None or pyproj.CRS(from_crs) == pyproj.CRS(crs):
            return cls(source, xy, which, transformed=False)
        to_metric = pyproj.Transformer.from_crs(from_crs, crs, always_xy=True)
        vertex, distinct = _distinct_points(xy)
        x, y = to_metric.transform(distinct[:, 0], distinct[:, 1])
        return cls(source, np.column_stack([x, y])[vertex], which, transformed=True)

    def __len__(self) -> int:
        return len(self.source)

    def geoms(self, index: np.ndarray | None = None) -> np.ndarray:
        """The projected geometries of ``index`` (all when None), built once each."""
        index = np.arange(len(self.source)) if index is None else np.asarray(index, dtype=np.int64)
        if not self.transformed:
            return self.source[index]
        wanted = np.zeros(len(self.source), dtype=bool)
        wanted[index] = True
        missing = wanted & shapely.is_missing(self._built)
        if missing.any():
            self._built[missing] = shapely.set_coordinates(
                self.source[missing].copy(), self.xy[missing[self.which]]
            )
        return self._built[index]

    @cached_property
    def simple(self) -> np.ndarray:
        """Whether each is a polygon without holes (one closed ring of vertices)."""
        geoms = self.source
        simple = (shapely.get_type_id(geoms) == 3) & (shapely.get_num_interior_rings(geoms) == 0)
        return simple & ~shapely.is_empty(geoms)

    @cached_property
    def area(self) -> np.ndarray:
        """Areas in m², the very numbers ``shapely.area`` gives.

        A polygon without holes by GEOS's own sum (``Area::ofRingSigned``: x relative
        to the first vertex times the difference of its neighbours' y, added in ring
        order, which ``np.bincount`` keeps); the others by GEOS.
        """
        n = len(self.source)
        keep = self.simple[self.which]
        xy, which = self.xy[keep], self.which[keep]
        counts = np.bincount(which, minlength=n)
        start = np.zeros(n, dtype=np.int64)
        np.cumsum(counts[:-1], out=start[1:])
        pos = np.arange(len(which)) - start[which]
        inner = np.flatnonzero((pos >= 1) & (pos <= counts[which] - 2))
        x0 = xy[start[which[inner]], 0]
        term = (xy[inner, 0] - x0) * (xy[inner - 1, 1] - xy[inner + 1, 1])
        area = np.abs(np.bincount(which[inner], weights=term, minlength=n) / 2.0)
        others = np.flatnonzero(~self.simple)
        area[others] = shapely.area(self.geoms(others))
        return area

    @cached_property
    def bounds(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """minx, miny, maxx, maxy of each (NaN for an empty one)."""
        n = len(self.source)
        out = [np.full(n, np.nan) for _ in range(4)]
        if len(self.which) == 0:
            return out[0], out[1], out[2], out[3]
        starts = np.flatnonzero(np.r_[True, self.which[1:] != self.which[:-1]])
        owner = self.which[starts]
        for k, (reduce, col) in enumerate(
            ((np.minimum, 0), (np.minimum, 1), (np.maximum, 0), (np.maximum, 1))
        ):
            out[k][owner] = reduce.reduceat(self.xy[:, col], starts)
        return out[0], out[1], out[2], out[3]


def _distinct_points(xy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each row of ``xy`` the index of its point, and the distinct points."""
    vertex, distinct = pd.factorize(xy[:, 0] + 1j * xy[:, 1], use_na_sentinel=False)
    return vertex, np.column_stack([distinct.real, distinct.imag])


def box_pairs(
    query: tuple[np.ndarray, ...], boxes: tuple[np.ndarray, ...], *, ordered: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """(query index, box index) of every query box meeting a box, edges included.

    Both are (minx, miny, maxx, maxy) arrays; NaN boxes meet nothing. The pairs come
    by query, then (when ``ordered``) by box. Each box is hashed into the square cell,
    the size of a typical box, holding its lower-left corner; a query box looks in
    the cells from one widest box below and left of its own corner to its upper-right
    corner, so every box meeting it is met once.
    """
    qx0, qy0, qx1, qy1 = (np.asarray(a, dtype=float) for a in query)
    bx0, by0, bx1, by1 = (np.asarray(a, dtype=float) for a in boxes)
    q_ok = np.flatnonzero(~np.isnan(qx0))
    b_ok = np.flatnonzero(~np.isnan(bx0))
    none = np.zeros(0, dtype=np.int64)
    if len(q_ok) == 0 or len(b_ok) == 0:
        return none, none
    width, height = bx1[b_ok] - bx0[b_ok], by1[b_ok] - by0[b_ok]
    ox, oy = float(bx0[b_ok].min()), float(by0[b_ok].min())
    span_x, span_y = float(bx0[b_ok].max()) - ox, float(by0[b_ok].max()) - oy
    size = max(float(np.median(np.maximum(width, height))), span_x / 4096, span_y / 4096, 1e-9)
    nx, ny = int(span_x // size) + 1, int(span_y // size) + 1
    # A little more than the widest box, so that rounding never hides one.
    reach_x = float(width.max()) * (1 + 1e-9) + size * 1e-6
    reach_y = float(height.max()) * (1 + 1e-9) + size * 1e-6

    def cell(v: np.ndarray, origin: float, n: int) -> np.ndarray:
        return np.clip(np.floor((v - origin) / size), 0, n - 1).astype(np.int64)

    key = cell(bx0[b_ok], ox, nx) * ny + cell(by0[b_ok], oy, ny)
    order = np.argsort(key, kind="stable")
    key, b_of = key[order], b_ok[order]
    ix0, iy0 = cell(qx0[q_ok] - reach_x, ox, nx), cell(qy0[q_ok] - reach_y, oy, ny)
    ix1, iy1 = cell(qx1[q_ok], ox, nx), cell(qy1[q_ok], oy, ny)
    # One visit per query and column of cells: the column's cells are one run of keys.
    columns = ix1 - ix0 + 1
    cells = int(np.sum(columns * (iy1 - iy0 + 1)))
    if cells > _CELLS_PER_BOX * (len(q_ok) + len(b_ok)):  # boxes of very different sizes
        return _tree_pairs(query, boxes, q_ok, b_ok, ordered)
    column, visit = _ranges(ix0, columns)
    lo = np.searchsorted(key, column * ny + iy0[visit], side="left")
    hi = np.searchsorted(key, column * ny + iy1[visit], side="right")
    member, run = _ranges(lo, hi - lo)
    q, b = q_ok[visit[run]], b_of[member]
    meet = (bx0[b] <= qx1[q]) & (qx0[q] <= bx1[b]) & (by0[b] <= qy1[q]) & (qy0[q] <= by1[b])
    q, b = q[meet], b[meet]
    if ordered:
        order = np.argsort(q * len(bx0) + b, kind="stable")
        q, b = q[order], b[order]
    return q, b


def _ranges(starts: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For ranges ``starts[i] : starts[i] + counts[i]``: every member, and its range."""
    owner = np.repeat(np.arange(len(counts)), counts)
    offsets = np.cumsum(counts) - counts
    return starts[owner] + np.arange(len(owner)) - offsets[owner], owner


def _tree_pairs(query, boxes, q_ok, b_ok, ordered) -> tuple[np.ndarray, np.ndarray]:
    """:func:`box_pairs` by an STRtree, for boxes of very different sizes."""
    tree = shapely.STRtree(shapely.box(*(a[b_ok] for a in boxes)))
    q, b = tree.query(shapely.box(*(a[q_ok] for a in query)))
    q, b = q_ok[q], b_ok[b]
    order = np.lexsort((b, q)) if ordered else np.argsort(q, kind="stable")
    return q[order], b[order]
