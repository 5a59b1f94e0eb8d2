"""Cutting a small set of atoms into two or three connected parts, cheapest first.

Sets are re-indexed 0..s-1 and handled as bitmasks: connectivity is a few
OR-and-mask rounds, and small sets (merge mode: a few whole grids) are
enumerated exhaustively. Larger sets are cut along the edges of random
spanning trees, as in ReCom: removing any tree edge leaves two connected
subtrees, so every candidate is legal.
"""

from __future__ import annotations

import heapq
import itertools
import random

from gis.redesign.state import EPS, Objective, Partition

__all__ = ["Local", "best_bipartition", "best_tripartition"]

EXHAUSTIVE_MAX = 12  # atoms; up to 2**11 bipartitions are enumerated exactly
TREES = 4  # random spanning trees tried when a set is too large to enumerate
_FINALISTS = 8  # cheapest cuts whose boundary length is priced


class Local:
    """A set of atoms re-indexed 0..s-1 with bitmask adjacency.

    ``k0``/``k1`` are the households of each atom that stay home if its part
    continues the first/second of two candidate old grids.
    """

    def __init__(self, part: Partition, atoms: list[int], homes: tuple[int, int]):
        self.atoms = atoms
        index = {a: i for i, a in enumerate(atoms)}
        p = part.p
        self.w = [p.w[a] for a in atoms]
        self.k0 = [p.hh[a] if p.orig[a] == homes[0] else 0.0 for a in atoms]
        self.k1 = [p.hh[a] if p.orig[a] == homes[1] else 0.0 for a in atoms]
        self.nb: list[int] = []
        self.edges: list[tuple[int, int, float]] = []
        self.adj: list[list[int]] = []
        for i, a in enumerate(atoms):
            mask, local = 0, []
            for b, length in zip(p.nbrs[a], p.nlen[a], strict=True):
                j = index.get(b)
                if j is not None:
                    mask |= 1 << j
                    local.append(j)
                    if i < j:
                        self.edges.append((i, j, length))
            self.nb.append(mask)
            self.adj.append(local)
        self.full = (1 << len(atoms)) - 1

    def connected(self, mask: int) -> bool:
        return _component(self, mask, mask & -mask) == mask

    def cut(self, mask: int) -> float:
        return sum(length for i, j, length in self.edges if ((mask >> i) ^ (mask >> j)) & 1)

    def candidates(self, rng: random.Random) -> list[tuple[int, float, float, float]]:
        """One side of connected bipartitions: ``(mask, load, k0, k1)`` of that side."""
        s = len(self.atoms)
        if s <= EXHAUSTIVE_MAX:
            return self._exhaustive()
        seen: dict[int, tuple[int, float, float, float]] = {}
        for _ in range(TREES):
            for cand in self._tree_cuts(rng):
                seen.setdefault(cand[0], cand)
        return list(seen.values())

    def _exhaustive(self) -> list[tuple[int, float, float, float]]:
        # Atom 0 stays on the complement side so each bipartition appears once.
        s = len(self.atoms)
        out = []
        for half in range(1, 1 << (s - 1)):
            mask = half << 1
            if self.connected(mask) and self.connected(self.full ^ mask):
                load = k0 = k1 = 0.0
                for i in range(1, s):
                    if (mask >> i) & 1:
                        load += self.w[i]
                        k0 += self.k0[i]
                        k1 += self.k1[i]
                out.append((mask, load, k0, k1))
        return out

    def _tree_cuts(self, rng: random.Random) -> list[tuple[int, float, float, float]]:
        # A random spanning tree: removing any tree edge leaves two connected
        # subtrees, so every cut is a legal bipartition (the ReCom idea), and
        # subtree sums give every cut's load in one post-order pass.
        s = len(self.atoms)
        root = rng.randrange(s)
        parent = [-1] * s
        order = [root]
        seen = 1 << root
        frontier = [root]
        while frontier:
            last = len(frontier) - 1
            pick = rng.randint(0, last)
            frontier[pick], frontier[last] = frontier[last], frontier[pick]
            node = frontier.pop()
            for nb in self.adj[node]:
                if not (seen >> nb) & 1:
                    seen |= 1 << nb
                    parent[nb] = node
                    order.append(nb)
                    frontier.append(nb)
        if len(order) < s:
            return []  # not connected: no bipartition of it is a pair of regions
        mask = [1 << i for i in range(s)]
        load, k0, k1 = self.w[:], self.k0[:], self.k1[:]
        for node in reversed(order[1:]):
            up = parent[node]
            mask[up] |= mask[node]
            load[up] += load[node]
            k0[up] += k0[node]
            k1[up] += k1[node]
        return [(mask[v], load[v], k0[v], k1[v]) for v in order[1:]]


