"""The assessment's monthly rollup (migration 0012, ``app.db.stats_rollup``): whatever
changes after a first read — a status, a new import, a redesign, the taxonomy, the roster —
the next read equals a count written directly in SQL here; windows of partial months
combine stored and live counts exactly; concurrent readers agree; and the exact medians
are PostgreSQL's ``percentile_cont`` to the bit.

On the small demo (``loaded``, incidents of 2023) given a history: handled at every
level, closed some hours later, late or on time, one in five still open, most dispatched
to a staff member of the incident's grid.
"""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import text

from app.db.taxonomy import store_version
from app.services.assignment import activate_and_reassign
from app.services.incident_import import import_incidents
from app.services.stats import TOTAL_CODE, stats_report
from gis.figures import sorted_medians
from gis.incidents import FieldMap
from gis.taxonomy import load_taxonomy
from tests.helpers import dispatch_to_grid_staff, run_sql

pytestmark = pytest.mark.db

NOW = datetime(2023, 7, 20, 12, tzinfo=UTC)
#: Whole months (April, May) between partial ones (from 15 March, to 10 June).
PARTIAL = (date(2023, 3, 15), date(2023, 6, 10))
WHOLE = (date(2023, 3, 1), date(2023, 6, 30))
LEVELS = ["street", "community", "grid", "worker"]
FIGURES = ["received", "handled_grid", "handled_community", "handled_street", "overdue"]
FIGURES += ["on_time"]


@pytest.fixture
def history(loaded):
    """Handled at every level, closed some hours later, 1 in 5 still open with deadlines
    around ``NOW``; two in three dispatched to the first staff member of their grid."""
    run_sql(
        loaded,
        "UPDATE incident SET handling_level = (ARRAY['grid', 'grid', 'community', "
        "'street'])[1 + id % 4], status = CASE WHEN id % 5 = 0 THEN 'dispatched' "
        "ELSE 'closed' END, handled_at = CASE WHEN id % 5 = 0 THEN NULL "
        "ELSE reported_at + (id % 300) * interval '1 hour' END, "
        "closed_at = CASE WHEN id % 5 = 0 THEN NULL "
        "ELSE reported_at + (id % 300 + id % 7) * interval '1 hour' + (id % 60) * interval "
        "'1 minute' END, "
        "deadline_at = CASE WHEN id % 5 = 0 "
        "THEN TIMESTAMPTZ '2023-07-20 12:00+00' + (id % 41 - 20) * interval '1 day' "
        "ELSE deadline_at END",
    )
    dispatch_to_grid_staff(loaded)
    return loaded


