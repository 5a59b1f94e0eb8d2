"""Shared areas of many (convex polygon, polygon) pairs at once, in NumPy.

Most crosswalk pairs are a small convex cell (a lattice square, a building block)
and a department's unit. GEOS computes each intersection as a full overlay — tens
of microseconds a pair, most of it bookkeeping. Here every pair is clipped at
once: the unit's rings are cut by the half-plane of each edge of the convex cell
(Sutherland–Hodgman), all pairs in one array per step, and the area of what is
left is the shared area.

Why it is exact: clipping a closed ring by a half-plane keeps its winding number
inside the half-plane, so the signed area of the clipped rings is the area of
(cell ∩ unit) whatever the unit's shape — holes (clockwise rings) subtract,
parts add, and degenerate zero-width pieces left on a cell edge add nothing.
Coordinates are taken relative to a vertex of the cell, so the areas keep full
precision in a projected CRS whose coordinates are millions of metres.

Cells that are not simple convex polygons, and units with many vertices (whose
every vertex would be clipped for every cell), are left to GEOS by the caller.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely

__all__ = [
    "ConvexCells",
    "Rings",
    "clipped_areas",
    "convex_cells",
    "convex_cells_of",
    "only",
    "polygon_rings",
    "segments_meet_cells",
    "subject_vertices",
]

#: A turn smaller than this (relative to the edges' lengths) is a straight vertex.
_STRAIGHT = 1e-12


@dataclass(frozen=True)
class ConvexCells:
    """The edges of convex polygons, counter-clockwise, straight vertices dropped.

    ``convex[i]`` says whether polygon ``i`` is a simple convex polygon;
    ``x``/``y`` hold the vertices of those, ``start``/``count`` where each one's are.
    """

    convex: np.ndarray
    x: np.ndarray
    y: np.ndarray
    start: np.ndarray
    count: np.ndarray


@dataclass(frozen=True)
class Rings:
    """Every ring of polygons or multi-polygons: exteriors counter-clockwise, holes clockwise.

    Ring ``r`` has vertices ``x/y[vstart[r]: vstart[r] + vcount[r]]`` (not closed);
    geometry ``i`` has rings ``rstart[i]: rstart[i] + rcount[i]``.
    """

    x: np.ndarray
    y: np.ndarray
    vstart: np.ndarray
    vcount: np.ndarray
    rstart: np.ndarray
    rcount: np.ndarray


def _starts(counts: np.ndarray) -> np.ndarray:
    starts = np.zeros(len(counts), dtype=np.int64)
    np.cumsum(counts[:-1], out=starts[1:])
    return starts


def only(geoms: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """``geoms`` with None where ``keep`` is False (no coordinates, same indices)."""
    out = np.array(geoms, dtype=object)
    out[~keep] = None
    return out


def _open_ring_coords(rings: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Coordinates of rings without their closing vertex, the ring of each, and counts."""
    coords, which = shapely.get_coordinates(rings, return_index=True)
    return _opened(coords, which, n)


