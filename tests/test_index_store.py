"""The lookup index kept on disk: read back when the areas are unchanged, rebuilt when not."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

import app.services.index_store as index_store
from app.db import repo
from app.services.index_store import IndexStore, build_hierarchy
from gis.assign import GridIndex


def _points(index, n: int = 20_000, seed: int = 7):
    minx, miny, maxx, maxy = index.bounds
    rng = np.random.default_rng(seed)
    return rng.uniform(minx, maxx, n), rng.uniform(miny, maxy, n)


def _same_answers(a, b) -> None:
    lon, lat = _points(a)
    left, right = a.assign_xy(lon, lat, tolerance=50.0), b.assign_xy(lon, lat, tolerance=50.0)
    assert left.equals(right)


def test_a_stored_index_is_read_back_not_rebuilt(loaded, tmp_path, monkeypatch):
    store = IndexStore(tmp_path)
    with loaded.connect() as conn:
        gen = repo.active_generation(conn)
        built = store.hierarchy(conn, gen.id)
        assert [p.name for p in tmp_path.glob("*.pkl")] == [store.path(conn, gen.id).name]

        def no_build(*args):
            raise AssertionError("built again although the areas did not change")

        monkeypatch.setattr(index_store, "build_hierarchy", no_build)
        read = store.hierarchy(conn, gen.id)
    assert read is not built
    _same_answers(built, read)


def test_a_changed_area_gives_a_new_index(loaded, tmp_path):
    store = IndexStore(tmp_path)
    with loaded.begin() as conn:
        gen = repo.active_generation(conn)
        before = store.path(conn, gen.id)
        old = store.hierarchy(conn, gen.id)
        code = old.indexes["micro_grid"].codes[0]
        # Moved in place: the same id and count, another row version.
        conn.exec_driver_sql(
            "UPDATE area SET geom = ST_Translate(geom, 0.01, 0) WHERE code = %(code)s",
            {"code": code},
        )
        after = store.path(conn, gen.id)
        new = store.hierarchy(conn, gen.id)
        fresh = build_hierarchy(conn, gen.id)
    assert after != before
    assert sorted(p.name for p in tmp_path.glob("*.pkl")) == sorted([before.name, after.name])
    _same_answers(new, fresh)
    lon, lat = _points(old, 200_000)
    moved = old.assign_xy(lon, lat)["micro_grid_code"] != new.assign_xy(lon, lat)["micro_grid_code"]
    assert moved.any()


def test_an_unreadable_file_is_rebuilt(loaded, tmp_path):
    store = IndexStore(tmp_path)
    with loaded.connect() as conn:
        gen = repo.active_generation(conn)
        path = store.path(conn, gen.id)
        path.write_bytes(b"not a pickle")
        index = store.hierarchy(conn, gen.id)
        _same_answers(index, build_hierarchy(conn, gen.id))
    assert pickle.loads(path.read_bytes()).bounds == index.bounds


def test_another_database_never_shares_a_file(loaded, demo_engine, tmp_path):
    store = IndexStore(tmp_path)
    with loaded.connect() as one, demo_engine.connect() as other:
        gen_one, gen_other = repo.active_generation(one), repo.active_generation(other)
        assert store.path(one, gen_one.id).name != store.path(other, gen_other.id).name
        # The database part of the name differs, whatever the generations.
        assert (
            store.path(one, gen_one.id).name.split("-")[0]
            != store.path(other, gen_other.id).name.split("-")[0]
        )


def test_old_files_are_pruned(loaded, tmp_path):
    with loaded.connect() as conn:
        gen = repo.active_generation(conn)
        path = IndexStore(tmp_path).path(conn, gen.id)
        database = path.name.split("-")[0]
        older = tmp_path / f"{database}-{gen.id}-older.pkl"
        other = tmp_path / "another-1-version.pkl"
        for stale in (older, other):
            stale.write_bytes(b"x")
        IndexStore(tmp_path, keep_per_database=1).hierarchy(conn, gen.id)
        # The database's older version goes; another database's file stays.
        assert sorted(p.name for p in tmp_path.glob("*.pkl")) == sorted([path.name, other.name])
        path.unlink()
        IndexStore(tmp_path, keep=1).hierarchy(conn, gen.id)
        assert [p.name for p in tmp_path.glob("*.pkl")] == [path.name]


@pytest.mark.parametrize("level", ["grid", "micro_grid"])
def test_a_pickled_grid_index_keeps_its_cells_and_answers(small_demo, level):
    frame = small_demo.grids if level == "grid" else small_demo.micro_grids
    index = GridIndex(frame, code="code")
    copy = pickle.loads(pickle.dumps(index))
    for name in ("labels", "pointers", "ranks"):
        assert np.array_equal(getattr(index._cells, name), getattr(copy._cells, name))
    minx, miny, maxx, maxy = frame.total_bounds
    rng = np.random.default_rng(3)
    lon, lat = rng.uniform(minx, maxx, 50_000), rng.uniform(miny, maxy, 50_000)
    assert index.assign_xy(lon, lat, tolerance=20.0).equals(copy.assign_xy(lon, lat, 20.0))
