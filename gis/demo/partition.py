"""Contiguous, balanced partitions of a block adjacency graph (private helper of gis.demo).

Seeded region growing, as a planner would draw areas on a map: seeds spread by
weighted k-means, then the lightest region repeatedly takes the unassigned
neighbour closest to its seed. Crossing a major road or the river costs extra
distance, so boundaries prefer to run along them. Every region grows only
through shared edges, so each is contiguous; a few passes of boundary moves
then even out the weights without breaking contiguity.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable

import numpy as np


def partition(
    nodes: list[int],
    adjacency: dict[int, dict[int, float]],
    xy: np.ndarray,
    weight: np.ndarray,
    k: int,
    rng: np.random.Generator,
    penalty: Callable[[int, int], float] | None = None,
    refine: int = 4,
    tolerance: float = 0.15,
) -> dict[int, int]:
    """Split ``nodes`` into ``k`` contiguous regions of similar total ``weight``.

    Parameters
    ----------
    nodes : list of int
        Graph nodes to split (indices into ``xy`` and ``weight``).
    adjacency : dict
        node -> {neighbour: shared edge length}; neighbours outside ``nodes`` are ignored.
    xy : (n, 2) array
        Representative point of every node (metres).
    weight : array
        What to balance (households, or 1 per block).
    k : int
        Number of regions, 1 <= k <= len(nodes).
    penalty : callable, optional
        Extra distance (m) for growing from node u into neighbour v.
    refine : int
        Passes of boundary moves after growing.
    tolerance : float
        Relative deviation from the mean weight left alone by refinement.

    Returns
    -------
    dict
        node -> region label 0..k-1.
    """
    if not 1 <= k <= len(nodes):
        raise ValueError(f"cannot split {len(nodes)} nodes into {k} regions")
    members = set(nodes)
    if k == 1:
        return dict.fromkeys(nodes, 0)
    local = {node: [(v, w) for v, w in adjacency[node].items() if v in members] for node in nodes}
    seeds = _seeds(nodes, xy, weight, k, rng)
    label = _grow(nodes, local, xy, weight, seeds, penalty)
    for _ in range(refine):
        if not _refine(label, local, weight, k, tolerance):
            break
    return label


def _seeds(nodes, xy, weight, k, rng) -> list[int]:
    """Weighted k-means++ then Lloyd iterations; the node nearest each centre is a seed."""
    idx = np.asarray(nodes)
    pts, w = xy[idx], np.asarray(weight, dtype=float)[idx] + 1e-9
    centres = [pts[rng.choice(len(idx), p=w / w.sum())]]
    for _ in range(1, k):
        d2 = np.min([((pts - c) ** 2).sum(axis=1) for c in centres], axis=0) * w
        centres.append(
            pts[rng.choice(len(idx), p=d2 / d2.sum())]
            if d2.sum() > 0
            else pts[rng.integers(len(idx))]
        )
    centres_arr = np.asarray(centres)
    for _ in range(8):
        d = ((pts[:, None, :] - centres_arr[None, :, :]) ** 2).sum(axis=2)
        near = d.argmin(axis=1)
        mass = np.bincount(near, weights=w, minlength=k)
        for axis in (0, 1):
            moved = np.bincount(near, weights=w * pts[:, axis], minlength=k)
            centres_arr[:, axis] = np.where(
                mass > 0, moved / np.maximum(mass, 1e-300), centres_arr[:, axis]
            )
    seeds: list[int] = []
    taken: set[int] = set()
    for c in centres_arr:
        order = np.argsort(((pts - c) ** 2).sum(axis=1), kind="stable")
        pick = next(int(idx[o]) for o in order if int(idx[o]) not in taken)
        taken.add(pick)
        seeds.append(pick)
    return seeds


def _grow(nodes, local, xy, weight, seeds, penalty) -> dict[int, int]:
    label: dict[int, int] = {}
    total = np.zeros(len(seeds))
    frontier: list[list[tuple[float, int, int]]] = [[] for _ in seeds]
    for r, s in enumerate(seeds):
        label[s] = r
        total[r] += weight[s]
    for r, s in enumerate(seeds):
        _push(frontier[r], s, local, label, xy, xy[s], penalty)
    active = [(total[r], r) for r in range(len(seeds))]
    heapq.heapify(active)
    while active and len(label) < len(nodes):
        _, r = heapq.heappop(active)
        node = None
        while frontier[r]:
            _, cand, _ = heapq.heappop(frontier[r])
            if cand not in label:
                node = cand
                break
        if node is None:
            continue  # enclosed: this region is finished
        label[node] = r
        total[r] += weight[node]
        _push(frontier[r], node, local, label, xy, xy[seeds[r]], penalty)
        heapq.heappush(active, (total[r], r))
    for node in nodes:  # a part not connected to any seed: give it to the nearest region
        if node not in label:
            d = [float(((xy[node] - xy[s]) ** 2).sum()) for s in seeds]
            label[node] = int(np.argmin(d))
    return label


def _push(heap, node, local, label, xy, seed_xy, penalty) -> None:
    for v, _ in local[node]:
        if v not in label:
            cost = math.hypot(xy[v, 0] - seed_xy[0], xy[v, 1] - seed_xy[1])
            if penalty is not None:
                cost += penalty(node, v)
            heapq.heappush(heap, (cost, v, node))


def _refine(label, local, weight, k, tolerance) -> bool:
    """One pass of moving boundary nodes from heavy regions to lighter neighbours."""
    total = np.zeros(k)
    groups: list[set[int]] = [set() for _ in range(k)]
    for node, r in label.items():
        total[r] += weight[node]
        groups[r].add(node)
    mean = total.mean()
    moved = False
    for node in sorted(label, key=lambda n: -total[label[n]]):
        a = label[node]
        if total[a] <= mean * (1 + tolerance) or len(groups[a]) == 1:
            continue
        shared: dict[int, float] = {}
        for v, length in local[node]:
            shared[label[v]] = shared.get(label[v], 0.0) + length
        own = shared.pop(a, 0.0)
        best = None
        for b, length in sorted(shared.items(), key=lambda t: -t[1]):
            after = abs(total[a] - weight[node] - mean) + abs(total[b] + weight[node] - mean)
            if after < abs(total[a] - mean) + abs(total[b] - mean) and length >= 0.5 * own:
                best = b
                break
        if best is None or not _still_connected(groups[a], node, local):
            continue
        groups[a].discard(node)
        groups[best].add(node)
        total[a] -= weight[node]
        total[best] += weight[node]
        label[node] = best
        moved = True
    return moved


def _still_connected(group: set[int], removed: int, local) -> bool:
    rest = group - {removed}
    start = next(iter(rest))
    seen = {start}
    stack = [start]
    while stack:
        u = stack.pop()
        for v, _ in local[u]:
            if v in rest and v not in seen:
                seen.add(v)
                stack.append(v)
    return len(seen) == len(rest)


def connected(nodes: set[int], adjacency: dict[int, dict[int, float]]) -> bool:
    """True when ``nodes`` form one edge-connected piece."""
    if not nodes:
        return True
    start = next(iter(nodes))
    seen = {start}
    stack = [start]
    while stack:
        u = stack.pop()
        for v in adjacency[u]:
            if v in nodes and v not in seen:
                seen.add(v)
                stack.append(v)
    return len(seen) == len(nodes)
