"""Where incidents concentrate: per-grid counts, Getis-Ord Gi* hot spots, heat, trends.

- :func:`grid_counts` (:mod:`~gis.hotspots.counts`) — incidents per grid for a
  time window, category and source, with the rate per 1,000 residents and per km².
- :class:`HotSpots` (:mod:`~gis.hotspots.gistar`, on the weights of
  :mod:`~gis.hotspots.weights`) — Getis-Ord Gi* (``esda.G_Local(star=True)``) on
  contiguity weights, with ArcGIS-style confidence bins and optional FDR.
- :func:`kernel_density` (:mod:`~gis.hotspots.density`) — a Gaussian kernel
  density surface for a heat layer.
- :class:`EmergingHotSpots` (:mod:`~gis.hotspots.trends`) — monthly (or any
  frequency) Gi* plus a Mann–Kendall trend per grid, classed as in ArcGIS
  Emerging Hot Spot Analysis.

Conventions shared by the estimators (those of ArcGIS Hot Spot Analysis):

- Gi* uses binary contiguity weights with the grid itself included
  (``transform="B"``): for binary weights esda's analytical z-score is exactly
  Getis and Ord's Gi*, which is what ArcGIS reports. (With row-standardised
  weights esda would use the binary variance formula on non-binary weights.)
- ``p_`` is two-sided, as ArcGIS's p-values and confidence levels are. With
  permutations it is the two-sided conditional-permutation pseudo p-value
  ``min(1, 2 (min(#sim >= G, #sim <= G) + 1) / (permutations + 1))`` computed
  from esda's simulations (so it does not depend on esda's changing default
  for ``alternative``); the smallest reachable value is ``2 / (permutations +
  1)``: 199 permutations are the fewest that can reach the 99 % bin. With
  ``permutations=0`` it is the normal approximation ``2 (1 - Φ(|z|))``, as in
  ArcGIS.
- Bins: ``±3`` when p <= 0.01 (99 % confidence), ``±2`` when p <= 0.05,
  ``±1`` when p <= 0.10, else 0; the sign is the sign of z. ``alpha`` caps the
  levels used (``alpha=0.05`` never gives ``±1``).
- FDR (``fdr=True``) follows ArcGIS: the false discovery rate is controlled
  separately at each confidence level, i.e. the cut-off of level ``a`` is
  ``esda.fdr(p, a)`` (Benjamini–Hochberg) instead of ``a``.
"""

from __future__ import annotations

from gis.hotspots.counts import grid_counts
from gis.hotspots.density import DensitySurface, kernel_density
from gis.hotspots.gistar import CONFIDENCE_LEVELS, HotSpots, confidence_bins, gi_star
from gis.hotspots.trends import (
    EMERGING_CLASSES,
    EmergingHotSpots,
    classify_emerging,
    mann_kendall,
)
from gis.hotspots.weights import contiguity_weights

__all__ = [
    "CONFIDENCE_LEVELS",
    "EMERGING_CLASSES",
    "grid_counts",
    "contiguity_weights",
    "gi_star",
    "confidence_bins",
    "HotSpots",
    "DensitySurface",
    "kernel_density",
    "mann_kendall",
    "classify_emerging",
    "EmergingHotSpots",
]
