"""Binary contiguity weights between grids (queen within a tolerance, or rook), islands linked."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import geopandas as gpd
import numpy as np
import shapely

from gis.errors import ValidationError
from gis.hotspots.counts import checked_grids, to_metric

if TYPE_CHECKING:
    import libpysal

__all__ = ["WEIGHT_KINDS", "contiguity_weights"]

#: Kinds of contiguity :func:`contiguity_weights` builds.
WEIGHT_KINDS = ("queen", "rook")
_ISLANDS = ("nearest", "keep")
_DEFAULT_TOLERANCE_M = 1.0


def contiguity_weights(
    grids: gpd.GeoDataFrame,
    kind: str = "queen",
    tolerance_m: float | None = None,
    islands: str = "nearest",
    *,
    code: str = "code",
    metric_crs: Any = None,
) -> tuple[libpysal.weights.W, list[str]]:
    """Binary contiguity weights between grids, tolerant of hairline gaps.

    Parameters
    ----------
    grids : geopandas.GeoDataFrame
        Grids with unique codes and a CRS.
    kind : {"queen", "rook"}
        ``queen``: grids whose boundaries come within ``tolerance_m`` of each
        other (sharing a vertex is enough) — ``libpysal``'s fuzzy contiguity,
        found with a GEOS distance query instead of buffering every grid.
        ``rook``: grids sharing an edge exactly (``libpysal`` Rook).
    tolerance_m : float, optional
        Gap (m) still counted as contact; default 1.0 for queen. Rook takes
        only 0 (its default).
    islands : {"nearest", "keep"}
        A grid with no neighbour is linked to its nearest grid (``nearest``,
        the default: Gi* of a lone grid would only restate its own value), or
        left alone (``keep``).
    code : str, default "code"
        Column with the grid codes, used as the weights' ids.
    metric_crs : anything pyproj.CRS accepts, optional
        Projected CRS in metres for the tolerance; default: the UTM zone.

    Returns
    -------
    w : libpysal.weights.W
        Binary weights, ids = codes in the grids' order.
    linked : list of str
        Codes of the islands that were linked to their nearest grid.

    Raises
    ------
    ValidationError
        For an unknown ``kind`` or ``islands``, or a negative tolerance.
    """
    if kind not in WEIGHT_KINDS:
        raise ValidationError(f"kind must be one of {list(WEIGHT_KINDS)}, got {kind!r}")
    if islands not in _ISLANDS:
        raise ValidationError(f"islands must be one of {list(_ISLANDS)}, got {islands!r}")
    tolerance = _tolerance(kind, tolerance_m)
    codes, geoms = checked_grids(grids, code)
    metric, _ = to_metric(geoms, grids.crs, metric_crs)
    tree = shapely.STRtree(metric)
    if kind == "queen":
        predicate = "dwithin" if tolerance > 0 else "intersects"
        left, right = tree.query(metric, predicate=predicate, distance=tolerance or None)
    else:
        left, right = _rook_pairs(metric)
    neighbours: dict[int, set[int]] = {i: set() for i in range(len(codes))}
    for i, j in zip(left.tolist(), right.tolist(), strict=True):
        if i != j:
            neighbours[i].add(j)
            neighbours[j].add(i)
    linked = _link_islands(neighbours, tree, metric) if islands == "nearest" else []
    import libpysal

    w = libpysal.weights.W(
        {codes[i]: [codes[j] for j in sorted(n)] for i, n in neighbours.items()},
        id_order=list(codes),
        silence_warnings=True,
    )
    return w, [str(codes[i]) for i in linked]


def _tolerance(kind: str, tolerance_m: float | None) -> float:
    if tolerance_m is None:
        return _DEFAULT_TOLERANCE_M if kind == "queen" else 0.0
    ok = isinstance(tolerance_m, int | float | np.number) and not isinstance(tolerance_m, bool)
    if not (ok and np.isfinite(tolerance_m) and tolerance_m >= 0):
        raise ValidationError(f"tolerance_m must be a finite number >= 0, got {tolerance_m!r}")
    if kind == "rook" and tolerance_m > 0:
        raise ValidationError("weights='rook' needs shared edges: tolerance_m must be 0 or None")
    return float(tolerance_m)


def _rook_pairs(metric: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    import libpysal

    frame = gpd.GeoDataFrame(geometry=list(metric))
    w = libpysal.weights.Rook.from_dataframe(frame, use_index=False, silence_warnings=True)
    pairs = [(i, j) for i, ns in w.neighbors.items() for j in ns]
    if not pairs:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
    left, right = np.array(pairs, dtype=np.int64).T
    return left, right


def _link_islands(neighbours: dict[int, set[int]], tree, metric: np.ndarray) -> list[int]:
    alone = [i for i, n in neighbours.items() if not n]
    if not alone or len(metric) < 2:
        return []
    (which, nearest) = tree.query_nearest(metric[alone], exclusive=True, all_matches=False)
    for k, j in zip(which.tolist(), nearest.tolist(), strict=True):
        neighbours[alone[k]].add(j)
        neighbours[j].add(alone[k])
    return alone
