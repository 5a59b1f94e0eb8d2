"""Cell pre-index behind :class:`gis.assign.GridIndex` (private).

The grids' extent is cut into square cells and every cell gets one label:

* *interior*: no grid boundary comes near the cell, so the whole closed cell
  lies in the interior of the same set of grids; the label is the smallest
  rank (code order) of that set, and a point there is ``inside`` that grid
  without any geometric test;
* *outside*: no boundary comes near the cell and no grid covers it;
* *boundary*: some boundary segment passes within ``_MARGIN`` cell widths of
  the cell; the label points to the sorted ranks of the grids whose boundary
  does, and a point there takes an exact GEOS test against those grids only.

Classification is conservative, so answers stay exact: a cell is marked as
boundary when any segment comes within ``_MARGIN`` cell widths of it, which is
far more than the rounding error of locating a point in a cell. That margin
also keeps every interior or outside point far (in ulps) from every edge, where
GEOS's robust orientation test and PostGIS's plain floating-point one cannot
disagree.

Unmarked cells are labelled by connected components (4-connectivity): two
adjacent unmarked cells have no boundary between them, so a whole component
lies inside the same grids, and one point test per component labels it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely
from scipy import ndimage

from gis.errors import ValidationError

__all__ = [
    "CELL_LIMIT",
    "DEFAULT_MAX_CELLS",
    "OUTSIDE",
    "CellIndex",
    "build_cell_index",
    "has_overlaps",
]

#: Label of a cell (or point) outside every grid.
OUTSIDE = -1
#: Boundary cell ``b`` is stored as ``_FIRST_BOUNDARY - b``.
_FIRST_BOUNDARY = -2
#: How close (in cell widths) a segment must come to a cell to mark it.
_MARGIN = 1e-6
#: Default target share of the extent covered by boundary cells.
_BOUNDARY_SHARE = 0.03
#: Default cap on the number of cells (int32 labels: 64 MiB).
DEFAULT_MAX_CELLS = 1 << 24
#: Hard cap for an explicit cell size (1 GiB of labels).
CELL_LIMIT = 1 << 28


@dataclass(frozen=True)
class CellIndex:
    """A labelled raster over the grids' extent.

    Attributes
    ----------
    x0, y0 : float
        Lower-left corner of cell (0, 0), in the grids' CRS.
    cell : float
        Cell width and height, in the grids' CRS units.
    nx, ny : int
        Number of columns and rows.
    labels : numpy.ndarray of int32, shape (ny * nx,)
        Row-major labels: a grid rank for interior cells, ``OUTSIDE``, or
        ``_FIRST_BOUNDARY - b`` for boundary cell ``b``.
    pointers : numpy.ndarray of int64, shape (n_boundary + 1,)
        Boundary cell ``b`` has candidates ``ranks[pointers[b]:pointers[b + 1]]``.
    ranks : numpy.ndarray of int32
        Candidate grid ranks of the boundary cells, ascending within a cell.
    """

    x0: float
    y0: float
    cell: float
    nx: int
    ny: int
    labels: np.ndarray
    pointers: np.ndarray
    ranks: np.ndarray

    def __reduce__(self):
        # Pickled small (an index is cached on disk and shipped to Dask workers): the
        # labels are long runs once the boundary cells, numbered in scan order, are
        # taken out; 16 M cells of a city's micro-grids become a few MB.
        boundary = np.flatnonzero(self.labels <= _FIRST_BOUNDARY)
        runs = self.labels.copy()
        runs[boundary] = OUTSIDE
        start = np.flatnonzero(np.concatenate(([True], runs[1:] != runs[:-1])))
        lengths = np.diff(np.append(start, len(runs)))
        # int32 positions: a raster has at most CELL_LIMIT (2**28) cells.
        packed = (runs[start], lengths.astype(np.int32), boundary.astype(np.int32))
        fields = (self.x0, self.y0, self.cell, self.nx, self.ny)
        return (_unpack, (fields, packed, self.pointers, self.ranks))

    @property
    def n_boundary(self) -> int:
        """Number of boundary cells."""
        return len(self.pointers) - 1

    def locate(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Label of the cell holding each point; ``OUTSIDE`` off the raster or for NaN."""
        inverse = 1.0 / self.cell
        u = x - self.x0
        u *= inverse
        v = y - self.y0
        v *= inverse
        # NaN compares False, so non-finite points fall out here too.
        off = ~((u >= 0) & (u < self.nx) & (v >= 0) & (v < self.ny))
        u[off] = 0.0
        v[off] = 0.0
        # Truncation is floor here: every coordinate left is >= 0.
        flat = v.astype(np.int64)
        flat *= self.nx
        flat += u.astype(np.int64)
        labels = self.labels[flat]
        labels[off] = OUTSIDE
        return labels

    def locate_one(self, x: float, y: float) -> int:
        """:meth:`locate` for one point in plain Python: same arithmetic, no array overhead."""
        inverse = 1.0 / self.cell
        u = (x - self.x0) * inverse
        v = (y - self.y0) * inverse
        if not (0 <= u < self.nx and 0 <= v < self.ny):  # NaN fails here too
            return OUTSIDE
        return int(self.labels[int(v) * self.nx + int(u)])

    def candidates(self, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Candidate pairs of points in boundary cells.

        Parameters
        ----------
        labels : numpy.ndarray of int32
            Labels of boundary cells only (all ``<= _FIRST_BOUNDARY``).

        Returns
        -------
        point : numpy.ndarray of int64
            Position in ``labels`` of each pair, ascending.
        rank : numpy.ndarray of int32
            Candidate grid rank of each pair, ascending within a point.
        first : numpy.ndarray of int64
            Position of each point's first pair (every point has at least one).
        """
        cell = _FIRST_BOUNDARY - labels.astype(np.int64)
        start = self.pointers[cell]
        count = self.pointers[cell + 1] - start
        first = np.zeros(len(labels), dtype=np.int64)
        np.cumsum(count[:-1], out=first[1:])
        point = np.repeat(np.arange(len(labels)), count)
        offset = np.arange(len(point)) - first[point] + start[point]
        return point, self.ranks[offset], first


def _unpack(fields: tuple, packed: tuple, pointers: np.ndarray, ranks: np.ndarray) -> CellIndex:
    """The :class:`CellIndex` that ``CellIndex.__reduce__`` packed."""
    values, lengths, boundary = packed
    labels = np.repeat(values, lengths)
    labels[boundary] = _FIRST_BOUNDARY - np.arange(len(boundary), dtype=np.int32)
    x0, y0, cell, nx, ny = fields
    return CellIndex(x0, y0, cell, nx, ny, labels, pointers, ranks)


def build_cell_index(
    geoms: np.ndarray,
    cell_size: float | None = None,
    max_cells: int = DEFAULT_MAX_CELLS,
    overlapping: bool = False,
) -> CellIndex:
    """Label a raster over ``geoms`` (valid, non-empty polygons in rank order).

    Parameters
    ----------
    geoms : numpy.ndarray of shapely Polygon/MultiPolygon
        The grids, position = rank (ascending code).
    cell_size : float, optional
        Cell width in CRS units; by default chosen so that boundary cells cover
        about ``_BOUNDARY_SHARE`` of the extent, within ``max_cells`` cells.
    max_cells : int
        Upper bound on the number of cells when ``cell_size`` is not given.
    overlapping : bool
        Whether some grids' interiors overlap; then a boundary cell also lists
        every grid whose bounding box meets it, since a grid can cover a whole
        cell crossed only by another grid's boundary.

    Returns
    -------
    CellIndex
    """
    start, end, owner = _segments(geoms)
    xmin, ymin, xmax, ymax = shapely.total_bounds(geoms)
    if cell_size is None:
        cell_size = _default_cell_size(start, end, xmax - xmin, ymax - ymin, max_cells)
    # One spare cell on each side: every point off the raster is off every grid.
    x0, y0 = xmin - cell_size, ymin - cell_size
    nx = int(np.ceil((xmax - xmin) / cell_size)) + 2
    ny = int(np.ceil((ymax - ymin) / cell_size)) + 2
    if nx * ny > CELL_LIMIT:
        raise ValidationError(
            f"cell_size={cell_size!r} gives {nx * ny:,} cells over the grids' "
            f"extent; at most {CELL_LIMIT:,} are allowed"
        )
    grid = (x0, y0, cell_size, nx, ny)

    keys = _boundary_pairs(start, end, owner, grid, len(geoms))
    if overlapping:
        extra = _bbox_pairs(geoms, keys // len(geoms), grid, len(geoms))
        keys = _sorted_unique(np.concatenate((keys, extra)))
    cells, ranks = np.divmod(keys, len(geoms))
    boundary_cells, pointers = _csr(cells)
    labels = _label_cells(geoms, boundary_cells, grid)
    return CellIndex(x0, y0, cell_size, nx, ny, labels, pointers, ranks.astype(np.int32))


def _segments(geoms: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every ring segment as start (n, 2), end (n, 2) and owning rank (n,)."""
    parts, part_owner = shapely.get_parts(geoms, return_index=True)
    rings, ring_part = shapely.get_rings(parts, return_index=True)
    coords, ring_of = shapely.get_coordinates(rings, return_index=True)
    same_ring = ring_of[:-1] == ring_of[1:]
    owner = part_owner[ring_part[ring_of[:-1][same_ring]]]
    return coords[:-1][same_ring], coords[1:][same_ring], owner.astype(np.int64)


def _default_cell_size(
    start: np.ndarray, end: np.ndarray, width: float, height: float, max_cells: int
) -> float:
    """Cell width giving about ``_BOUNDARY_SHARE`` of boundary cells, memory permitting.

    A segment of length l marks about l / cell cells, so boundary cells cover
    about ``total_length * cell / area`` of the extent (shared edges count twice,
    which the share absorbs).
    """
    area = max(width * height, np.finfo(float).tiny)
    total_length = float(np.hypot(*(end - start).T).sum())
    by_share = _BOUNDARY_SHARE * area / max(total_length, np.finfo(float).tiny)
    by_memory = np.sqrt(area / max_cells)
    # Cap at a sixteenth of the extent so tiny inputs still get a real raster.
    return float(min(max(by_share, by_memory), max(width, height) / 16))


def _boundary_pairs(
    start: np.ndarray, end: np.ndarray, owner: np.ndarray, grid: tuple, n_grids: int
) -> np.ndarray:
    """Sorted unique keys ``cell * n_grids + rank`` of cells each grid's boundary marks.

    A closed segment meets a closed cell only if one of its endpoints lies in
    the cell or it crosses one of the cell's sides, which lie on grid lines; so
    marking the cells around every endpoint and every grid-line crossing marks
    every cell the segment touches. Widening each of those by ``_MARGIN`` marks
    every cell within about ``_MARGIN`` of the segment too.

    The widening adds a cell only where a point lies within ``_MARGIN`` of a
    grid line, so it is applied to those points alone, and runs of equal keys
    (a ring's consecutive vertices in one cell) are dropped before sorting: the
    sort of the keys is most of the time of a large index.
    """
    x0, y0, cell, nx, ny = grid
    u0, v0 = (start[:, 0] - x0) / cell, (start[:, 1] - y0) / cell
    u1, v1 = (end[:, 0] - x0) / cell, (end[:, 1] - y0) / cell
    shape = (nx, ny, n_grids)
    # Endpoints: every vertex starts some segment, since rings are closed.
    parts = list(_vertex_keys(u0, v0, owner, shape))
    # Crossings of the vertical lines u = k mark columns k - 1 and k ...
    seg, k, at = _crossings(u0, v0, u1, v1)
    parts += _crossing_keys(k, at, owner[seg], shape, vertical=True)
    # ... and crossings of the horizontal lines v = k mark rows k - 1 and k.
    seg, k, at = _crossings(v0, u0, v1, u1)
    parts += _crossing_keys(k, at, owner[seg], shape, vertical=False)
    keys = np.concatenate(parts)
    return _sorted_unique(keys[np.concatenate(([True], keys[1:] != keys[:-1]))])


def _widened(a: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cells ``floor(a - _MARGIN)`` and ``floor(a + _MARGIN)``, and where they differ."""
    low, high = np.floor(a - _MARGIN), np.floor(a + _MARGIN)
    return low, high, low != high


def _vertex_keys(u: np.ndarray, v: np.ndarray, owner: np.ndarray, shape: tuple):
    """Keys of the cells within ``_MARGIN`` of each vertex (one cell for most)."""
    col, col_high, col_split = _widened(u)
    row, row_high, row_split = _widened(v)
    both = col_split & row_split
    yield _cell_keys(col, row, owner, shape)
    yield _cell_keys(col_high[col_split], row[col_split], owner[col_split], shape)
    yield _cell_keys(col[row_split], row_high[row_split], owner[row_split], shape)
    yield _cell_keys(col_high[both], row_high[both], owner[both], shape)


def _crossing_keys(
    k: np.ndarray, at: np.ndarray, owner: np.ndarray, shape: tuple, vertical: bool
) -> list[np.ndarray]:
    """Keys of the cells on both sides of line ``k`` within ``_MARGIN`` of each crossing.

    ``vertical``: the lines are columns boundaries (``u = k``) and ``at`` is a row
    position; else rows boundaries and ``at`` a column position.
    """
    across, across_high, split = _widened(at)
    keys = []
    for sides, cross, who in (
        (k, across, owner),
        (k[split], across_high[split], owner[split]),
    ):
        # Both sides of a crossing next to each other: consecutive crossings of a
        # segment share a cell, which the run filter then drops.
        along = np.stack((sides - 1.0, sides), axis=1).ravel()
        cross, who = np.repeat(cross, 2), np.repeat(who, 2)
        col, row = (along, cross) if vertical else (cross, along)
        keys.append(_cell_keys(col, row, who, shape))
    return keys


def _cell_keys(col: np.ndarray, row: np.ndarray, who: np.ndarray, shape: tuple) -> np.ndarray:
    """Keys ``cell * n_grids + rank`` of (column, row, rank), cells clipped to the raster."""
    nx, ny, n_grids = shape
    col = col.clip(0, nx - 1).astype(np.int64)
    row = row.clip(0, ny - 1).astype(np.int64)
    key = row * nx
    key += col
    key *= n_grids
    key += who
    return key


def _crossings(
    a0: np.ndarray, b0: np.ndarray, a1: np.ndarray, b1: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Crossings of segments with the lines ``a = k`` (integer k).

    Returns the segment of each crossing, k, and b at the crossing. Segments
    parallel to the lines are skipped: they lie between two lines (marked by
    their endpoints) or on one (marked by the crossings of the other axis).
    """
    lo, hi = np.minimum(a0, a1), np.maximum(a0, a1)
    first = np.ceil(lo)
    count = np.where(a0 != a1, np.floor(hi) - first + 1, 0).clip(0).astype(np.int64)
    seg = np.repeat(np.arange(len(a0)), count)
    before = np.zeros(len(a0), dtype=np.int64)
    np.cumsum(count[:-1], out=before[1:])
    k = first[seg] + (np.arange(len(seg)) - before[seg])
    slope = (b1[seg] - b0[seg]) / (a1[seg] - a0[seg])
    return seg, k, b0[seg] + (k - a0[seg]) * slope


def _sorted_unique(keys: np.ndarray) -> np.ndarray:
    """``np.unique`` by sorting: NumPy 2's hash-based unique is slower on millions of ints."""
    keys = np.sort(keys)
    return keys[np.concatenate(([True], keys[1:] != keys[:-1]))]


def _csr(cells: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct values of sorted ``cells`` and the pointers to each run."""
    change = np.flatnonzero(cells[1:] != cells[:-1]) + 1
    starts = np.concatenate(([0], change))
    return cells[starts], np.concatenate((starts, [len(cells)])).astype(np.int64)


def _label_cells(geoms: np.ndarray, boundary_cells: np.ndarray, grid: tuple) -> np.ndarray:
    """Row-major cell labels: component ranks, ``OUTSIDE`` and boundary ids."""
    x0, y0, cell, nx, ny = grid
    free = np.ones(ny * nx, dtype=bool)
    free[boundary_cells] = False
    component, n = ndimage.label(free.reshape(ny, nx))
    component = component.ravel()
    row, col = np.divmod(_one_cell_each(component, n), nx)
    centres = shapely.points(x0 + (col + 0.5) * cell, y0 + (row + 0.5) * cell)
    point, rank = shapely.STRtree(geoms).query(centres, predicate="covered_by")
    best = np.full(n + 1, np.iinfo(np.int32).max, dtype=np.int64)
    np.minimum.at(best, point + 1, rank)
    best[best == np.iinfo(np.int32).max] = OUTSIDE
    labels = best.astype(np.int32)[component]
    labels[boundary_cells] = _FIRST_BOUNDARY - np.arange(len(boundary_cells), dtype=np.int32)
    return labels


def _one_cell_each(component: np.ndarray, n: int) -> np.ndarray:
    """A cell of each component 1..n (flat indices).

    scipy numbers components in order of first appearance in the scan, so the
    running maximum steps up exactly at each component's first cell; that order
    is not documented, hence the check and the slower general fallback.
    """
    running = np.maximum.accumulate(component)
    steps = np.flatnonzero(running[1:] != running[:-1]) + 1
    if running[0] != 0:  # the first cell starts component 1
        steps = np.concatenate(([0], steps))
    if len(steps) == n and np.array_equal(component[steps], np.arange(1, n + 1)):
        return steps
    sample = np.zeros(n + 1, dtype=np.int64)
    sample[component] = np.arange(component.size)  # the last write wins: any cell will do
    return sample[1:]


def _bbox_pairs(geoms: np.ndarray, cells: np.ndarray, grid: tuple, n_grids: int) -> np.ndarray:
    """Keys pairing each boundary cell with every grid whose bounding box meets it."""
    x0, y0, cell, nx, _ = grid
    cells = _sorted_unique(cells)
    row, col = np.divmod(cells, nx)
    boxes = shapely.box(
        x0 + col * cell, y0 + row * cell, x0 + (col + 1) * cell, y0 + (row + 1) * cell
    )
    box, rank = shapely.STRtree(geoms).query(boxes)
    return _sorted_unique(cells[box] * n_grids + rank)


def has_overlaps(geoms: np.ndarray) -> bool:
    """Whether the interiors of any two of ``geoms`` intersect.

    Candidate pairs come from the tree's bounding boxes alone and the relate test
    decides (quick on prepared geometries): an ``intersects`` filter first costs
    about as much as the relate tests it saves.
    """
    left, right = shapely.STRtree(geoms).query(geoms)
    pair = left < right
    return bool(shapely.relate_pattern(geoms[left[pair]], geoms[right[pair]], "T********").any())
