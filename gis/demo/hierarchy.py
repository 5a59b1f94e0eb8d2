"""Micro-grids, grids, communities and streets from the demo blocks (private helper).

Top-down, so that the counts are exact and the nesting holds by construction:
superblocks are grouped into streets (their boundaries therefore run along
arterials, secondary roads and the river), each street's micro-grids into
communities, each community's micro-grids into grids. A grid is the union of
its micro-grids, a community of its grids, and so on; all unions are coverage
unions of the same rounded block polygons, so neighbours share identical edges.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely

from gis.demo.blocks import Blocks, density_field
from gis.demo.names import dedicated_name
from gis.demo.partition import connected, partition

# Extra distance (m) a region pays to grow across a road of this class: boundaries
# prefer the river and arterials, then secondary roads, then lanes.
_CROSSING = {
    "street": {"arterial": 1800.0, "river": 2500.0, "secondary": 0.0},
    "community": {"arterial": 1500.0, "river": 2000.0, "secondary": 450.0},
    "grid": {"arterial": 900.0, "river": 1200.0, "secondary": 300.0},
}


@dataclass
class Hierarchy:
    """Every level as labels on the micro-grids, plus per-micro-grid attributes."""

    micro_faces: list[list[int]]  # block indices of each micro-grid
    micro_xy: np.ndarray  # representative point (metric)
    micro_area: np.ndarray  # m²
    adjacency: dict[int, dict[int, float]]  # micro-grid adjacency with shared lengths
    street: np.ndarray  # street label of each micro-grid (0..7)
    community: np.ndarray  # community label (0..88)
    grid: np.ndarray  # grid label (0..619)
    grid_dedicated: dict[int, tuple[str, str]]  # grid label -> (kind, institution)
    households: np.ndarray  # per micro-grid
    population: np.ndarray  # per micro-grid


def build_hierarchy(
    rng: np.random.Generator,
    blocks: Blocks,
    groups: list[list[int]],
    bumps,
    counts: dict[str, int],
    grid_cv: float,
) -> Hierarchy:
    """Group ``groups`` (micro-grids as lists of blocks) into the administrative levels."""
    face_micro = np.empty(len(blocks.faces), dtype=np.int64)
    for m, faces in enumerate(groups):
        face_micro[faces] = m
    face_area = shapely.area(blocks.faces)
    centroids = shapely.get_coordinates(shapely.centroid(blocks.faces))
    micro_area = np.bincount(face_micro, weights=face_area)
    micro_xy = (
        np.column_stack(
            [np.bincount(face_micro, weights=face_area * centroids[:, i]) for i in (0, 1)]
        )
        / micro_area[:, None]
    )
    adjacency, crossing = _micro_graph(blocks, face_micro, len(groups))
    superblock = blocks.superblock[[g[0] for g in groups]]

    households = _base_households(rng, micro_xy, micro_area, blocks, bumps, counts["grid"] * 300)
    street = _streets(rng, superblock, adjacency, crossing, micro_xy, households, counts["street"])
    community = _split(
        rng,
        street,
        counts["community"],
        adjacency,
        crossing,
        micro_xy,
        households,
        "community",
        minimum=3,
    )
    dedicated = _dedicated_sites(
        rng, community, adjacency, micro_area, micro_xy, blocks, counts["grid"]
    )
    grid, grid_dedicated = _grids(
        rng, community, dedicated, adjacency, crossing, micro_xy, households, counts["grid"]
    )
    for m, (kind, _) in dedicated.items():
        households[m] = rng.integers(0, 40) if kind == "enterprise" else rng.integers(0, 15)
    households = _spread_workload(households, grid, grid_cv)
    persons = np.clip(rng.normal(3.3, 0.3, len(groups)), 2.4, 4.6)
    population = np.round(households * persons).astype(np.int64)
    return Hierarchy(
        groups,
        micro_xy,
        micro_area,
        adjacency,
        street,
        community,
        grid,
        grid_dedicated,
        households,
        population,
    )


def _micro_graph(blocks: Blocks, face_micro: np.ndarray, n: int):
    adjacency: dict[int, dict[int, float]] = {m: {} for m in range(n)}
    for i, nbrs in blocks.adjacency.items():
        mi = int(face_micro[i])
        for j, length in nbrs.items():
            mj = int(face_micro[j])
            if mi != mj:
                adjacency[mi][mj] = adjacency[mi].get(mj, 0.0) + length
    crossing: dict[tuple[int, int], str] = {}
    rank = {"secondary": 1, "arterial": 2, "river": 3}
    for (i, j), cls in blocks.major_edge.items():
        key = (min(face_micro[i], face_micro[j]), max(face_micro[i], face_micro[j]))
        key = (int(key[0]), int(key[1]))
        if key not in crossing or rank[cls] > rank[crossing[key]]:
            crossing[key] = cls
    return adjacency, crossing


def _penalty(crossing, level):
    costs = _CROSSING[level]

    def cost(u: int, v: int) -> float:
        cls = crossing.get((min(u, v), max(u, v)))
        return costs[cls] if cls else 0.0

    return cost


def _base_households(rng, xy, area, blocks, bumps, total) -> np.ndarray:
    """Households per micro-grid: density x area, noisy; parks and markets hold nobody."""
    density = density_field(xy[:, 0], xy[:, 1], blocks.centre, blocks.radius, bumps)
    raw = area * density * rng.lognormal(0.0, 0.45, len(area))
    raw[rng.random(len(area)) < 0.05] *= 0.02
    return _round_to_total(raw, total * rng.uniform(0.97, 1.03))


def _streets(rng, superblock, adjacency, crossing, xy, households, k) -> np.ndarray:
    """Streets are groups of superblocks, so their edges follow major roads."""
    n_sb = int(superblock.max()) + 1
    sb_adj: dict[int, dict[int, float]] = {s: {} for s in range(n_sb)}
    sb_cross: dict[tuple[int, int], str] = {}
    rank = {None: 0, "secondary": 1, "arterial": 2, "river": 3}
    for m, nbrs in adjacency.items():
        for v, length in nbrs.items():
            a, b = int(superblock[m]), int(superblock[v])
            if a != b:
                sb_adj[a][b] = sb_adj[a].get(b, 0.0) + length
                cls = crossing.get((min(m, v), max(m, v)))
                key = (min(a, b), max(a, b))
                if rank[cls] > rank[sb_cross.get(key)]:
                    sb_cross[key] = cls
    present = sorted(set(superblock.tolist()))
    sb_weight = np.bincount(superblock, weights=households, minlength=n_sb)
    area_xy = np.zeros((n_sb, 2))
    counts = np.bincount(superblock, minlength=n_sb)
    for i in (0, 1):
        area_xy[:, i] = np.bincount(superblock, weights=xy[:, i], minlength=n_sb) / np.maximum(
            counts, 1
        )
    labels = partition(
        present,
        sb_adj,
        area_xy,
        sb_weight,
        k,
        rng,
        _penalty(sb_cross, "street"),
        refine=6,
        tolerance=0.12,
    )
    return np.array([labels[int(s)] for s in superblock])


def _allocate(
    weights: np.ndarray, total: int, minimum: np.ndarray, maximum: np.ndarray
) -> np.ndarray:
    """Integers proportional to ``weights`` summing to ``total`` within [minimum, maximum]."""
    out = minimum.copy()
    share = weights / weights.sum()
    while out.sum() < total:
        room = out < maximum
        need = share * total - out
        need[~room] = -np.inf
        out[int(np.argmax(need))] += 1
    return out


def _split(rng, parent, total, adjacency, crossing, xy, weight, level, minimum) -> np.ndarray:
    """Split every parent region into children; the counts follow households."""
    n_parent = int(parent.max()) + 1
    w = np.bincount(parent, weights=weight, minlength=n_parent)
    sizes = np.bincount(parent, minlength=n_parent)
    counts = _allocate(w, total, np.full(n_parent, minimum), sizes // 4)
    label = np.empty(len(parent), dtype=np.int64)
    offset = 0
    for p in range(n_parent):
        nodes = np.flatnonzero(parent == p).tolist()
        labels = partition(
            nodes, adjacency, xy, weight, int(counts[p]), rng, _penalty(crossing, level)
        )
        for node, lab in labels.items():
            label[node] = offset + lab
        offset += int(counts[p])
    return label


def _dedicated_sites(rng, community, adjacency, area, xy, blocks, n_grids) -> dict:
    """Micro-grids that become dedicated grids: enterprises, schools, hospitals."""
    n_sites = int(round(n_grids * rng.uniform(0.055, 0.075)))
    candidates = np.flatnonzero(area > np.quantile(area, 0.6))
    order = candidates[np.argsort(-area[candidates] * rng.uniform(0.2, 1.0, len(candidates)))]
    used_communities: dict[int, int] = {}
    names: set[str] = set()
    sites: dict[int, tuple[str, str]] = {}
    for m in order.tolist():
        c = int(community[m])
        if used_communities.get(c, 0) >= (1 if len(sites) < 0.8 * n_sites else 2):
            continue
        members = set(np.flatnonzero(community == c).tolist()) - set(sites) - {m}
        if len(members) < 6 or not connected(members, adjacency):
            continue
        dist = np.hypot(*(xy[m] - blocks.centre)) / blocks.radius
        kind = (
            "enterprise"
            if dist > 0.55 and rng.random() < 0.8
            else ("school" if rng.random() < 0.6 else "hospital")
        )
        sites[m] = (kind, dedicated_name(rng, kind, names))
        used_communities[c] = used_communities.get(c, 0) + 1
        if len(sites) == n_sites:
            break
    return sites


def _grids(rng, community, dedicated, adjacency, crossing, xy, households, total):
    """Comprehensive grids balanced on blocks, plus one grid per dedicated site."""
    n_comm = int(community.max()) + 1
    is_site = np.zeros(len(community), dtype=bool)
    is_site[list(dedicated)] = True
    ordinary = community.copy()
    ordinary[is_site] = -1
    mask = ordinary >= 0
    w = np.bincount(community[mask], weights=households[mask], minlength=n_comm)
    sizes = np.bincount(community[mask], minlength=n_comm)
    counts = _allocate(w**0.8, total - len(dedicated), np.ones(n_comm, dtype=np.int64), sizes // 3)
    grid = np.empty(len(community), dtype=np.int64)
    kinds: dict[int, tuple[str, str]] = {}
    offset = 0
    # weights mix block count and households: grids drawn on the map, roughly by workload
    weight = 0.5 + 0.5 * households / max(households.mean(), 1.0)
    for c in range(n_comm):
        nodes = np.flatnonzero((community == c) & ~is_site).tolist()
        labels = partition(
            nodes,
            adjacency,
            xy,
            weight,
            int(counts[c]),
            rng,
            _penalty(crossing, "grid"),
            refine=2,
            tolerance=0.3,
        )
        for node, lab in labels.items():
            grid[node] = offset + lab
        offset += int(counts[c])
        for m in np.flatnonzero((community == c) & is_site).tolist():
            grid[m] = offset
            kinds[offset] = dedicated[m]
            offset += 1
    return grid, kinds


def _spread_workload(households, grid, target_cv) -> np.ndarray:
    """Rescale grid totals so their coefficient of variation is ``target_cv``.

    Grids drawn years ago no longer match where people live: the spread of
    workload between grids is what a redesign has to even out. The total and
    the ranking of grids are kept; micro-grids keep their shares in the grid.
    """
    n_grid = int(grid.max()) + 1
    totals = np.bincount(grid, weights=households, minlength=n_grid)
    relative = totals / totals.mean()

    def cv(gamma: float) -> float:
        scaled = relative**gamma
        return float(scaled.std() / scaled.mean())

    lo, hi = 0.1, 4.0
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if cv(mid) < target_cv else (lo, mid)
    scaled = relative ** ((lo + hi) / 2)
    new_totals = _round_to_total(scaled, totals.sum())
    out = np.zeros_like(households)
    for g in range(n_grid):
        members = np.flatnonzero(grid == g)
        share = households[members].astype(float) + 1e-9
        out[members] = _round_to_total(share, new_totals[g])
    return out


def _round_to_total(values: np.ndarray, total: float) -> np.ndarray:
    """Non-negative integers proportional to ``values`` summing to round(total)."""
    values = np.asarray(values, dtype=float)
    target = int(round(total))
    if values.sum() <= 0:
        values = np.ones(len(values))
    exact = values / values.sum() * target
    out = np.floor(exact).astype(np.int64)
    rest = target - int(out.sum())
    if rest > 0:
        out[np.argsort(-(exact - out), kind="stable")[:rest]] += 1
    return out
