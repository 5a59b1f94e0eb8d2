"""The queue's counts per status, kept by triggers (migration 0014, ``app.db.kept_counts``):
whatever changes — a transition, a deletion, an assignment moved, a bulk update, a large
assignment statement, a generation dropped, concurrent writers — the kept counts equal the
incidents counted, for every scope and overdue filter.

On the small demo (``loaded``: 3,000 incidents of 2023 with their history).
"""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import text

from app.db import kept_counts
from app.db.queries import (
    IncidentFilter,
    _counted_status_counts,
    _kept_status_counts,
    incident_status_counts,
)
from app.services.console import refresh_queue_counts
from tests.helpers import run_sql

pytestmark = pytest.mark.db

STREET, COMMUNITY, GRID = "411002003", "411002003001", "411002003001003"
SCOPES = (None, "411002", STREET, COMMUNITY, GRID)


def refreshed(engine) -> None:
    with engine.begin() as conn:
        refresh_queue_counts(conn)


def assert_kept_equal_counted(engine, generation_id: int | None = None) -> None:
    """Every scope and overdue filter: the kept counts (refreshed first) equal a count."""
    refreshed(engine)
    with engine.connect() as conn:
        for prefix in SCOPES:
            for overdue in (None, True, False):
                f = IncidentFilter(generation_id=generation_id, area_prefix=prefix, overdue=overdue)
                kept = incident_status_counts(conn, f)
                assert kept == _counted_status_counts(conn, f), (prefix, overdue)
        totals = incident_status_counts(conn, IncidentFilter())
        stored = conn.execute(text("SELECT count(*) FROM incident")).scalar()
        assert sum(v for k, v in totals.items() if k != "overdue") == stored


def kept_is_used(engine) -> bool:
    """Whether the totals are read from the kept rows (no mark asks for a count)."""
    with engine.connect() as conn:
        return _kept_status_counts(conn, IncidentFilter()) is not None


