"""Planted coverage defects for the demo district (private helper of gis.demo).

The sites are chosen whether or not the defects are applied, from their own
random stream, so a demo with defects differs from the clean one only there:
same incidents, same hotspots (which keep away from these grids).

- gap: a strip along the edge between two grids is cut out of one grid and of
  the micro-grid it belonged to; no grid covers it, the community still does;
- overlap: one grid grows into a neighbour of the same community by ~2 % of
  the neighbour's area;
- unstaffed: three grids lose every staff member (grid and micro-grid level).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely

from gis.demo.areas import to_metric, to_wgs84
from gis.demo.hierarchy import Hierarchy

# Overlays run in full precision: snapping the new vertices to the 1e-7 degree grid
# would shift them off the untouched neighbours' edges and open hairline slivers.


@dataclass
class DefectSites:
    """Where the defects go (grid labels and the micro-grid of the gap)."""

    gap_grid: int
    gap_neighbor: int
    gap_micro: int
    overlap_grid: int
    overlap_neighbor: int
    unstaffed: list[int]

    def grids(self) -> set[int]:
        return {
            self.gap_grid,
            self.gap_neighbor,
            self.overlap_grid,
            self.overlap_neighbor,
            *self.unstaffed,
        }


def grid_graph(h: Hierarchy) -> dict[int, dict[int, float]]:
    """Grid label -> {neighbouring grid label: shared edge length (m)}."""
    out: dict[int, dict[int, float]] = {}
    for m, nbrs in h.adjacency.items():
        for v, length in nbrs.items():
            a, b = int(h.grid[m]), int(h.grid[v])
            if a != b:
                out.setdefault(a, {})
                out[a][b] = out[a].get(b, 0.0) + length
    return out


def choose_sites(rng: np.random.Generator, h: Hierarchy) -> DefectSites:
    """Pick comprehensive grids for the gap, the overlap and the unstaffed grids."""
    graph = grid_graph(h)
    n_grid = int(h.grid.max()) + 1
    size = np.bincount(h.grid, minlength=n_grid)
    grid_comm = np.empty(n_grid, dtype=np.int64)
    grid_comm[h.grid] = h.community
    ordinary = [g for g in range(n_grid) if g not in h.grid_dedicated and size[g] >= 4]
    order = [ordinary[i] for i in rng.permutation(len(ordinary))]
    gap_grid = order[0]
    gap_neighbor = max(graph[gap_grid], key=lambda g: (graph[gap_grid][g], g))
    micro = np.flatnonzero(h.grid == gap_grid)
    border = {
        m: sum(w for v, w in h.adjacency[int(m)].items() if h.grid[v] == gap_neighbor)
        for m in micro
    }
    gap_micro = int(max(border, key=lambda m: (border[m], m)))
    taken = {gap_grid, gap_neighbor}
    overlap = next(
        (g, n)
        for g in order[1:]
        if g not in taken
        for n in sorted(graph[g])
        if n not in taken
        and n not in h.grid_dedicated
        and size[n] >= 4
        and grid_comm[n] == grid_comm[g]
        and graph[g][n] > 150
    )
    taken |= set(overlap)
    unstaffed = [g for g in order[1:] if g not in taken][:3]
    return DefectSites(gap_grid, gap_neighbor, gap_micro, overlap[0], overlap[1], unstaffed)


def cut_gap(grid_geom, neighbor_geom, micro_geom, width_m: float = 18.0):
    """Cut a strip along the grid's edge with its neighbour out of the micro-grid.

    Returns (piece, grid without the piece, micro-grid without the piece), EPSG:4326.
    """
    micro_m, neighbor_m = to_metric(np.array([micro_geom, neighbor_geom]))
    edge = shapely.intersection(shapely.boundary(micro_m), shapely.boundary(neighbor_m))
    strip = to_wgs84(np.array([shapely.buffer(edge, width_m, cap_style="flat")]))[0]
    piece = shapely.intersection(micro_geom, strip)
    piece = _polygonal(piece)
    grid_new = shapely.difference(grid_geom, piece)
    micro_new = shapely.difference(micro_geom, piece)
    return piece, _polygonal(grid_new), _polygonal(micro_new)


def grow_overlap(grid_geom, neighbor_geom, share: float = 0.02):
    """Extend the grid into its neighbour by about ``share`` of the neighbour's area.

    Returns (overlap, the grown grid, overlap share of the neighbour), EPSG:4326.
    """
    grid_m, neighbor_m = to_metric(np.array([grid_geom, neighbor_geom]))
    edge = shapely.length(
        shapely.intersection(shapely.boundary(grid_m), shapely.boundary(neighbor_m))
    )
    width = share * shapely.area(neighbor_m) / max(edge, 1.0)
    for _ in range(4):  # the strip widens at corners: correct the width once or twice
        piece_m = shapely.intersection(neighbor_m, shapely.buffer(grid_m, width))
        got = shapely.area(piece_m) / shapely.area(neighbor_m)
        if abs(got - share) < 0.15 * share:
            break
        width *= share / max(got, 1e-6)
    piece = to_wgs84(np.array([piece_m]))[0]
    grown = _polygonal(shapely.union(grid_geom, piece))
    overlap = _polygonal(shapely.intersection(grown, neighbor_geom))
    overlap_share = shapely.area(to_metric(np.array([overlap]))[0]) / shapely.area(neighbor_m)
    return overlap, grown, float(overlap_share)


def _polygonal(geom):
    """The polygonal part of an overlay result, as a Polygon when it is one piece."""
    parts = [p for p in shapely.get_parts(geom) if p.geom_type == "Polygon" and p.area > 0]
    if not parts:
        return shapely.Polygon()
    if len(parts) == 1:
        return parts[0]
    return shapely.MultiPolygon(parts)
