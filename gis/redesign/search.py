"""Region-level operations of the redesign search and the driver that alternates them.

Atom moves (:mod:`gis.redesign.moves`) balance neighbours a little at a time;
the operations here rebuild two or three regions at once: re-split an adjacent
pair or trio optimally, or merge one pair while splitting another region,
which moves a grid between nesting units.
"""

from __future__ import annotations

import random

from gis.redesign.cuts import Local, best_bipartition, best_tripartition
from gis.redesign.moves import chains, descend
from gis.redesign.state import Objective, Partition

__all__ = ["improve", "recombine", "recombine_triples", "merge_split"]

RECOMBINE_MIN = 1e-4  # imbalance (squared relative deviation) worth re-splitting for


# -- pair recombination ------------------------------------------------------------------
def recombine(part: Partition, rng: random.Random, max_atoms: int) -> int:
    """Re-split adjacent region pairs optimally when that lowers the objective.

    Subsumes moves and swaps between the two regions, and escapes the local
    minima of single moves (two regions whose boundary atoms are all too heavy
    to move one at a time).
    """
    obj = part.p.objective
    improved = 0
    pairs = sorted(
        {(min(r, q), max(r, q)) for r in part.regions() for q in part.adjacent_regions(r)}
    )
    rng.shuffle(pairs)
    stamp = part.pair_stamp
    for r, q in pairs:
        if stamp.get((r, q)) == (part.version[r], part.version[q]):
            continue  # neither region changed since this pair was found optimal
        atoms = sorted(part.members[r] | part.members[q])
        if len(atoms) > max_atoms or q not in part.adjacent_regions(r):
            continue
        balance = part.region_cost(r) + part.region_cost(q)
        if balance - 2.0 * obj.region(0.5 * (part.load[r] + part.load[q])) < RECOMBINE_MIN:
            # Already as balanced as the pair can be (convexity): re-splitting it
            # could only trade households or boundary, not worth the search.
            stamp[(r, q)] = (part.version[r], part.version[q])
            continue
        now = balance + obj.alpha * part.lost_in((r, q)) + obj.gamma * 2.0 * part.cut_between(r, q)
        best = best_bipartition(part, atoms, (part.home[r], part.home[q]), rng)
        if best is not None and best[0] < now - 1e-9:
            _, side_a, side_b, (home_a, home_b) = best
            part.assign(side_a, r)
            part.assign(side_b, q)
            part.home[r], part.home[q] = home_a, home_b
            improved += 1
        stamp[(r, q)] = (part.version[r], part.version[q])
    return improved


# -- triple recombination ---------------------------------------------------------------
def recombine_triples(part: Partition, rng: random.Random, max_atoms: int) -> int:
    """Re-split three mutually adjacent regions optimally (exhaustive, small unions only).

    Catches the rearrangements where all three regions change at once, which
    no pair recombination or two-step chain reaches; affordable in merge mode,
    whose regions are a few whole grids.
    """
    obj = part.p.objective
    improved = 0
    regions = part.regions()
    rng.shuffle(regions)
    for r in regions:
        if not part.members[r]:
            continue
        around = sorted(q for q in part.adjacent_regions(r) if not part.locked[q])
        for i, q in enumerate(around):
            for t in around[i + 1 :]:
                trio = (r, q, t)
                if not all(part.members[x] for x in trio) or r not in part.adjacent_regions(q):
                    continue
                if _try_triple(part, trio, rng, max_atoms, obj):
                    improved += 1
    return improved


def _try_triple(part: Partition, trio, rng, max_atoms: int, obj: Objective) -> bool:
    key = tuple(sorted(trio))
    stamp = tuple(part.version[x] for x in key)
    if part.pair_stamp.get(key) == stamp:
        return False
    part.pair_stamp[key] = stamp
    atoms = sorted(set().union(*(part.members[x] for x in trio)))
    if len(atoms) > max_atoms:
        return False
    loads = [part.load[x] for x in trio]
    balance = sum(obj.region(x) for x in loads)
    if balance - 3.0 * obj.region(sum(loads) / 3.0) < RECOMBINE_MIN:
        return False
    local = Local(part, atoms, (-1, -1))
    homes = [part.home[x] for x in trio]
    now = balance + obj.alpha * part.lost_in(trio) + obj.gamma * 2.0 * _trio_cut(part, trio)
    best = best_tripartition(part, local, homes, obj)
    if best is None or best[0] >= now - 1e-9:
        return False
    _, masks, order = best
    for x, mask, home in zip(trio, masks, order, strict=True):
        part.assign([a for i, a in enumerate(atoms) if (mask >> i) & 1], x)
        part.home[x] = home
    part.pair_stamp[key] = tuple(part.version[x] for x in key)
    return True


