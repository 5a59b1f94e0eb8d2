"""Assignment beyond one machine: the same index applied on a Dask cluster.

An incident archive of 10⁷–10⁸ points is partitioned with dask-geopandas and
every partition is assigned with the *same* :class:`gis.assign.hierarchy.HierarchyIndex`
(or :class:`gis.assign.GridIndex`) that the local engine uses, so the answer
cannot differ: only where the work runs does. The index is built once on the
client and scattered to the workers, not rebuilt per partition.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd

from gis.assign.hierarchy import ASSIGNED_COLUMNS, HierarchyIndex
from gis.errors import GridmapError

__all__ = ["dask_client", "assign_dask"]


@contextlib.contextmanager
def dask_client(scheduler: str | None = None, n_workers: int = 2) -> Iterator[Any]:
    """A distributed Client: to ``scheduler`` (e.g. ``tcp://10.0.0.5:8786``), else a LocalCluster.

    The LocalCluster uses worker *processes*, so the index really is shipped
    the way it would be to a remote cluster.
    """
    from dask.distributed import Client, LocalCluster

    if scheduler:
        client = Client(scheduler)
        try:
            yield client
        finally:
            client.close()
        return
    with (
        LocalCluster(
            n_workers=n_workers, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        Client(cluster) as client,
    ):
        yield client


def assign_dask(
    lon: np.ndarray,
    lat: np.ndarray,
    index: HierarchyIndex,
    client,
    tolerance: float = 0.0,
    npartitions: int | None = None,
) -> pd.DataFrame:
    """Assign WGS84 points on the cluster behind ``client``.

    Parameters
    ----------
    lon, lat : array-like
        WGS84 coordinates.
    index : HierarchyIndex
        Built once on the client; scattered to every worker.
    client : dask.distributed.Client
    tolerance : float
        Snap tolerance in metres, as in :meth:`HierarchyIndex.assign_xy`.
    npartitions : int, optional
        Default: two per worker thread.

    Returns
    -------
    DataFrame
        Same columns and row order as :meth:`HierarchyIndex.assign_xy`.
    """
    import dask_geopandas

    lon = np.asarray(lon, dtype=float)
    lat = np.asarray(lat, dtype=float)
    if lon.shape != lat.shape:
        raise GridmapError(f"lon and lat differ in length: {lon.shape} vs {lat.shape}")
    if len(lon) == 0:
        return index.assign_xy(lon, lat, tolerance=tolerance)
    threads = sum(client.nthreads().values()) or 1
    npartitions = npartitions or max(1, min(2 * threads, len(lon)))
    points = gpd.GeoDataFrame(
        {"lon": lon, "lat": lat}, geometry=gpd.points_from_xy(lon, lat), crs=4326
    )
    frame = dask_geopandas.from_geopandas(points, npartitions=npartitions)
    [shared] = client.scatter([index], broadcast=True)
    meta = pd.DataFrame({c: pd.Series(dtype=object) for c in ASSIGNED_COLUMNS[:-1]})
    meta["distance_m"] = pd.Series(dtype=float)
    result = frame.map_partitions(_assign_partition, shared, tolerance, meta=meta)
    out = client.compute(result).result()
    return out.sort_index().reset_index(drop=True)[list(ASSIGNED_COLUMNS)]


def _assign_partition(
    part: gpd.GeoDataFrame, index: HierarchyIndex, tolerance: float
) -> pd.DataFrame:
    result = index.assign_xy(part["lon"].to_numpy(), part["lat"].to_numpy(), tolerance=tolerance)
    result.index = part.index
    return result