def best_bipartition(
    part: Partition, atoms: list[int], homes: tuple[int, int], rng: random.Random
) -> tuple[float, list[int], list[int], tuple[int, int]] | None:
    """Cheapest split of ``atoms`` into two connected parts.

    Parameters
    ----------
    homes : (int, int)
        Old grids the two parts may continue (-1 for none); the cheaper
        assignment of homes to parts is chosen.

    Returns
    -------
    (cost, part_a, part_b, (home_a, home_b)) or None when no split exists.
    """
    if len(atoms) < 2:
        return None
    local = Local(part, atoms, homes)
    obj = part.p.objective
    total, total0, total1 = sum(local.w), sum(local.k0), sum(local.k1)
    households = sum(part.p.hh[a] for a in atoms)
    region = obj.region
    scored = []
    for mask, load, k0, k1 in local.candidates(rng):
        cost = region(load) + region(total - load)
        straight = k0 + total1 - k1  # the mask side continues homes[0]
        swapped = k1 + total0 - k0
        cost += obj.alpha * (households - max(straight, swapped))
        scored.append((cost, mask, straight >= swapped))
    if not scored:
        return None
    # The boundary length costs a pass over the edges: price it for the few
    # cheapest cuts only, which are the ones it can still reorder.
    finalists = heapq.nsmallest(_FINALISTS, scored, key=lambda item: item[0])
    cost, mask, keep_order = min(
        ((c + obj.gamma * 2.0 * local.cut(m), m, k) for c, m, k in finalists),
        key=lambda item: item[0],
    )
    side_a = [a for i, a in enumerate(atoms) if (mask >> i) & 1]
    side_b = [a for i, a in enumerate(atoms) if not (mask >> i) & 1]
    home_pair = homes if keep_order else (homes[1], homes[0])
    return cost, side_a, side_b, home_pair


def best_tripartition(part: Partition, local: Local, homes: list[int], obj: Objective):
    """Cheapest split of a small set into three connected parts, homes assigned best."""
    p = part.p
    kept = [[p.hh[a] if p.orig[a] == h else 0.0 for a in local.atoms] for h in homes]
    households = sum(p.hh[a] for a in local.atoms)
    best = None
    for masks in _three_way(local):
        cost = sum(obj.region(_mask_sum(local.w, m)) for m in masks)
        order = list(homes)
        if obj.alpha:
            stay, perm = max(
                (sum(_mask_sum(kept[h], m) for h, m in zip(perm, masks, strict=True)), perm)
                for perm in itertools.permutations(range(3))
            )
            order = [homes[h] for h in perm]
            cost += obj.alpha * (households - stay)
        cost += obj.gamma * 2.0 * _multi_cut(local, masks)
        if best is None or cost < best[0] - EPS:
            best = (cost, masks, order)
    return best


def _three_way(local: Local):
    """Every split of the set into three connected parts (atom 0 in the first)."""
    full = local.full
    rest_all = full ^ 1
    sub = rest_all
    while True:
        first = sub | 1
        if first != full and local.connected(first):
            rest = full ^ first
            low = rest & -rest
            if local.connected(rest):
                inner = rest ^ low
                while True:
                    second = inner | low
                    if (
                        second != rest
                        and local.connected(second)
                        and local.connected(rest ^ second)
                    ):
                        yield (first, second, rest ^ second)
                    if inner == 0:
                        break
                    inner = (inner - 1) & (rest ^ low)
            else:
                piece = _component(local, rest, low)
                if local.connected(rest ^ piece):
                    yield (first, piece, rest ^ piece)
        if sub == 0:
            break
        sub = (sub - 1) & rest_all


def _component(local: Local, mask: int, start: int) -> int:
    seen = start
    while True:
        grown, rest = seen, seen
        while rest:
            bit = rest & -rest
            grown |= local.nb[bit.bit_length() - 1]
            rest ^= bit
        grown &= mask
        if grown == seen:
            return seen
        seen = grown


def _mask_sum(values: list[float], mask: int) -> float:
    total = 0.0
    while mask:
        bit = mask & -mask
        total += values[bit.bit_length() - 1]
        mask ^= bit
    return total


def _multi_cut(local: Local, masks) -> float:
    owner = {}
    for k, mask in enumerate(masks):
        for i in range(len(local.atoms)):
            if (mask >> i) & 1:
                owner[i] = k
    return sum(length for i, j, length in local.edges if owner[i] != owner[j])