def delta_rows(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(text("SELECT count(*) FROM incident_count WHERE delta")).scalar()


def test_the_kept_counts_equal_the_count_after_a_load(loaded):
    assert_kept_equal_counted(loaded)
    assert kept_is_used(loaded)
    with loaded.connect() as conn:
        street = incident_status_counts(conn, IncidentFilter(area_prefix=STREET))
    assert 0 < sum(v for k, v in street.items() if k != "overdue") < 3000


def test_transitions_deletions_and_moves_are_counted(loaded):
    assert_kept_equal_counted(loaded)
    run_sql(
        loaded,
        "UPDATE incident SET status = 'registered' WHERE id IN "
        "(SELECT id FROM incident WHERE status = 'reported' ORDER BY id LIMIT 5)",
    )
    run_sql(loaded, "UPDATE incident SET status = 'closed' WHERE id % 97 = 0")
    run_sql(loaded, "UPDATE incident SET description = 'seen' WHERE id % 5 = 0")  # no status
    run_sql(loaded, "DELETE FROM incident WHERE id % 89 = 0")
    run_sql(
        loaded,
        f"UPDATE incident_assignment SET grid_code = '{GRID}', community_code = '{COMMUNITY}', "
        f"street_code = '{STREET}' WHERE incident_id % 13 = 0",
    )
    run_sql(
        loaded,
        "UPDATE incident_assignment SET street_code = NULL, community_code = NULL, "
        "grid_code = NULL, micro_grid_code = NULL, assign_status = 'outside' "
        "WHERE incident_id % 31 = 0",
    )
    assert kept_is_used(loaded)
    assert_kept_equal_counted(loaded)


def test_a_large_statement_marks_and_the_next_read_counts_again(loaded, monkeypatch):
    """More than 10,000 rows in one statement: marked, counted again on the next read; a
    read between the statement and the refresh counts live rather than answer stale."""
    assert_kept_equal_counted(loaded)
    with loaded.begin() as conn:
        conn.execute(
            text("INSERT INTO generation (label) SELECT 'copy-' || n FROM generate_series(1, 4) n")
        )
        conn.execute(
            text(
                "INSERT INTO incident_assignment (generation_id, incident_id, street_code, "
                "community_code, grid_code, micro_grid_code, assign_status, distance_m) "
                "SELECT c.id, a.incident_id, a.street_code, a.community_code, a.grid_code, "
                "a.micro_grid_code, a.assign_status, a.distance_m FROM incident_assignment a "
                "JOIN generation g ON g.id = a.generation_id AND g.is_active "
                "CROSS JOIN generation c WHERE c.label LIKE 'copy-%'"
            )
        )
        copy = conn.execute(text("SELECT min(id) FROM generation WHERE label LIKE 'copy-%'"))
        copy_id = copy.scalar()
    with loaded.connect() as conn:
        marked = conn.execute(
            text("SELECT count(*) FROM incident_count WHERE status IS NULL AND generation_id = :g"),
            {"g": copy_id},
        ).scalar()
    assert marked == 1
    assert_kept_equal_counted(loaded, copy_id)
    # a bulk update of the incidents marks every generation; the totals move by deltas
    run_sql(
        loaded,
        "INSERT INTO incident (source, external_id, location_status) "
        "SELECT 'patrol', 'bulk-' || n, 'unlocated' FROM generate_series(1, 10500) n",
    )
    run_sql(loaded, "UPDATE incident SET status = 'verified' WHERE status <> 'reported'")
    run_sql(loaded, "UPDATE incident SET status = 'registered' WHERE status = 'reported'")
    with loaded.connect() as conn:
        f = IncidentFilter(area_prefix=STREET)
        assert _kept_status_counts(conn, f) is None  # marked: the page counts live
        assert incident_status_counts(conn, f) == _counted_status_counts(conn, f)
    assert_kept_equal_counted(loaded)
    assert_kept_equal_counted(loaded, copy_id)
    run_sql(loaded, "DELETE FROM generation WHERE label LIKE 'copy-%'")  # assignments go too
    run_sql(loaded, "UPDATE incident SET status = 'closed' WHERE id % 11 = 0")
    monkeypatch.setattr(kept_counts, "FOLD_AFTER", 0)  # folding the totals drops the rest
    refreshed(loaded)
    with loaded.connect() as conn:
        left = conn.execute(
            text(
                "SELECT count(*) FROM incident_count c WHERE NOT EXISTS "
                "(SELECT 1 FROM generation g WHERE g.id = c.generation_id) "
                "AND c.generation_id IS NOT NULL"
            )
        ).scalar()
    assert left == 0
    assert_kept_equal_counted(loaded)


def test_deltas_are_folded_into_one_row_per_grid_and_status(loaded, monkeypatch):
    assert_kept_equal_counted(loaded)
    for n in range(12):
        run_sql(
            loaded,
            f"UPDATE incident SET status = CASE WHEN status = 'closed' THEN 'verified' "
            f"ELSE 'closed' END WHERE id % 50 = {n}",
        )
    assert delta_rows(loaded) > 24
    monkeypatch.setattr(kept_counts, "FOLD_AFTER", 10)
    assert_kept_equal_counted(loaded)
    assert delta_rows(loaded) == 0
    with loaded.connect() as conn:
        keys = conn.execute(
            text(
                "SELECT count(*), count(DISTINCT (generation_id, grid_code, status)) "
                "FROM incident_count"
            )
        ).one()
    assert keys[0] == keys[1]


def test_a_truncate_is_counted_again(loaded):
    assert_kept_equal_counted(loaded)
    run_sql(loaded, "TRUNCATE incident CASCADE")
    assert not kept_is_used(loaded)
    assert_kept_equal_counted(loaded)
    refreshed(loaded)
    with loaded.connect() as conn:
        assert conn.execute(text("SELECT coalesce(sum(n), 0) FROM incident_count")).scalar() == 0


def test_concurrent_writers_and_readers_keep_the_counts_exact(loaded, monkeypatch):
    """Eight writers move incidents of one grid between statuses, one statement each at a
    time, while readers refresh (folding after every few rows) and read."""
    monkeypatch.setattr(kept_counts, "FOLD_AFTER", 8)
    assert_kept_equal_counted(loaded)
    with loaded.connect() as conn:
        ids = list(
            conn.execute(
                text(
                    "SELECT a.incident_id FROM incident_assignment a JOIN generation g "
                    "ON g.id = a.generation_id AND g.is_active "
                    "WHERE a.grid_code LIKE :s || '%' ORDER BY 1 LIMIT 80"
                ),
                {"s": STREET},
            ).scalars()
        )
    assert len(ids) == 80
    errors: list[BaseException] = []

    def write(share: list[int]) -> None:
        try:
            for incident_id in share:
                for status in ("registered", "dispatched", "handled"):
                    with loaded.begin() as conn:
                        conn.execute(
                            text("UPDATE incident SET status = :s WHERE id = :i"),
                            {"s": status, "i": incident_id},
                        )
        except BaseException as error:  # noqa: BLE001 - reported by the main thread
            errors.append(error)

    def read() -> None:
        try:
            for _ in range(20):
                refreshed(loaded)
                with loaded.connect() as conn:
                    incident_status_counts(conn, IncidentFilter(area_prefix=STREET))
        except BaseException as error:  # noqa: BLE001
            errors.append(error)

    threads = [threading.Thread(target=write, args=(ids[k::8],)) for k in range(8)]
    threads += [threading.Thread(target=read) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert_kept_equal_counted(loaded)


def test_migration_0014_downgrades_and_upgrades(loaded):
    from alembic import command

    from app.db.session import alembic_config, upgrade
    from tests.helpers import engine_url

    url = engine_url(loaded)
    command.downgrade(alembic_config(url), "0013")
    try:
        with loaded.connect() as conn:
            gone = conn.execute(text("SELECT to_regclass('incident_count') IS NULL")).scalar()
        assert gone
        run_sql(loaded, "UPDATE incident SET status = 'closed' WHERE id % 7 = 0")
    finally:
        upgrade(url)
    assert not kept_is_used(loaded)  # marked by the migration: counted on the first read
    assert_kept_equal_counted(loaded)
