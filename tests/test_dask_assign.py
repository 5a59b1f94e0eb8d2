"""The Dask engine gives the same answer as the local one (real LocalCluster, worker processes)."""

import numpy as np
import pandas as pd
import pytest

from gis.assign import HierarchyIndex
from gis.assign.distributed import assign_dask, dask_client
from gis.errors import GridmapError


@pytest.fixture(scope="module")
def client():
    with dask_client(n_workers=2) as c:
        yield c


def test_dask_matches_local_engine_on_the_demo(demo, client):
    areas = pd.concat([demo.streets, demo.communities, demo.grids, demo.micro_grids])
    index = HierarchyIndex(areas)
    rng = np.random.default_rng(7)
    minx, miny, maxx, maxy = demo.district.total_bounds
    lon = rng.uniform(minx - 0.005, maxx + 0.005, 20_000)
    lat = rng.uniform(miny - 0.005, maxy + 0.005, 20_000)
    local = index.assign_xy(lon, lat, tolerance=30)
    distributed = assign_dask(lon, lat, index, client, tolerance=30, npartitions=7)
    assert len(client.scheduler_info()["workers"]) == 2
    pd.testing.assert_frame_equal(distributed, local)
    assert set(local["assign_status"]) >= {"inside", "outside", "snapped"}


def test_empty_input_and_mismatched_lengths(demo, client):
    index = HierarchyIndex(demo.grids)
    assert len(assign_dask(np.array([]), np.array([]), index, client)) == 0
    with pytest.raises(GridmapError, match="differ in length"):
        assign_dask(np.array([1.0]), np.array([1.0, 2.0]), index, client)
