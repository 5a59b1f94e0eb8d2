"""Rows stored before the door checks existed must not take pages down, and generation
references are ASCII digits or labels everywhere (not only where a router checks them)."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from app.db import repo, snapshots
from app.services.security import create_api_key
from gis.codes import CodeScheme, InvalidCodeError
from tests.helpers import load_generation, make_client, small_district

pytestmark = pytest.mark.db


def test_stored_extreme_report_times_do_not_take_the_pages_down(clean_db, demo):
    """Rows of year 1 and 9999, stored before the door check (here: by SQL), still leave
    /map, /hotspots and /coverage answering; the rows are kept."""
    community = str(demo.communities["code"].iloc[0])
    load_generation(clean_db, "small", small_district(demo, [community]))
    with clean_db.begin() as conn:
        repo.activate_generation(conn, repo.get_generation(conn, "small").id)
        for external_id, when in (
            ("ok", "2024-05-01 08:00+08"),
            ("year1", "0001-01-01 00:00Z"),
            ("year9999", "9999-12-31 23:00+08"),
        ):
            conn.execute(
                text(
                    "INSERT INTO incident (source, external_id, category, reported_at, status, "
                    "location_status) VALUES ('patrol', :id, '0101', :at, 'reported', 'unlocated')"
                ),
                {"id": external_id, "at": when},
            )
    with clean_db.connect() as conn:
        assert len(snapshots.current_incidents(conn)) == 3
    # the incident layers are drawn for signed-in callers only: a key sees them
    headers = {"X-API-Key": create_api_key(clean_db, "viewer", "stored-times")}
    with make_client(clean_db) as client:
        for path in ("/map", "/hotspots", "/coverage", "/hotspots?start=2024-01-01"):
            response = client.get(path, headers=headers)
            assert response.status_code == 200, (path, response.text[:300])
        assert client.get("/map").status_code == 200  # and the public map too


@pytest.mark.parametrize("ref", ["²", "٣", "３"])
def test_generation_refs_with_non_ascii_digits_resolve_to_nothing(clean_db, ref):
    with clean_db.begin() as conn:
        repo.create_generation(conn, "first", activate=True)
        assert repo.get_generation(conn, "1") is not None
        assert repo.get_generation(conn, ref) is None


@pytest.mark.parametrize("code", ["41100²", "٤١١٠٠٢"])
def test_unified_codes_refuse_non_ascii_digits(code):
    with pytest.raises(InvalidCodeError):
        CodeScheme().parse(code)
