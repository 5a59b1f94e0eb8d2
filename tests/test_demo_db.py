"""The demo district in PostGIS: what `gridmap demo` promises, and idempotence."""

import pytest
from sqlalchemy import text

from app.services.demo import load_demo

pytestmark = pytest.mark.db


def _scalar(engine, sql):
    with engine.connect() as conn:
        return conn.execute(text(sql)).scalar_one()


def test_demo_loads_every_level_staff_gazetteer_and_incidents(demo_engine, demo):
    with demo_engine.connect() as conn:
        counts = dict(
            conn.execute(
                text(
                    "SELECT a.level, count(*) FROM area a JOIN generation g ON g.is_active "
                    "AND a.generation_low <= g.id AND a.generation_high >= g.id GROUP BY a.level"
                )
            ).all()
        )
    assert counts == {
        "district": 1,
        "street": 8,
        "community": 89,
        "grid": 620,
        "micro_grid": len(demo.micro_grids),
    }
    assert 5000 <= counts["micro_grid"] <= 6000
    assert _scalar(demo_engine, "SELECT count(*) FROM staff") == len(demo.staff)
    assert _scalar(demo_engine, "SELECT count(*) FROM address_point") == len(demo.gazetteer)
    # Every incident row is stored: located, geocoded or unlocated with a reason.
    assert _scalar(demo_engine, "SELECT count(*) FROM incident") == len(demo.incidents)
    assert (
        _scalar(
            demo_engine,
            "SELECT count(*) FROM incident WHERE location_status = "
            "'unlocated' AND unlocated_reason IS NULL",
        )
        == 0
    )
    assert _scalar(demo_engine, "SELECT count(*) FROM area WHERE NOT ST_IsValid(geom)") == 0


def test_demo_incidents_land_in_the_grid_of_their_true_position(demo_engine, demo):
    """GCJ-02 rows converted back and address-only rows geocoded land where they happened.

    Reported coordinates carry 6 decimals (~0.1 m, as phones report them), so a
    report closer than that to a grid edge may land in the neighbour: allowed,
    and only there.
    """
    import shapely

    from gis.assign import GridIndex

    truth = GridIndex(demo.grids, code="code").assign_xy(
        demo.incidents["true_lon"].to_numpy(), demo.incidents["true_lat"].to_numpy()
    )
    keys = demo.incidents["external_id"] + "|" + demo.incidents["source"]
    expected = dict(zip(keys, truth["code"], strict=True))
    true_point = dict(
        zip(
            keys,
            shapely.points(demo.incidents["true_lon"], demo.incidents["true_lat"]),
            strict=True,
        )
    )
    boundary = dict(zip(demo.grids["code"], demo.grids.geometry.boundary, strict=True))
    with demo_engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT external_id || '|' || source, grid_code, raw_crs, location_status "
                "FROM incident_current WHERE location_status <> 'unlocated'"
            )
        ).all()
    gcj = [r for r in rows if r[2] == "gcj02"]
    assert len(gcj) > 0.1 * len(rows)
    for key, grid, _, _ in gcj:
        if grid != expected[key]:
            metres = boundary[expected[key]].distance(true_point[key]) * 111_000
            assert metres < 0.2, (key, grid, expected[key], metres)
    geocoded = [r for r in rows if r[3] == "geocoded"]
    wrong = [r for r in geocoded if r[1] != expected[r[0]]]
    # A door plate shared by several buildings geocodes to their centroid, which may sit
    # across a grid edge for a handful of reports.
    assert len(geocoded) > 1000 and len(wrong) <= 0.02 * len(geocoded), wrong[:5]


def test_loading_again_is_idempotent(demo_engine, demo):
    before = _scalar(demo_engine, "SELECT count(*) FROM area")
    report = load_demo(demo_engine, demo)
    assert report.already_loaded
    assert _scalar(demo_engine, "SELECT count(*) FROM area") == before
    assert _scalar(demo_engine, "SELECT count(*) FROM incident") == len(demo.incidents)
