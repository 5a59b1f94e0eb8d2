"""Starting partitions for :mod:`gis.redesign`: allocation, greedy merges, splits.

Everything here works on a :class:`gis.redesign.search.Partition`, so the
constraints (connected regions, zones, locked regions) hold by construction:
merges only join regions adjacent in the search graph (same zone, unlocked)
and splits only cut a region into two connected parts.
"""

from __future__ import annotations

import heapq
import random

import numpy as np

from gis.redesign.cuts import best_bipartition
from gis.redesign.state import Partition

__all__ = ["allocate", "merge_cheapest", "merge_lightest", "split_heaviest", "region_zone"]


def allocate(zone_load: np.ndarray, zone_atoms: np.ndarray, total: int) -> np.ndarray:
    """Regions per zone that minimise the sum of squared region workloads.

    If a zone of workload ``L`` were cut into ``k`` equal regions, it would add
    ``L**2 / k`` to the sum of squares; the marginal gain of one more region,
    ``L**2 / (k (k + 1))``, falls with ``k``, so adding regions one at a time
    where the gain is largest is optimal (a convex resource allocation).

    Parameters
    ----------
    zone_load : ndarray
        Workload of each zone.
    zone_atoms : ndarray
        Atoms in each zone: the most regions it can hold.
    total : int
        Regions to hand out; at least one per zone and at most ``zone_atoms.sum()``.
    """
    k = np.ones(len(zone_load), dtype=np.int64)
    heap = [(-_gain(load, 1), z) for z, load in enumerate(zone_load.tolist()) if zone_atoms[z] > 1]
    heapq.heapify(heap)
    for _ in range(total - len(zone_load)):
        _, z = heapq.heappop(heap)
        k[z] += 1
        if k[z] < zone_atoms[z]:
            heapq.heappush(heap, (-_gain(float(zone_load[z]), int(k[z])), z))
    return k


def _gain(load: float, k: int) -> float:
    return load * load / (k * (k + 1))


def region_zone(part: Partition, region: int) -> int:
    """Zone of a region (every member shares it)."""
    return part.p.zone[next(iter(part.members[region]))]


def merge_cheapest(part: Partition, target: int, zone_target: dict[int, int] | None = None) -> None:
    """Merge adjacent regions, cheapest first, until ``target`` regions remain.

    The cost of a merge is the objective's increase: for the balance term it is
    ``2 W_p W_q / mu**2`` up to a constant, so light pairs go first; households
    that would leave their grid and the boundary removed are counted too. With
    ``zone_target`` each zone stops at its own count instead.
    """
    heap: list[tuple[float, int, int, int, int]] = []
    for r in part.regions():
        _push_pairs(part, r, heap)
    count = part.n_live()
    per_zone = _zone_counts(part) if zone_target is not None else {}
    while count > target and heap:
        _, r, q, vr, vq = heapq.heappop(heap)
        if part.version[r] != vr or part.version[q] != vq or not part.members[r]:
            continue
        if not part.members[q]:
            continue
        if zone_target is not None:
            zone = region_zone(part, r)
            if per_zone[zone] <= zone_target[zone]:
                continue
            per_zone[zone] -= 1
        keep = _absorb(part, r, q)
        count -= 1
        _push_pairs(part, keep, heap)


def _push_pairs(part: Partition, r: int, heap: list) -> None:
    obj = part.p.objective
    kept_r = part.kept_in(r)
    for q in part.adjacent_regions(r):
        if part.locked[q]:
            continue
        kept_q = part.kept_in(q)
        delta = obj.region(part.load[r] + part.load[q]) - part.region_cost(r) - part.region_cost(q)
        delta += obj.alpha * min(kept_r, kept_q)
        heapq.heappush(heap, (delta, r, q, part.version[r], part.version[q]))


def _absorb(part: Partition, r: int, q: int) -> int:
    """Merge two regions; the one keeping more households gives its home."""
    kept_r, kept_q = part.kept_in(r), part.kept_in(q)
    keep, gone = (r, q) if (kept_r, -r) >= (kept_q, -q) else (q, r)
    part.assign(sorted(part.members[gone]), keep)
    return keep


def _zone_counts(part: Partition) -> dict[int, int]:
    counts: dict[int, int] = {}
    for r in part.regions():
        zone = region_zone(part, r)
        counts[zone] = counts.get(zone, 0) + 1
    return counts


def split_heaviest(part: Partition, zone_target: dict[int, int], rng: random.Random) -> None:
    """Split the heaviest region of every zone below its target until it is reached.

    The part that keeps more of the old grid's households continues it; the
    other half is a new grid (home -1).
    """
    counts = _zone_counts(part)
    for zone, want in sorted(zone_target.items()):
        while counts.get(zone, 0) < want:
            regions = [
                r
                for r in part.regions()
                if region_zone(part, r) == zone and len(part.members[r]) > 1
            ]
            if not regions:
                break  # the zone has as many regions as atoms
            r = max(regions, key=lambda x: (part.load[x], -x))
            plan = best_bipartition(part, sorted(part.members[r]), (part.home[r], -1), rng)
            if plan is None:
                break
            _, side_a, side_b, (home_a, home_b) = plan
            new = part.new_region(home_b)
            part.assign(side_b, new)
            part.home[r] = home_a
            counts[zone] = counts.get(zone, 0) + 1


def merge_lightest(part: Partition, target: int) -> None:
    """The plain greedy baseline: merge the lightest region into its lightest neighbour.

    Regions without a legal neighbour (alone in their zone) are skipped for good:
    merges never give them one.
    """
    heap = [(part.load[r], r, part.version[r]) for r in part.regions()]
    heapq.heapify(heap)
    count = part.n_live()
    while count > target and heap:
        _, r, version = heapq.heappop(heap)
        if part.version[r] != version or not part.members[r]:
            continue
        neighbours = [q for q in part.adjacent_regions(r) if not part.locked[q]]
        if not neighbours:
            continue
        q = min(neighbours, key=lambda x: (part.load[x], x))
        keep = _absorb(part, r, q)
        count -= 1
        heapq.heappush(heap, (part.load[keep], keep, part.version[keep]))