def _opened(
    coords: np.ndarray, which: np.ndarray, n: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Closed rings' ``coords`` (ring ``which``) without their closing vertex, and counts."""
    counts = np.bincount(which, minlength=n)
    closing = _starts(counts) + counts - 1
    keep = np.ones(len(coords), dtype=bool)
    keep[closing[counts > 0]] = False
    which = which[keep]
    return coords[keep], which, np.bincount(which, minlength=n)


def convex_cells(geoms: np.ndarray) -> ConvexCells:
    """Which of ``geoms`` are simple convex polygons, and their edges."""
    simple = (shapely.get_type_id(geoms) == 3) & (shapely.get_num_interior_rings(geoms) == 0)
    simple &= ~shapely.is_empty(geoms)
    xy, which = shapely.get_coordinates(only(geoms, simple), return_index=True)
    return convex_cells_of(simple, xy, which)


def convex_cells_of(simple: np.ndarray, xy: np.ndarray, which: np.ndarray) -> ConvexCells:
    """:func:`convex_cells` from the vertices: ``simple`` says which polygons have no
    holes; ``xy`` (polygon ``which``) their closed rings, as ``shapely.get_coordinates``
    gives them (vertices of the other polygons are ignored).
    """
    n = len(simple)
    # A polygon without holes has the coordinates of its exterior ring, closed.
    keep = simple[which]
    if not keep.all():
        xy, which = xy[keep], which[keep]
    x, y = xy[:, 0], xy[:, 1]
    closed = np.bincount(which, minlength=n)
    first = _starts(closed)
    last = (first + closed - 1)[closed > 0]  # the closing vertex, a copy of the first
    # The edge leaving each vertex; the one reaching it is the previous vertex's, or
    # for the first vertex the one reaching the closing vertex.
    bx, by = np.zeros(len(x)), np.zeros(len(y))
    np.subtract(x[1:], x[:-1], out=bx[:-1])
    np.subtract(y[1:], y[:-1], out=by[:-1])
    ax, ay = np.empty(len(x)), np.empty(len(y))
    ax[1:], ay[1:] = bx[:-1], by[:-1]
    ring_first = first[closed > 0]
    ax[ring_first], ay[ring_first] = bx[last - 1], by[last - 1]
    turn = ax * by - ay * bx
    # A closing vertex is no corner (its turn, towards the next ring, means nothing).
    straight = np.abs(turn) <= _STRAIGHT * np.hypot(ax, ay) * np.hypot(bx, by)
    straight[last] = True
    signed = np.bincount(which, weights=np.where(straight, 0.0, np.sign(turn)), minlength=n)
    corners = np.bincount(which, weights=~straight, minlength=n)
    # Convex: every corner turns the same way (their signs add up to their number).
    convex = simple & (corners >= 3) & (np.abs(signed) == corners)
    keep = ~straight & convex[which]
    ccw = signed[which] > 0
    x, y, which = x[keep], y[keep], which[keep]
    count = np.bincount(which, minlength=n)
    start = _starts(count)
    # Clockwise cells are read backwards.
    flip = ~ccw[keep]
    if flip.any():
        pos = np.arange(len(x)) - start[which]
        order = np.where(flip, start[which] + count[which] - 1 - pos, np.arange(len(x)))
        x, y = x[order], y[order]
    return ConvexCells(convex, x, y, start, count)


def polygon_rings(geoms: np.ndarray) -> Rings:
    """The rings of (multi-)polygons, oriented so that their signed areas add up."""
    n = len(geoms)
    oriented = shapely.orient_polygons(geoms, exterior_cw=False)
    parts, part_of = shapely.get_parts(oriented, return_index=True)
    rings, ring_part = shapely.get_rings(parts, return_index=True)
    ring_of = part_of[ring_part]
    coords, which, vcount = _open_ring_coords(rings, len(rings))
    rcount = np.bincount(ring_of, minlength=n)
    return Rings(coords[:, 0], coords[:, 1], _starts(vcount), vcount, _starts(rcount), rcount)


def subject_vertices(rings: Rings) -> np.ndarray:
    """Number of vertices of each geometry of ``rings``."""
    per_geom = np.zeros(len(rings.rcount), dtype=np.int64)
    ring_geom = np.repeat(np.arange(len(rings.rcount)), rings.rcount)
    np.add.at(per_geom, ring_geom, rings.vcount)
    return per_geom


def _expand(starts: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For ranges ``starts[i] : starts[i] + counts[i]``: every member, and its range."""
    owner = np.repeat(np.arange(len(counts)), counts)
    members = starts[owner] + np.arange(len(owner)) - _starts(counts)[owner]
    return members, owner


def clipped_areas(
    cells: ConvexCells, cell_i: np.ndarray, rings: Rings, ring_geom_i: np.ndarray
) -> np.ndarray:
    """Area of ``cell[cell_i[k]] ∩ geometry[ring_geom_i[k]]`` for every pair ``k``.

    Every ``cell_i`` must be convex (``cells.convex``). Points are complex numbers
    (x + iy): one array, one operation per step for both coordinates.
    """
    n_pairs = len(cell_i)
    if n_pairs == 0:
        return np.zeros(0)
    # The rings of each pair's unit, then their vertices, relative to the cell's first vertex.
    ring, ring_pair = _expand(rings.rstart[ring_geom_i], rings.rcount[ring_geom_i])
    vertex, vertex_ring = _expand(rings.vstart[ring], rings.vcount[ring])
    cell_of_ring = cell_i[ring_pair]
    corner = cells.x + 1j * cells.y
    origin = cells.start[cell_of_ring]
    n_edges = cells.count[cell_of_ring]
    z = (rings.x[vertex] + 1j * rings.y[vertex]) - corner[origin][vertex_ring]
    for k in range(int(n_edges.max())):
        # Edge k of each cell (a cell with fewer edges repeats its last: clipping twice
        # by one half-plane changes nothing).
        a = origin + np.minimum(k, n_edges - 1)
        b = origin + (a - origin + 1) % n_edges
        start = corner[a] - corner[origin]
        # Rotating by conj(edge) puts the inside (left of the edge) at positive imaginary parts.
        z, vertex_ring = _clip_half_plane(z, vertex_ring, start, np.conj(corner[b] - corner[a]))
    return _ring_areas(z, vertex_ring, len(ring), ring_pair, n_pairs)


def segments_meet_cells(
    cells: ConvexCells,
    cell_i: np.ndarray,
    x0: np.ndarray,
    y0: np.ndarray,
    x1: np.ndarray,
    y1: np.ndarray,
) -> np.ndarray:
    """Whether each segment (x0, y0)–(x1, y1) meets its convex cell, edges included.

    Cyrus–Beck: the segment's part on the inner side of every edge's line is an
    interval [t0, t1] of its parameter, narrowed edge by edge; empty means apart.
    """
    origin = cells.start[cell_i]
    n_edges = cells.count[cell_i]
    ox, oy = cells.x[origin], cells.y[origin]
    px, py = x0 - ox, y0 - oy  # relative to the cell, where the digits are
    dx, dy = x1 - x0, y1 - y0
    t0, t1 = np.zeros(len(cell_i)), np.ones(len(cell_i))
    for k in range(int(n_edges.max()) if len(cell_i) else 0):
        a = origin + np.minimum(k, n_edges - 1)
        b = origin + (a - origin + 1) % n_edges
        ex, ey = cells.x[b] - cells.x[a], cells.y[b] - cells.y[a]
        side = ex * (py - (cells.y[a] - oy)) - ey * (px - (cells.x[a] - ox))  # ≥ 0: inside
        rate = ex * dy - ey * dx
        with np.errstate(divide="ignore", invalid="ignore"):
            t = -side / rate
        t0 = np.where(rate > 0, np.maximum(t0, t), t0)
        t1 = np.where(rate < 0, np.minimum(t1, t), t1)
        t1 = np.where((rate == 0) & (side < 0), -1.0, t1)  # parallel, outside
    return t0 <= t1


def _next_in_ring(vertex_ring: np.ndarray) -> np.ndarray:
    """Index of the vertex following each one in its ring (rings stored one after another)."""
    n = len(vertex_ring)
    following = np.arange(1, n + 1)
    if n == 0:
        return following
    starts = np.flatnonzero(np.r_[True, vertex_ring[1:] != vertex_ring[:-1]])
    following[np.r_[starts[1:], n] - 1] = starts
    return following


def _clip_half_plane(z, vertex_ring, start, turn):
    """One Sutherland–Hodgman step: keep the part of each ring left of its edge.

    Each edge (v, next) of a ring gives the point where it crosses the edge's line,
    if it does, then ``next`` if ``next`` is inside.
    """
    side = ((z - start[vertex_ring]) * turn[vertex_ring]).imag  # ≥ 0: inside or on the line
    inside = side >= 0
    nxt = _next_in_ring(vertex_ring)
    inside_next = inside[nxt]
    crossing = inside != inside_next
    t = side / np.where(crossing, side - side[nxt], 1.0)
    candidates = np.empty((len(z), 2), dtype=complex)
    candidates[:, 0] = z + t * (z[nxt] - z)
    candidates[:, 1] = z[nxt]
    keep = np.empty((len(z), 2), dtype=bool)
    keep[:, 0] = crossing
    keep[:, 1] = inside_next
    keep = keep.ravel()
    return candidates.ravel()[keep], np.repeat(vertex_ring, 2)[keep]


def _ring_areas(z, vertex_ring, n_rings, ring_pair, n_pairs) -> np.ndarray:
    """Sum of the signed areas (shoelace) of each pair's rings."""
    if len(z) == 0:
        return np.zeros(n_pairs)
    twice = (np.conj(z) * z[_next_in_ring(vertex_ring)]).imag
    per_ring = np.bincount(vertex_ring, weights=twice, minlength=n_rings)
    return np.bincount(ring_pair, weights=per_ring, minlength=n_pairs) / 2.0