def direct(
    engine,
    level: str,
    first: date,
    last: date,
    now: datetime = NOW,
    generation: str | None = None,
    area: str | None = None,
) -> pd.DataFrame:
    """The figures per row of [first, last] (local days), by SQL written here: no gridmap
    query code. Sources and classes as ``source:…`` / ``class:…`` columns."""
    key = "r.id::text" if level == "worker" else f"a.{level}_code"
    roster = "LEFT JOIN staff r ON r.id = i.assignee_staff_id AND r.generation_id = g.id"
    chosen = "g.label = :generation" if generation else "g.is_active"
    sql = f"""
        WITH t AS (SELECT * FROM taxonomy_item
                   WHERE version_id = (SELECT max(id) FROM taxonomy_version)),
        x AS (
          SELECT {key} AS k, i.*, t.major_code,
            coalesce(i.deadline_at, i.reported_at + make_interval(hours => t.deadline_hours))
              AS due
          FROM incident i
          JOIN incident_assignment a ON a.incident_id = i.id
          JOIN generation g ON g.id = a.generation_id AND {chosen}
          LEFT JOIN t ON t.code = i.category
          {roster}
          WHERE i.reported_at >= (CAST(:first AS date)::timestamp AT TIME ZONE 'Asia/Shanghai')
            AND i.reported_at < ((CAST(:last AS date) + 1)::timestamp
                                 AT TIME ZONE 'Asia/Shanghai')
            AND (CAST(:area AS text) IS NULL OR a.grid_code LIKE :area || '%')
        )
        SELECT k, count(*) AS received,
          count(*) FILTER (WHERE handling_level = 'grid') AS handled_grid,
          count(*) FILTER (WHERE handling_level = 'community') AS handled_community,
          count(*) FILTER (WHERE handling_level = 'street') AS handled_street,
          count(*) FILTER (WHERE (status IN ('reported', 'registered', 'dispatched')
            AND due < :now) OR handled_at > due) AS overdue,
          count(*) FILTER (WHERE handled_at <= due) AS on_time,
          percentile_cont(0.5) WITHIN GROUP (
            ORDER BY extract(epoch FROM closed_at - reported_at) / 3600) AS median
        FROM x WHERE k IS NOT NULL GROUP BY k
    """
    facets = f"""
        WITH t AS (SELECT * FROM taxonomy_item
                   WHERE version_id = (SELECT max(id) FROM taxonomy_version))
        SELECT {key} AS k, 'source:' || i.source AS facet, count(*) AS n
        FROM incident i JOIN incident_assignment a ON a.incident_id = i.id
        JOIN generation g ON g.id = a.generation_id AND {chosen} {roster}
        WHERE i.reported_at >= (CAST(:first AS date)::timestamp AT TIME ZONE 'Asia/Shanghai')
          AND i.reported_at < ((CAST(:last AS date) + 1)::timestamp AT TIME ZONE 'Asia/Shanghai')
          AND (CAST(:area AS text) IS NULL OR a.grid_code LIKE :area || '%')
          AND {key} IS NOT NULL
        GROUP BY 1, 2
        UNION ALL
        SELECT {key}, 'class:' || coalesce(t.major_code, 'unclassified'), count(*)
        FROM incident i JOIN incident_assignment a ON a.incident_id = i.id
        JOIN generation g ON g.id = a.generation_id AND {chosen} {roster}
        LEFT JOIN t ON t.code = i.category
        WHERE i.reported_at >= (CAST(:first AS date)::timestamp AT TIME ZONE 'Asia/Shanghai')
          AND i.reported_at < ((CAST(:last AS date) + 1)::timestamp AT TIME ZONE 'Asia/Shanghai')
          AND (CAST(:area AS text) IS NULL OR a.grid_code LIKE :area || '%')
          AND {key} IS NOT NULL
        GROUP BY 1, 2
    """
    params = {"first": first, "last": last, "now": now, "area": area, "generation": generation}
    with engine.connect() as conn:
        rows = pd.DataFrame(conn.execute(text(sql), params).mappings().all())
        split = pd.DataFrame(conn.execute(text(facets), params).all(), columns=["k", "f", "n"])
    wide = split.pivot_table(index="k", columns="f", values="n", aggfunc="sum", fill_value=0)
    return rows.set_index("k").join(wide)


def assert_report_equals(report, want: pd.DataFrame) -> None:
    """Every row of ``want`` in the report with the same figures; other rows all zero."""
    assert len(want) > 0
    table = report.table.set_index("code").drop(index=TOTAL_CODE)
    got = table.loc[want.index]
    for column in FIGURES:
        assert got[column].astype(int).tolist() == want[column].astype(int).tolist(), column
    medians = want["median"].astype(float).round(1)
    assert got["median_close_hours"].astype(float).tolist() == pytest.approx(
        medians.tolist(), abs=0, nan_ok=True
    )
    facets = [c for c in want.columns if c.startswith(("source:", "class:"))]
    assert facets and set(facets) <= set(table.columns)
    for column in facets:
        assert got[column].astype(int).tolist() == want[column].astype(int).tolist(), column
    assert (table.drop(index=want.index)["received"] == 0).all()


def stored_months(engine) -> dict[str, int]:
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT to_char(month, 'YYYY-MM'), generation_id FROM assessment_month "
                "ORDER BY month"
            )
        ).all()
    return {m: g for m, g in rows}


def report(engine, level: str, window=WHOLE, **kwargs):
    return stats_report(engine, level, start=window[0], end=window[1], now=NOW, **kwargs)


@pytest.mark.parametrize("level", LEVELS)
def test_a_window_of_partial_months_equals_the_direct_count(history, level):
    report(history, level)  # the whole months March–June now stored
    assert {"2023-03", "2023-04", "2023-05", "2023-06"} <= set(stored_months(history))
    got = report(history, level, PARTIAL)
    assert_report_equals(got, direct(history, level, *PARTIAL))
    # the edges were counted live: the totals are neither the whole months' nor April–May's
    whole = report(history, level).table.iloc[-1]["received"]
    assert 0 < got.table.iloc[-1]["received"] < whole


def test_a_scoped_report_equals_the_direct_count(history):
    with history.connect() as conn:
        street = conn.execute(text("SELECT min(code) FROM area WHERE level = 'street'")).scalar()
    report(history, "grid")
    for level in ("grid", "worker"):
        got = report(history, level, PARTIAL, area=street)
        assert_report_equals(got, direct(history, level, *PARTIAL, area=street))


