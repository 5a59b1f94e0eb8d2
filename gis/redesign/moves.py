"""Atom moves of the redesign search: descent and two-step ejection chains."""

from __future__ import annotations

import random

from gis.redesign.state import EPS, Objective, Partition

__all__ = ["descend", "chains"]


def descend(part: Partition, rng: random.Random, max_passes: int) -> int:
    """Move boundary atoms to neighbouring regions while the objective falls.

    First-improvement descent in a seeded random order; an atom moves only if
    its region stays connected without it (checked last, since it is the
    expensive test and most candidate moves fail on cost first). Each pass
    revisits only atoms in or next to a region that changed since the last.
    """
    obj = part.p.objective
    total = 0
    for _ in range(max_passes):
        candidates = part.stale_atoms("descend")
        rng.shuffle(candidates)
        moved = 0
        for a in candidates:
            target, delta = _best_move(part, a, obj)
            if target < 0 or delta >= -EPS:
                continue
            source = part.lab[a]
            if not part.connected_without(source, a):
                continue
            part.assign((a,), target)
            moved += 1
        total += moved
        if not moved:
            break
    return total


def _best_move(part: Partition, a: int, obj: Objective) -> tuple[int, float]:
    lab = part.lab
    source = lab[a]
    if len(part.members[source]) == 1:
        return -1, 0.0  # the region would vanish and the count would change
    p = part.p
    nbrs = p.nbrs[a]
    if all(lab[b] == source for b in nbrs):
        return -1, 0.0  # interior atom
    own = 0.0
    shared: dict[int, float] = {}
    for b, length in zip(nbrs, p.nlen[a], strict=True):
        r = lab[b]
        if r == source:
            own += length
        else:
            shared[r] = shared.get(r, 0.0) + length
    if not shared:
        return -1, 0.0
    w = p.w[a]
    load = part.load
    base_source = obj.region(load[source] - w) - obj.region(load[source])
    kept_here = part.home[source] == p.orig[a]
    best, best_delta = -1, 0.0
    for r, length in shared.items():
        delta = base_source + obj.region(load[r] + w) - obj.region(load[r])
        if obj.alpha:
            kept_there = part.home[r] == p.orig[a]
            delta += obj.alpha * p.hh[a] * (kept_here - kept_there)
        delta += obj.gamma * 2.0 * (own - length)
        if delta < best_delta:
            best, best_delta = r, delta
    return best, best_delta


# -- ejection chains ---------------------------------------------------------------------
def chains(part: Partition, rng: random.Random) -> int:
    """Two-step moves: atom ``a`` goes A → B, then some atom ``b`` of B goes on to C.

    Descent only takes strict improvements, so it stalls when workload must
    cross an intermediate region: B takes ``a`` at no gain and passes ``b``
    on (C may be A: then it is a swap). The first step is tried tentatively
    and undone unless some second step makes the pair an improvement.
    """
    p = part.p
    obj = p.objective
    lab, members = part.lab, part.members
    atoms = [a for a in part.stale_atoms("chains") if any(lab[b] != lab[a] for b in p.nbrs[a])]
    rng.shuffle(atoms)
    applied = 0
    for a in atoms:
        source = lab[a]
        if len(members[source]) == 1:
            continue
        for via in sorted({lab[b] for b in p.nbrs[a]} - {source}):
            first = _move_delta(part, a, via, obj)
            if first <= -EPS:
                continue  # a plain move: descent's business
            if not part.connected_without(source, a):
                break  # a cannot leave, whatever the destination
            part.shift(a, via)
            second = _best_second(part, a, via, first, obj)
            if second is None:
                part.shift(a, source)
                continue
            b, target = second
            part.shift(a, source)
            part.assign((a,), via)
            part.assign((b,), target)
            applied += 1
            break
    return applied


def _best_second(
    part: Partition, a: int, via: int, first: float, obj: Objective
) -> tuple[int, int] | None:
    best, best_total = None, -EPS
    for b in sorted(part.members[via]):
        if b == a:
            continue
        target, second = _best_move(part, b, obj)
        if target >= 0 and first + second < best_total and part.connected_without(via, b):
            best, best_total = (b, target), first + second
    return best


def _move_delta(part: Partition, a: int, target: int, obj: Objective) -> float:
    """Objective change of moving atom ``a`` to region ``target``."""
    p, lab = part.p, part.lab
    source = lab[a]
    own = there = 0.0
    for b, length in zip(p.nbrs[a], p.nlen[a], strict=True):
        if lab[b] == source:
            own += length
        elif lab[b] == target:
            there += length
    w, load = p.w[a], part.load
    delta = (
        obj.region(load[source] - w)
        - obj.region(load[source])
        + obj.region(load[target] + w)
        - obj.region(load[target])
    )
    if obj.alpha:
        delta += (
            obj.alpha
            * p.hh[a]
            * ((part.home[source] == p.orig[a]) - (part.home[target] == p.orig[a]))
        )
    return delta + obj.gamma * 2.0 * (own - there)
