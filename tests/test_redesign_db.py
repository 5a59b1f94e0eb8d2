"""Redesign plans as generations: stored inactive, lineage complete, activation re-assigns;
the workload window; staff re-checked on the new grids."""

from datetime import date

import pandas as pd
import pytest
from sqlalchemy import text

from app.db import plans, repo
from app.services.assignment import activate_and_reassign
from app.services.redesign import plan_redesign
from gis.vocabulary import LOCAL_TZ
from tests.helpers import run_sql

pytestmark = pytest.mark.db


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


# -- the workload window -------------------------------------------------------------
def _add_two_incidents_today(engine) -> None:
    """Copies of two located incidents reported now, assigned like the originals."""
    run_sql(
        engine,
        "WITH src AS (SELECT id, source, external_id, category, location, location_status "
        "FROM incident WHERE location IS NOT NULL ORDER BY id LIMIT 2), "
        "new AS (INSERT INTO incident (source, external_id, category, reported_at, "
        "location, location_status) SELECT source, external_id || '-today', category, "
        "now(), location, location_status FROM src RETURNING id, source, external_id) "
        "INSERT INTO incident_assignment (generation_id, incident_id, street_code, "
        "community_code, grid_code, micro_grid_code, assign_status) "
        "SELECT a.generation_id, new.id, a.street_code, a.community_code, a.grid_code, "
        "a.micro_grid_code, a.assign_status FROM new JOIN src "
        "ON new.source = src.source AND new.external_id = src.external_id || '-today' "
        "JOIN incident_assignment a ON a.incident_id = src.id",
    )


def _year_up_to_yesterday(engine) -> None:
    """Move the demo's year of incidents so that it ends yesterday."""
    run_sql(
        engine,
        "UPDATE incident SET reported_at = reported_at + "
        "((SELECT now() - max(reported_at) FROM incident) - interval '1 day')",
    )


def test_two_incidents_today_do_not_shift_the_workload_window(loaded):
    # Issue 10: the window ended at the newest incident, so two incidents dated today
    # made it a window of two incidents and the "before" CV jumped from 0.46 to 7.48.
    _year_up_to_yesterday(loaded)
    before = plan_redesign(loaded, 600, dry_run=True)
    _add_two_incidents_today(loaded)
    after = plan_redesign(loaded, 600, dry_run=True)
    assert after.window_incidents == before.window_incidents + 2
    assert before.window_incidents > 2500
    assert after.baseline["cv"] == pytest.approx(before.baseline["cv"], rel=0.01)


def test_a_window_with_too_few_incidents_is_refused_with_the_count(loaded):
    from gis.errors import ValidationError

    _add_two_incidents_today(loaded)  # the demo's incidents are of 2023
    with pytest.raises(ValidationError, match=r"too few incidents: 2 reported"):
        plan_redesign(loaded, 600, dry_run=True)
    # without incidents in the weights the window does not matter
    households = plan_redesign(loaded, 600, dry_run=True, weights={"households": 1.0})
    assert households.window_incidents == 2


def test_a_window_without_incidents_leaves_them_out_of_the_workload(loaded):
    # the demo's incidents are of 2023: none in the 12 months up to today
    result = plan_redesign(loaded, 600, dry_run=True)
    assert result.window_incidents == 0 and result.metrics["k"] == 600


def test_the_window_is_stored_with_the_plan_and_shown(loaded):
    from app.services.redesign import compare_plan

    since, until = date(2023, 1, 1), date(2023, 12, 31)
    result = plan_redesign(loaded, 600, seed=1, since=since, until=until, label="windowed")
    in_grids = _frame(
        loaded, "SELECT count(*) AS n FROM incident_current WHERE grid_code IS NOT NULL"
    )["n"].iloc[0]
    assert result.window_incidents == in_grids > 2500
    with loaded.connect() as conn:
        gen = repo.get_generation(conn, "windowed")
        plan = plans.get_plan(conn, gen.id)
    assert plan.window_start.astimezone(LOCAL_TZ).date() == since
    assert plan.window_end.astimezone(LOCAL_TZ).date() == date(2024, 1, 1)  # end excluded
    assert plan.window_incidents == result.window_incidents
    comparison = compare_plan(loaded, "windowed")
    assert comparison.baseline["window"] == "2023-01-01 – 2023-12-31"
    assert comparison.baseline["window_incidents"] == result.window_incidents


def test_staff_carried_to_new_grids_is_rechecked(loaded, small_demo):
    # Only micro-grid workers left: the old rule counted them as staffing their grid.
    run_sql(loaded, "DELETE FROM staff WHERE role <> 'micro_grid_worker'")
    result = plan_redesign(loaded, 600, seed=1, label="bare")
    with loaded.connect() as conn:
        new_codes = set(repo.area_codes(conn, repo.get_generation(conn, "bare").id, "grid"))
    assert set(result.unstaffed) == new_codes
    with loaded.connect() as conn:
        plan = plans.get_plan(conn, repo.get_generation(conn, "bare").id)
    assert plan.metrics["unstaffed_grids"] == len(new_codes)
    assert plan.baseline["unstaffed_grids"] == len(small_demo.grids)  # every old grid


def test_a_fully_staffed_plan_reports_no_unstaffed_grid(loaded):
    result = plan_redesign(loaded, 600, seed=1, label="staffed")
    assert result.unstaffed == [] and result.metrics["unstaffed_grids"] == 0