def test_overdue_follows_the_moment_asked_with_months_stored(history):
    """Open incidents become overdue when their deadline passes: the stored months keep the
    deadlines, not a count of one moment."""
    counts = []
    for now in (NOW - timedelta(days=15), NOW, NOW + timedelta(days=15)):
        got = stats_report(history, "street", start=WHOLE[0], end=WHOLE[1], now=now)
        assert_report_equals(got, direct(history, "street", *WHOLE, now=now))
        counts.append(int(got.table.iloc[-1]["overdue"]))
    assert counts[0] < counts[1] < counts[2]


def test_a_status_transition_after_a_read_is_counted_on_the_next(history):
    before = report(history, "community")
    run_sql(
        history,
        "UPDATE incident SET status = 'closed', handled_at = deadline_at + interval '2 days', "
        "closed_at = deadline_at + interval '3 days', handling_level = 'street' "
        "WHERE status = 'dispatched' AND reported_at >= '2023-04-01' "
        "AND reported_at < '2023-05-01' AND id % 2 = 0",
    )
    with history.connect() as conn:
        marks = conn.execute(text("SELECT month FROM assessment_stale")).scalars().all()
    assert date(2023, 4, 1) in marks
    after = report(history, "community")
    assert_report_equals(after, direct(history, "community", *WHOLE))
    assert after.table.iloc[-1]["handled_street"] > before.table.iloc[-1]["handled_street"]
    with history.connect() as conn:  # the read consumed the marks
        assert conn.execute(text("SELECT count(*) FROM assessment_stale")).scalar() == 0


def test_a_change_to_an_uncounted_column_marks_nothing(history):
    report(history, "street")
    run_sql(history, "UPDATE incident SET description = 'checked' WHERE id % 10 = 1")
    with history.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM assessment_stale")).scalar() == 0


def test_the_stored_months_are_what_a_read_uses(history):
    """A change the triggers did not see stays out of the figures until a mark names its
    month: the whole months are read from the rollup, not counted again."""
    before = report(history, "street").table.iloc[-1]["received"]
    with history.begin() as conn:
        conn.execute(text("ALTER TABLE incident DISABLE TRIGGER assessment_updated"))
        conn.execute(
            text(
                "UPDATE incident SET reported_at = reported_at - interval '2 years' "
                "WHERE reported_at >= '2023-05-01' AND reported_at < '2023-05-08'"
            )
        )
        conn.execute(text("ALTER TABLE incident ENABLE TRIGGER assessment_updated"))
    assert report(history, "street").table.iloc[-1]["received"] == before
    run_sql(history, "INSERT INTO assessment_stale (month) VALUES ('2023-05-01')")
    after = report(history, "street")
    assert after.table.iloc[-1]["received"] < before
    assert_report_equals(after, direct(history, "street", *WHOLE))


def test_a_new_import_after_a_read_is_counted(history, small_demo):
    from app.services.demo import _incident_text

    report(history, "grid")
    rows = _incident_text(small_demo.incidents.head(40))
    rows["external_id"] = "new-" + rows["external_id"]
    rows["reported_at"] = "2023-05-20T09:30:00+08:00"
    imported = import_incidents(
        history, rows, label="rollup test", fields=FieldMap(id="external_id")
    )
    assert imported.stored > 0
    after = report(history, "grid")
    assert_report_equals(after, direct(history, "grid", *WHOLE))
    assert after.table.iloc[-1]["received"] == direct(history, "grid", *WHOLE)["received"].sum()


def test_a_redesign_is_counted_from_its_own_assignments(history):
    """A new generation without one grid (its incidents fall outside): its report counts its
    own assignments; the old generation's report stays as it was."""
    old = report(history, "grid")
    with history.begin() as conn:
        g1, dropped = conn.execute(
            text(
                "SELECT g.id, min(a.grid_code) FROM generation g JOIN incident_assignment a "
                "ON a.generation_id = g.id WHERE g.is_active GROUP BY g.id"
            )
        ).one()
        g2 = conn.execute(
            text("INSERT INTO generation (label) VALUES ('redesigned') RETURNING id")
        ).scalar()
        conn.execute(
            text(
                "UPDATE area SET generation_high = :g2 WHERE generation_high = :g1 "
                "AND NOT starts_with(code, :dropped)"
            ),
            {"g1": g1, "g2": g2, "dropped": dropped},
        )
    activate_and_reassign(history, "redesigned")
    new = report(history, "grid")
    assert new.generation == "redesigned"
    assert_report_equals(new, direct(history, "grid", *WHOLE))
    assert dropped not in set(new.table["code"])
    assert new.table.iloc[-1]["received"] < old.table.iloc[-1]["received"]
    again = report(history, "grid", generation=old.generation)
    pd.testing.assert_frame_equal(again.table, old.table)
    assert {g for g in stored_months(history).values()} == {g1, g2}


