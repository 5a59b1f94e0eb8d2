"""Deleting incidents deletes their assignments, once per statement (migration 0010)."""

import pytest
from sqlalchemy import text

pytestmark = pytest.mark.db

MANY = 5_000


def _incidents_with_assignments(conn, generations: list[int]) -> None:
    conn.execute(
        text(
            "INSERT INTO incident (source, external_id, location_status) "
            "SELECT CASE WHEN n % 2 = 0 THEN 'patrol' ELSE 'resident' END, 'x' || n, 'unlocated' "
            "FROM generate_series(1, :n) n"
        ),
        {"n": MANY},
    )
    for gen in generations:
        conn.execute(
            text(
                "INSERT INTO incident_assignment (generation_id, incident_id, assign_status) "
                "SELECT :g, id, 'outside' FROM incident"
            ),
            {"g": gen},
        )


def _generation(conn, label):
    return conn.execute(
        text("INSERT INTO generation (label) VALUES (:l) RETURNING id"), {"l": label}
    ).scalar_one()


def _orphans(conn) -> int:
    return conn.execute(
        text(
            "SELECT count(*) FROM incident_assignment a "
            "WHERE NOT EXISTS (SELECT 1 FROM incident i WHERE i.id = a.incident_id)"
        )
    ).scalar_one()


def test_a_bulk_delete_takes_exactly_its_incidents_assignments(clean_db):
    with clean_db.begin() as conn:
        _incidents_with_assignments(conn, [_generation(conn, "g1"), _generation(conn, "g2")])
        deleted = conn.execute(text("DELETE FROM incident WHERE source = 'patrol'")).rowcount
        left = conn.execute(text("SELECT count(*) FROM incident_assignment")).scalar_one()
        kept = conn.execute(
            text(
                "SELECT count(*) FROM incident_assignment a JOIN incident i "
                "ON i.id = a.incident_id WHERE i.source = 'resident'"
            )
        ).scalar_one()
        assert deleted == MANY // 2
        assert (left, kept, _orphans(conn)) == (MANY, MANY, 0)  # two generations each
        conn.execute(text("DELETE FROM incident WHERE false"))  # an empty statement is fine
        conn.execute(text("DELETE FROM incident"))
        assert conn.execute(text("SELECT count(*) FROM incident_assignment")).scalar_one() == 0


def test_the_trigger_fires_per_statement_and_downgrades_to_per_row(clean_db):
    from alembic import command

    from app.db.session import alembic_config, upgrade
    from tests.helpers import engine_url

    def trigger() -> tuple[bool, str]:
        with clean_db.connect() as conn:
            tgtype, definition = conn.execute(
                text(
                    "SELECT tgtype, pg_get_triggerdef(oid) FROM pg_trigger "
                    "WHERE tgname = 'incident_deleted'"
                )
            ).one()
        return bool(tgtype & 1), definition  # bit 0: FOR EACH ROW

    per_row, definition = trigger()
    assert not per_row and "REFERENCING OLD TABLE AS deleted_incident" in definition
    url = engine_url(clean_db)
    command.downgrade(alembic_config(url), "0009")
    try:
        assert trigger()[0]
        with clean_db.begin() as conn:  # the row-level trigger did the same
            _incidents_with_assignments(conn, [_generation(conn, "g1")])
            conn.execute(text("DELETE FROM incident WHERE source = 'patrol'"))
            assert _orphans(conn) == 0
            assert conn.execute(text("SELECT count(*) FROM incident_assignment")).scalar_one() == (
                MANY // 2
            )
    finally:
        upgrade(url)
    assert not trigger()[0]
