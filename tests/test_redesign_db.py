"""Redesign plans as generations: stored inactive, lineage complete, activation re-assigns."""

import pandas as pd
import pytest
from sqlalchemy import text

from app.db import repo
from app.services.assignment import activate_and_reassign
from app.services.demo import load_demo
from app.services.redesign import plan_redesign
from gis.demo import build_demo

pytestmark = pytest.mark.db


@pytest.fixture(scope="module")
def small_demo():
    return build_demo(n_incidents=3000)


@pytest.fixture
def loaded(clean_db, small_demo):
    load_demo(clean_db, small_demo)
    return clean_db


def _frame(engine, sql, **params):
    with engine.connect() as conn:
        return pd.DataFrame(conn.execute(text(sql), params).mappings().all())


def test_dry_run_stores_nothing(loaded):
    result = plan_redesign(loaded, 600, mode="merge", dry_run=True)
    assert result.generation is None and result.metrics["k"] == 600
    with loaded.connect() as conn:
        assert len(repo.list_generations(conn)) == 1


@pytest.mark.parametrize("mode", ["merge", "reshape"])
def test_plan_is_an_inactive_generation_with_complete_lineage(loaded, small_demo, mode):
    result = plan_redesign(loaded, 539, mode=mode, seed=1)
    with loaded.connect() as conn:
        gen = repo.get_generation(conn, result.generation)
        active = repo.active_generation(conn)
        counts = repo.counts_by_level(conn, gen.id)
        new_grids = repo.areas_frame(conn, gen.id, "grid")
    assert not gen.is_active and active.label == "demo"
    assert counts == {
        "district": 1,
        "street": 8,
        "community": 89,
        "grid": 539,
        "micro_grid": len(small_demo.micro_grids),
    }
    # Codes numbered inside each community, every grid nested in its community.
    assert new_grids["code"].str[:12].eq(new_grids["parent_code"]).all()
    lineage = _frame(
        loaded,
        "SELECT old_code, new_code, area_share FROM lineage WHERE to_generation = :g",
        g=gen.id,
    )
    shares = lineage.groupby("old_code")["area_share"].sum()
    assert set(shares.index) == set(small_demo.grids["code"])  # every old grid accounted
    assert shares.between(0.999, 1.001).all()
    assert set(lineage["new_code"]) == set(new_grids["code"])
    staff = _frame(loaded, "SELECT count(*) AS n FROM staff WHERE generation_id = :g", g=gen.id)[
        "n"
    ].iloc[0]
    assert staff == len(small_demo.staff)  # everyone follows their grid


def test_activation_reassigns_and_keeps_history(loaded):
    result = plan_redesign(loaded, 539, mode="merge", seed=1)
    before = _frame(
        loaded,
        "SELECT incident_id, grid_code FROM incident_assignment a "
        "JOIN generation g ON g.id = a.generation_id WHERE g.label = 'demo' "
        "ORDER BY incident_id",
    )
    activate_and_reassign(loaded, result.generation)
    after = _frame(
        loaded,
        "SELECT id AS incident_id, grid_code FROM incident_current "
        "WHERE location IS NOT NULL ORDER BY id",
    )
    history = _frame(
        loaded,
        "SELECT incident_id, grid_code FROM incident_assignment a "
        "JOIN generation g ON g.id = a.generation_id "
        "WHERE g.label = 'demo' ORDER BY incident_id",
    )
    pd.testing.assert_frame_equal(history, before)  # the old assignments are untouched
    assert len(after) == len(before)
    # Merge mode: each new grid's incidents are exactly those of the old grids merged into it.
    lineage = _frame(
        loaded,
        "SELECT old_code, new_code FROM lineage l JOIN generation g "
        "ON g.id = l.to_generation WHERE g.label = :label",
        label=result.generation,
    )
    new_of_old = dict(zip(lineage["old_code"], lineage["new_code"], strict=True))
    expected = before["grid_code"].map(new_of_old).value_counts().sort_index()
    actual = after["grid_code"].value_counts().sort_index()
    pd.testing.assert_series_equal(actual, expected, check_names=False)