def test_a_taxonomy_import_after_a_read_changes_the_classes(history):
    """A taxonomy without one major class: its incidents are unclassified from then on."""
    before = report(history, "street")
    taxonomy = load_taxonomy()
    dropped = sorted(taxonomy["major_code"].unique())[0]
    with history.begin() as conn:
        store_version(conn, taxonomy[taxonomy["major_code"] != dropped], "test: one class less")
    after = report(history, "street")
    assert f"class:{dropped}" in before.table.columns
    assert f"class:{dropped}" not in after.table.columns
    unclassified = "class:unclassified"
    assert (
        after.table[unclassified].iloc[-1] > before.table.get(unclassified, pd.Series([0])).iloc[-1]
    )
    assert_report_equals(after, direct(history, "street", *WHOLE))


def test_a_roster_change_after_a_read_is_counted(history):
    report(history, "worker")
    with history.begin() as conn:  # the staff member with most incidents leaves the roster
        gone = conn.execute(
            text(
                "SELECT assignee_staff_id FROM incident WHERE assignee_staff_id IS NOT NULL "
                "GROUP BY 1 ORDER BY count(*) DESC LIMIT 1"
            )
        ).scalar()
        conn.execute(text("DELETE FROM staff WHERE id = :id"), {"id": gone})
    after = report(history, "worker")
    assert str(gone) not in set(after.table["code"])
    assert_report_equals(after, direct(history, "worker", *WHOLE))


