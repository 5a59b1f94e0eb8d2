"""Adjacency of areas and connectivity checks for :mod:`gis.redesign`.

Two areas are neighbours when their boundaries share more than ``min_shared_m``
metres, measured in a metric CRS: corner touches do not count (rook, not queen),
because a grid that meets the rest of its region at a single point is not a
contiguous territory a grid worker can walk.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely
from scipy import sparse
from scipy.sparse import csgraph

__all__ = ["Adjacency", "build_adjacency", "region_components"]


@dataclass(frozen=True)
class Adjacency:
    """Symmetric adjacency of ``n`` areas with shared boundary lengths.

    Attributes
    ----------
    n : int
    indptr, indices : ndarray
        CSR layout: the neighbours of area ``i`` are
        ``indices[indptr[i]:indptr[i + 1]]``.
    length : ndarray
        Shared boundary length (m) of each CSR entry.
    perimeter : ndarray
        Perimeter (m) of each area.
    """

    n: int
    indptr: np.ndarray
    indices: np.ndarray
    length: np.ndarray
    perimeter: np.ndarray

    @property
    def n_edges(self) -> int:
        return len(self.indices) // 2

    def neighbors(self, i: int) -> np.ndarray:
        return self.indices[self.indptr[i] : self.indptr[i + 1]]

    def restricted(self, keep_edge: np.ndarray) -> Adjacency:
        """The same areas with only the CSR entries where ``keep_edge`` is true."""
        rows = np.repeat(np.arange(self.n), np.diff(self.indptr))[keep_edge]
        indptr = np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=self.n))])
        return Adjacency(
            self.n, indptr, self.indices[keep_edge], self.length[keep_edge], self.perimeter
        )

    def same_label_mask(self, labels: np.ndarray) -> np.ndarray:
        """CSR mask of the entries joining two areas with the same label."""
        rows = np.repeat(np.arange(self.n), np.diff(self.indptr))
        return labels[rows] == labels[self.indices]

    def matrix(self) -> sparse.csr_matrix:
        data = np.ones(len(self.indices), dtype=np.int8)
        return sparse.csr_matrix((data, self.indices, self.indptr), shape=(self.n, self.n))


def build_adjacency(geoms: np.ndarray, min_shared_m: float = 1.0) -> Adjacency:
    """Rook adjacency of polygons given in a metric CRS.

    Parameters
    ----------
    geoms : ndarray of shapely geometries
        Polygons in a CRS whose unit is the metre.
    min_shared_m : float
        Shared boundary length above which two areas are neighbours.

    Notes
    -----
    Shared edges are found by matching identical segments: a clean coverage
    shares bit-identical vertices, and reprojection maps equal vertices to
    equal vertices, so this is exact and far cheaper than intersecting every
    pair of boundaries. Pairs that touch but share no identical segment
    (vertices that do not line up, e.g. T-junctions in hand-drawn data) are
    measured by intersecting their boundaries instead.
    """
    n = len(geoms)
    i, j, shared = _shared_segments(geoms)
    tree = shapely.STRtree(geoms)
    ci, cj = tree.query(geoms, predicate="intersects")
    keep = ci < cj
    ci, cj = ci[keep], cj[keep]
    found = np.zeros(0, dtype=np.int64) if not len(i) else i * n + j
    rest = ~np.isin(ci * n + cj, found)
    ci, cj = ci[rest], cj[rest]
    boundaries = shapely.boundary(geoms)
    extra = shapely.length(shapely.intersection(boundaries[ci], boundaries[cj]))
    i, j = np.concatenate([i, ci]), np.concatenate([j, cj])
    shared = np.concatenate([shared, extra])
    keep = shared > min_shared_m
    i, j, shared = i[keep], j[keep], shared[keep]
    matrix = sparse.csr_matrix(
        (np.concatenate([shared, shared]), (np.concatenate([i, j]), np.concatenate([j, i]))),
        shape=(n, n),
    )
    matrix.sort_indices()
    return Adjacency(
        n=n,
        indptr=matrix.indptr.astype(np.int64),
        indices=matrix.indices.astype(np.int64),
        length=matrix.data.astype(float),
        perimeter=shapely.length(geoms),
    )


def _shared_segments(geoms: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pairs ``i < j`` whose boundaries have identical segments, and their length (m)."""
    rings, owner = shapely.get_rings(geoms, return_index=True)
    coords, ring = shapely.get_coordinates(rings, return_index=True)
    same_ring = ring[1:] == ring[:-1]
    start, end = coords[:-1][same_ring], coords[1:][same_ring]
    length = np.hypot(*(end - start).T)
    polygon = owner[ring[:-1][same_ring]]
    # Orient every segment the same way so both neighbours produce one key.
    flip = (start[:, 0] > end[:, 0]) | ((start[:, 0] == end[:, 0]) & (start[:, 1] > end[:, 1]))
    a = np.where(flip[:, None], end, start)
    b = np.where(flip[:, None], start, end)
    order = np.lexsort((polygon, b[:, 1], b[:, 0], a[:, 1], a[:, 0]))
    key = np.column_stack([a, b])[order]
    twin = (key[1:] == key[:-1]).all(axis=1)
    first, second = polygon[order][:-1][twin], polygon[order][1:][twin]
    differ = first != second
    lo = np.minimum(first, second)[differ]
    hi = np.maximum(first, second)[differ]
    seg_len = length[order][:-1][twin][differ]
    if not len(lo):
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, np.zeros(0)
    n = len(geoms)
    summed = sparse.coo_matrix((seg_len, (lo, hi)), shape=(n, n)).tocsr()
    summed.sum_duplicates()
    coo = summed.tocoo()
    return coo.row.astype(np.int64), coo.col.astype(np.int64), coo.data.astype(float)


def region_components(adjacency: Adjacency, labels: np.ndarray) -> np.ndarray:
    """Number of connected pieces of every label (index = label value)."""
    restricted = adjacency.restricted(adjacency.same_label_mask(labels))
    _, piece = csgraph.connected_components(restricted.matrix(), directed=False)
    n_labels = int(labels.max()) + 1 if len(labels) else 0
    pairs = np.unique(np.stack([labels, piece]), axis=1)
    return np.bincount(pairs[0], minlength=n_labels)
