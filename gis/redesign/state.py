"""State of the redesign search: objective, atoms, and the partition into regions.

The state is a partition of atoms (whole grids in merge mode, micro-grids in
reshape mode) into regions. Every operation keeps three invariants: a region
is connected in the atom adjacency, never leaves its zone (one nesting unit's
connected piece), and locked regions are never touched. The objective, per
balanced region, is the squared relative deviation from the target mean
workload, plus a steep penalty outside the band, plus the households that
leave their grid and the length of region boundaries (a compactness proxy).

Pure Python on lists and sets: regions hold a handful to a few dozen atoms, so
the per-move work is tiny and numpy's call overhead would dominate.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np

__all__ = ["EPS", "Objective", "Problem", "Partition"]

EPS = 1e-12  # objective changes smaller than this are no change


@dataclass(frozen=True)
class Objective:
    """Weights of the terms the search minimises.

    Attributes
    ----------
    mu : float
        Target workload of a balanced region (the mean).
    band : float or None
        Half-width of the workload band as a share of ``mu``.
    rho : float
        Weight of the squared excess outside the band.
    alpha : float
        Cost per household that leaves its grid (already divided by the mean
        households per region).
    gamma : float
        Cost per metre of region boundary (already divided by the mean region
        perimeter).
    """

    mu: float
    band: float | None = None
    rho: float = 100.0
    alpha: float = 0.0
    gamma: float = 0.0

    def region(self, load: float) -> float:
        dev = (load - self.mu) / self.mu
        cost = dev * dev
        if self.band is not None:
            excess = abs(dev) - self.band
            if excess > 0:
                cost += self.rho * excess * excess
        return cost


@dataclass
class Problem:
    """Atoms and the graph the search may use.

    ``nbrs``/``nlen`` hold only edges between unlocked atoms of the same zone,
    so any neighbour region found through them is a legal destination.
    """

    w: list[float]
    hh: list[float]
    orig: list[int]
    zone: list[int]
    nbrs: list[list[int]]
    nlen: list[list[float]]
    objective: Objective
    movable: np.ndarray = field(repr=False)

    @property
    def n(self) -> int:
        return len(self.w)


class Partition:
    """Mutable partition of the atoms of a :class:`Problem` into regions.

    Region ids are stable; a region emptied by a merge stays as an empty slot.
    ``home[r]`` is the old grid region ``r`` continues (or -1 for a new grid),
    so the households of ``r``'s atoms whose ``orig`` equals ``home[r]`` keep
    their grid.
    """

    def __init__(self, problem: Problem, labels: np.ndarray, home: list[int], locked: list[bool]):
        self.p = problem
        self.lab: list[int] = [int(x) for x in labels]
        n_regions = max(self.lab) + 1
        self.members: list[set[int]] = [set() for _ in range(n_regions)]
        self.load: list[float] = [0.0] * n_regions
        for atom, region in enumerate(self.lab):
            self.members[region].add(atom)
            self.load[region] += problem.w[atom]
        self.home = list(home)
        self.locked = list(locked)
        self.version = [0] * n_regions  # bumped on change: invalidates cached splits
        self.pair_stamp: dict[tuple[int, int], tuple[int, int]] = {}  # pairs already optimal
        # Regions changed since each atom-level pass last ran (None: never ran, all atoms).
        self.changed: dict[str, set[int] | None] = {"descend": None, "chains": None}

    # -- bookkeeping ---------------------------------------------------------------
    def regions(self) -> list[int]:
        """Live, unlocked regions."""
        return [r for r, m in enumerate(self.members) if m and not self.locked[r]]

    def n_live(self) -> int:
        return sum(1 for m in self.members if m)

    def kept(self, atoms, home: int) -> float:
        hh, orig = self.p.hh, self.p.orig
        return sum(hh[a] for a in atoms if orig[a] == home)

    def region_cost(self, r: int) -> float:
        return self.p.objective.region(self.load[r])

    def new_region(self, home: int) -> int:
        self.members.append(set())
        self.load.append(0.0)
        self.home.append(home)
        self.locked.append(False)
        self.version.append(0)
        return len(self.members) - 1

    def assign(self, atoms, region: int) -> None:
        w = self.p.w
        for a in atoms:
            old = self.lab[a]
            if old == region:
                continue
            self.members[old].discard(a)
            self.load[old] -= w[a]
            self.version[old] += 1
            for changed in self.changed.values():
                if changed is not None:
                    changed.add(old)
                    changed.add(region)
            self.members[region].add(a)
            self.load[region] += w[a]
            self.lab[a] = region
        self.version[region] += 1

    def stale_atoms(self, consumer: str) -> list[int]:
        """Movable atoms in or next to a region changed since ``consumer`` last ran.

        Nothing else can have gained a move since then. Resets the record.
        """
        p = self.p
        changed = self.changed[consumer]
        self.changed[consumer] = set()
        if changed is None:
            return [a for a in range(p.n) if p.movable[a]]
        touched: set[int] = set()
        for r in changed:
            for a in self.members[r]:
                touched.add(a)
                touched.update(p.nbrs[a])
        return sorted(a for a in touched if p.movable[a])

    def shift(self, atom: int, region: int) -> None:
        """Move one atom without touching versions: for tentative moves that may be undone."""
        old = self.lab[atom]
        w = self.p.w[atom]
        self.members[old].discard(atom)
        self.load[old] -= w
        self.members[region].add(atom)
        self.load[region] += w
        self.lab[atom] = region

    def labels(self) -> np.ndarray:
        """Labels renumbered 0..k-1 in the order of the region ids."""
        _, dense = np.unique(np.asarray(self.lab), return_inverse=True)
        return dense

    # -- connectivity ----------------------------------------------------------------
    def connected_without(self, region: int, atom: int) -> bool:
        members = self.members[region]
        size = len(members) - 1
        if size <= 1:
            return True
        nbrs = self.p.nbrs
        start = next(m for m in nbrs[atom] if m in members)
        seen = {start, atom}
        queue = deque([start])
        while queue:
            for nb in nbrs[queue.popleft()]:
                if nb in members and nb not in seen:
                    seen.add(nb)
                    queue.append(nb)
        return len(seen) - 1 == size

    def adjacent_regions(self, region: int) -> set[int]:
        lab, nbrs = self.lab, self.p.nbrs
        return {lab[b] for a in self.members[region] for b in nbrs[a] if lab[b] != region}

    # -- region summaries --------------------------------------------------------------
    def kept_in(self, r: int) -> float:
        """Households of region ``r`` that keep their grid."""
        return self.kept(self.members[r], self.home[r])

    def lost_in(self, regions) -> float:
        """Households of ``regions`` that have left their grid."""
        hh, orig = self.p.hh, self.p.orig
        return sum(hh[a] for r in regions for a in self.members[r] if orig[a] != self.home[r])

    def cut_between(self, r: int, q: int) -> float:
        """Length of the boundary regions ``r`` and ``q`` share (m)."""
        lab, p = self.lab, self.p
        total = 0.0
        for a in self.members[r]:
            for b, length in zip(p.nbrs[a], p.nlen[a], strict=True):
                if lab[b] == q:
                    total += length
        return total
