"""The test helpers themselves (tests/helpers.py)."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from tests.helpers import empty_tables, row_counts, small_district


def test_small_district_nests(demo):
    """The helper keeps every level's parents (a sanity check of the fixture itself)."""
    frames = small_district(demo, ["411002001001"])
    assert set(frames["grid"]["parent_code"]) == {"411002001001"}
    assert set(frames["micro_grid"]["parent_code"]) <= set(frames["grid"]["code"])


@pytest.mark.db
def test_every_migrated_table_is_put_back_as_migrated(clean_db):
    """The list is read from the database, so a table a new migration adds is emptied too;
    rows a migration seeded come back, even when a test removed them."""
    migrated = row_counts(clean_db)
    seeded = [name for name, rows in migrated.items() if rows]
    with clean_db.begin() as conn:
        conn.execute(text("INSERT INTO generation (label) VALUES ('helpers-test')"))
        if seeded:
            conn.execute(text(f"TRUNCATE {', '.join(seeded)} CASCADE"))
    assert row_counts(clean_db)["generation"] == 1
    empty_tables(clean_db)
    rows = row_counts(clean_db)
    assert {"generation", "incident_status_log", "api_key", "redesign_plan"} <= set(rows)
    assert not {"alembic_version", "spatial_ref_sys"} & set(rows)  # Alembic's and PostGIS'
    assert rows == migrated