def test_two_concurrent_reads_after_a_change_agree(history):
    report(history, "grid")
    run_sql(
        history,
        "UPDATE incident SET handling_level = 'community' WHERE handling_level = 'grid' "
        "AND id % 7 = 0",
    )
    start = threading.Barrier(2)
    results: list = [None, None]

    def read(k: int) -> None:
        start.wait()
        results[k] = report(history, "grid")

    threads = [threading.Thread(target=read, args=(k,)) for k in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    pd.testing.assert_frame_equal(results[0].table, results[1].table)
    assert_report_equals(results[0], direct(history, "grid", *WHOLE))


def test_writes_mark_what_they_change(history):
    report(history, "street")

    def marks(conn) -> set:
        return set(
            conn.execute(text("SELECT generation_id, month, grid_code FROM assessment_stale"))
        )

    with history.begin() as conn:
        gen = conn.execute(text("SELECT id FROM generation WHERE is_active")).scalar()
        conn.execute(
            text(
                "UPDATE incident_assignment SET grid_code = grid_code WHERE incident_id = "
                "(SELECT min(id) FROM incident)"
            )
        )
        assert marks(conn) == set()
        # a deleted incident: the grid it was assigned to, in its month
        gone = conn.execute(
            text(
                "SELECT min(id) FROM incident "
                "WHERE reported_at >= '2023-02-01' AND reported_at < '2023-03-01'"
            )
        ).scalar()
        grid = grid_of(conn, gen, gone)
        conn.execute(text("DELETE FROM incident WHERE id = :id"), {"id": gone})
        assert marks(conn) == {(gen, date(2023, 2, 1), grid)}
        # an assignment moved out of every grid: its old grid and "no grid"
        moved = conn.execute(
            text(
                "SELECT min(id) FROM incident "
                "WHERE reported_at >= '2023-08-01' AND reported_at < '2023-09-01'"
            )
        ).scalar()
        before = grid_of(conn, gen, moved)
        conn.execute(
            text(
                "UPDATE incident_assignment SET grid_code = NULL, assign_status = 'outside' "
                "WHERE incident_id = :id"
            ),
            {"id": moved},
        )
        assert {(gen, date(2023, 8, 1), before), (gen, date(2023, 8, 1), "")} <= marks(conn)
        savepoint = conn.begin_nested()
        conn.execute(text("TRUNCATE incident, incident_assignment CASCADE"))
        assert (None, None, None) in marks(conn)
        savepoint.rollback()
    assert_report_equals(report(history, "street"), direct(history, "street", *WHOLE))


def grid_of(conn, generation: int, incident: int) -> str:
    return conn.execute(
        text(
            "SELECT coalesce(grid_code, '') FROM incident_assignment "
            "WHERE generation_id = :g AND incident_id = :i"
        ),
        {"g": generation, "i": incident},
    ).scalar_one()


def test_a_small_change_is_counted_again_for_its_grid_alone(history):
    from app.db.stats import TaxonomyTerms, refresh_rollup
    from app.services.taxonomy import current_taxonomy

    report(history, "grid")
    may = date(2023, 5, 1)
    run_sql(
        history,
        "UPDATE incident SET handling_level = 'street', status = 'closed', "
        "handled_at = reported_at + interval '1 hour', closed_at = reported_at + interval "
        "'90 minutes' WHERE id = (SELECT min(id) FROM incident WHERE status = 'dispatched' "
        "AND reported_at >= '2023-05-01' AND reported_at < '2023-06-01')",
    )
    with history.begin() as conn:
        gen = conn.execute(text("SELECT id FROM generation WHERE is_active")).scalar()
        marked = conn.execute(text("SELECT month, grid_code FROM assessment_stale")).all()
        assert len(marked) == 1 and marked[0][0] == may and marked[0][1]
        _, taxonomy = current_taxonomy(conn)
        terms = TaxonomyTerms(
            list(taxonomy["code"]), list(taxonomy["deadline_hours"]), list(taxonomy["major_code"])
        )
        assert refresh_rollup(conn, gen, [may], terms) == {may: "patched"}
    assert_report_equals(report(history, "grid"), direct(history, "grid", *WHOLE))


def test_a_cut_month_without_incidents_outside_the_window_is_read_stored(history):
    """A period ending on the 20th of a month nothing was reported in after the 20th (the
    month under way) reads the month from the rollup; an incident reported later that
    month makes it a live count again. Both equal the direct count."""
    run_sql(
        history,
        "UPDATE incident SET reported_at = reported_at - interval '1 year' "
        "WHERE reported_at >= '2023-06-20T16:00:00Z' AND reported_at < '2023-07-01T00:00:00+08'",
    )
    window = (date(2023, 4, 1), date(2023, 6, 20))
    report(history, "grid", window)
    assert "2023-06" in stored_months(history)  # June was counted and kept
    assert_report_equals(report(history, "grid", window), direct(history, "grid", *window))
    run_sql(
        history,
        "UPDATE incident SET reported_at = TIMESTAMPTZ '2023-06-25 10:00+08' "
        "WHERE id = (SELECT min(id) FROM incident WHERE reported_at >= '2023-06-01T00:00+08' "
        "AND reported_at < '2023-06-20T00:00+08')",
    )
    assert_report_equals(report(history, "grid", window), direct(history, "grid", *window))


def test_a_large_assignment_statement_marks_an_id_range(history):
    """Beyond 10,000 assignments a statement marks its incident id range per generation
    (migration 0012); the next recount finds those months and counts them again."""
    with history.begin() as conn:
        g1 = conn.execute(text("SELECT id FROM generation WHERE is_active")).scalar()
        copies = [
            conn.execute(
                text("INSERT INTO generation (label) VALUES (:l) RETURNING id"), {"l": f"copy{k}"}
            ).scalar()
            for k in range(4)
        ]
        conn.execute(
            text("UPDATE area SET generation_high = :last WHERE generation_high = :g1"),
            {"last": max(copies), "g1": g1},
        )
        conn.execute(  # 4 x 3,000 assignments in one statement
            text(
                "INSERT INTO incident_assignment (generation_id, incident_id, street_code, "
                "community_code, grid_code, micro_grid_code, assign_status, distance_m) "
                "SELECT c.id, a.incident_id, a.street_code, a.community_code, a.grid_code, "
                "a.micro_grid_code, a.assign_status, a.distance_m FROM incident_assignment a "
                "CROSS JOIN unnest(CAST(:copies AS int[])) AS c(id) WHERE a.generation_id = :g1"
            ),
            {"copies": copies, "g1": g1},
        )
        ranges = conn.execute(
            text("SELECT generation_id FROM assessment_stale WHERE first_id IS NOT NULL")
        ).scalars()
        assert sorted(ranges) == copies
    assert_report_equals(report(history, "grid", generation="copy1"), direct_of(history, "copy1"))
    with history.begin() as conn:  # one grid's incidents move to another, in every copy
        a, b = conn.execute(
            text(
                "SELECT min(grid_code), max(grid_code) FROM incident_assignment "
                "WHERE generation_id = :g1"
            ),
            {"g1": g1},
        ).one()
        conn.execute(
            text(
                "UPDATE incident_assignment SET grid_code = CASE WHEN grid_code = :a THEN :b "
                "ELSE grid_code END WHERE generation_id = ANY(CAST(:copies AS int[]))"
            ),
            {"a": a, "b": b, "copies": copies},
        )
    moved = report(history, "grid", generation="copy1")
    assert a not in set(moved.table.loc[moved.table["received"] > 0, "code"])
    assert_report_equals(moved, direct_of(history, "copy1"))


def direct_of(engine, generation: str) -> pd.DataFrame:
    return direct(engine, "grid", *WHOLE, generation=generation)


def test_medians_are_percentile_cont_to_the_bit(pg_engine):
    """Ties, even and odd counts, negative hours, a group of one value and one of none;
    values whose two middle ones average differently as (lo + hi) / 2 and as PostgreSQL's
    lerp."""
    rng = np.random.default_rng(7)
    groups = rng.integers(0, 396, 20_000)
    scale = 10.0 ** rng.integers(0, 6, 20_000)  # 0 to 5 decimals: many ties
    values = np.round((rng.gamma(2.0, 20.0, 20_000) - 3) * scale) / scale
    values[::97] = 0.1 * np.arange(len(values[::97]))
    # two-value groups whose average, (lo + hi) / 2, is not PostgreSQL's lo + 0.5 * (hi - lo)
    pairs = np.array([(31.2, 94.9), (16.1, 97.0), (11.59, 51.61), (6.23, 45.93)])
    assert ((pairs[:, 0] + pairs[:, 1]) / 2 != pairs[:, 0] + 0.5 * np.diff(pairs)[:, 0]).all()
    groups = np.concatenate([groups, np.repeat(np.arange(396, 400), 2), [400]])
    values = np.concatenate([values, pairs.ravel(), [7.25]])  # and a group of one
    with pg_engine.connect() as conn:
        want = dict(
            conn.execute(
                text(
                    "SELECT g, percentile_cont(0.5) WITHIN GROUP (ORDER BY v) "
                    "FROM unnest(CAST(:g AS int[]), CAST(:v AS float8[])) AS t(g, v) GROUP BY g"
                ),
                {"g": groups.tolist(), "v": values.tolist()},
            ).all()
        )
    order = np.argsort(values, kind="stable")
    got = sorted_medians(groups[order], values[order], 402)
    assert sorted(want) == list(range(401))
    assert [got[g] for g in range(401)] == [want[g] for g in range(401)]  # to the bit
    assert np.isnan(got[401])  # a group without values has no median


def test_migration_0013_downgrades_to_whole_month_marks_and_upgrades(history):
    """Down to 0012 a grid's mark becomes its month's (the old reader knows no grid) and the
    old triggers mark months; back at head the figures still equal the direct count."""
    from alembic import command

    from app.db.session import alembic_config, upgrade
    from tests.helpers import engine_url

    report(history, "grid")
    one_dispatched = (
        "UPDATE incident SET status = 'closed', handling_level = 'grid', handled_at = "
        "reported_at + interval '1 hour', closed_at = reported_at + interval '2 hours' "
        "WHERE id = (SELECT min(id) FROM incident WHERE status = 'dispatched' "
        "AND reported_at >= '{0}' AND reported_at < '{0}'::date + interval '1 month')"
    )
    run_sql(history, one_dispatched.format("2023-05-01"))
    url = engine_url(history)
    command.downgrade(alembic_config(url), "0012")
    try:
        columns = (
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_name = 'assessment_stale'"
        )
        with history.connect() as conn:
            names = set(conn.execute(text(columns)).scalars())
            assert "grid_code" not in names
            assert conn.execute(text("SELECT month FROM assessment_stale")).scalars().all() == [
                date(2023, 5, 1)
            ]
        run_sql(history, one_dispatched.format("2023-04-01"))
        with history.connect() as conn:
            months = set(conn.execute(text("SELECT month FROM assessment_stale")).scalars())
        assert months == {date(2023, 4, 1), date(2023, 5, 1)}
    finally:
        upgrade(url)
    assert_report_equals(report(history, "grid"), direct(history, "grid", *WHOLE))
