"""Grid redesign: a target number of grids with equal workload, by merging or reshaping.

:class:`Redesign` (in :mod:`gis.redesign.solver`) checks its input
(:mod:`~gis.redesign.checks`), builds the adjacency graph
(:mod:`~gis.redesign.graph`) and the units and zones of the problem
(:mod:`~gis.redesign.plan`), finds a start (:mod:`~gis.redesign.build`) and
improves it by local search (:mod:`~gis.redesign.search`, with the moves of
:mod:`~gis.redesign.moves` and the optimal re-splits of :mod:`~gis.redesign.cuts`)
on the partition state of :mod:`~gis.redesign.state`.
"""

from __future__ import annotations

from gis.redesign.solver import (
    DEFAULT_WEIGHTS,
    METRIC_KEYS,
    MODES,
    REPORT_BAND,
    STRATEGIES,
    Redesign,
    workload,
)

__all__ = [
    "DEFAULT_WEIGHTS",
    "METRIC_KEYS",
    "MODES",
    "REPORT_BAND",
    "STRATEGIES",
    "Redesign",
    "workload",
]