def _trio_cut(part: Partition, trio) -> float:
    return sum(
        part.cut_between(a, b)
        for a, b in ((trio[0], trio[1]), (trio[0], trio[2]), (trio[1], trio[2]))
    )


# -- merge one pair, split another -----------------------------------------------------
def merge_split(part: Partition, rng: random.Random, max_rounds: int, max_atoms: int) -> int:
    """Merge the cheapest adjacent pair and split the most profitable region.

    The region count stays fixed, but workload capacity moves between zones:
    this is what lets merge mode re-allocate grids between communities after
    the greedy start.
    """
    obj = part.p.objective
    split_cache: dict[int, tuple[int, tuple | None]] = {}
    done = 0
    for _ in range(max_rounds):
        merges = _merge_candidates(part, obj)
        if not merges:
            break
        splits = _split_candidates(part, rng, split_cache, max_atoms)
        if not splits:
            break
        best = None
        for m_delta, r, q in merges[:20]:
            for s_delta, s, plan in splits[:20]:
                if s in (r, q):
                    continue
                if best is None or m_delta + s_delta < best[0]:
                    best = (m_delta + s_delta, r, q, s, plan)
                break
        if best is None or best[0] >= -1e-9:
            break
        _, r, q, s, plan = best
        keep, gone = (r, q) if part.kept_in(r) >= part.kept_in(q) else (q, r)
        part.assign(sorted(part.members[gone]), keep)
        _, side_a, side_b, (home_a, home_b) = plan
        part.assign(side_a, s)
        part.assign(side_b, gone)  # reuse the emptied slot for the new half
        part.home[s], part.home[gone] = home_a, home_b
        done += 1
    return done


def _merge_candidates(part: Partition, obj: Objective) -> list[tuple[float, int, int]]:
    out = []
    for r in part.regions():
        for q in part.adjacent_regions(r):
            if q <= r:
                continue
            delta = (
                obj.region(part.load[r] + part.load[q]) - part.region_cost(r) - part.region_cost(q)
            )
            # The merged region continues the home that keeps more households.
            delta += obj.alpha * min(part.kept_in(r), part.kept_in(q))
            delta -= obj.gamma * 2.0 * part.cut_between(r, q)
            out.append((delta, r, q))
    out.sort()
    return out


def _split_candidates(
    part: Partition, rng: random.Random, cache: dict, max_atoms: int
) -> list[tuple[float, int, tuple]]:
    obj = part.p.objective
    out = []
    for r in part.regions():
        members = part.members[r]
        if len(members) < 2 or len(members) > max_atoms:
            continue
        hit = cache.get(r)
        if hit is None or hit[0] != part.version[r]:
            plan = best_bipartition(part, sorted(members), (part.home[r], -1), rng)
            hit = (part.version[r], plan)
            cache[r] = hit
        plan = hit[1]
        if plan is None:
            continue
        now = part.region_cost(r) + obj.alpha * part.lost_in((r,))
        out.append((plan[0] - now, r, plan))
    out.sort(key=lambda item: item[0])
    return out


# -- driver --------------------------------------------------------------------------------
def improve(
    part: Partition,
    seed: int | None,
    *,
    max_rounds: int = 30,
    max_passes: int = 50,
    recombine_atoms: int = 40,
    triple_atoms: int = 0,
    merge_split_rounds: int = 0,
) -> dict[str, int]:
    """Alternate the operations, cheapest first, until a round changes nothing.

    Each round: descent and two-step chains (atom moves), then pair
    recombination; trio recombination only once those are stuck (it is the
    most expensive); then merge-split. Sizes cap the sets the exhaustive and
    tree-cut searches take on. Returns counts of applied operations.
    """
    rng = random.Random(seed)
    stats = {"moves": 0, "recombinations": 0, "merge_splits": 0, "rounds": 0}
    for _ in range(max_rounds):
        stats["rounds"] += 1
        moved = descend(part, rng, max_passes)
        moved += chains(part, rng)
        recombined = recombine(part, rng, recombine_atoms) if recombine_atoms else 0
        if not (moved or recombined) and triple_atoms:
            recombined = recombine_triples(part, rng, triple_atoms)
        swapped = (
            merge_split(part, rng, merge_split_rounds, recombine_atoms) if merge_split_rounds else 0
        )
        stats["moves"] += moved
        stats["recombinations"] += recombined
        stats["merge_splits"] += swapped
        if not (moved or recombined or swapped):
            break
    return stats
