"""The schema's own guarantees, checked against the real PostGIS."""

import json

import pytest
from sqlalchemy import inspect, text
from sqlalchemy.exc import IntegrityError

pytestmark = pytest.mark.db

SQUARE = "SRID=4326;MULTIPOLYGON(((113.8 34,113.81 34,113.81 34.01,113.8 34.01,113.8 34)))"


def _generation(conn, label, active=False):
    return conn.execute(
        text("INSERT INTO generation (label, is_active) VALUES (:l, :a) RETURNING id"),
        {"l": label, "a": active},
    ).scalar_one()


def _area(conn, code, low, high, geom=SQUARE, parent=None, level="grid"):
    conn.execute(
        text(
            "INSERT INTO area (level, code, parent_code, generation_low, generation_high, geom) "
            "VALUES (:level, :code, :parent, :low, :high, ST_GeomFromEWKT(:geom))"
        ),
        {"level": level, "code": code, "parent": parent, "low": low, "high": high, "geom": geom},
    )


def test_every_design_table_exists_with_gist_indexes(pg_engine):
    inspector = inspect(pg_engine)
    tables = set(inspector.get_table_names())
    assert {
        "generation",
        "area",
        "staff",
        "incident",
        "incident_assignment",
        "lineage",
        "import_batch",
        "rejected_row",
    } <= tables
    gist = {
        (t, i["name"])
        for t in ("area", "incident")
        for i in inspector.get_indexes(t)
        if i.get("dialect_options", {}).get("postgresql_using") == "gist"
    }
    assert ("area", "area_geom_gist") in gist and ("incident", "incident_location_gist") in gist


def test_only_one_generation_can_be_active(pg_engine):
    conn = pg_engine.connect()
    tx = conn.begin()
    try:
        _generation(conn, "a", active=True)
        with pytest.raises(IntegrityError, match="generation_one_active"):
            _generation(conn, "b", active=True)
    finally:
        tx.rollback()
        conn.close()


def test_code_is_unique_within_a_generation_range_but_may_repeat_across(pg_engine):
    with pg_engine.connect() as conn:
        tx = conn.begin()
        g1, g2, g3 = (_generation(conn, f"g{i}") for i in range(3))
        _area(conn, "411002001001001", g1, g2)
        _area(conn, "411002001001001", g3, g3)  # same code, later generation: fine
        nested = conn.begin_nested()
        with pytest.raises(IntegrityError, match="area_code_unique_per_generation"):
            _area(conn, "411002001001001", g2, g3)  # overlaps generation g2 and g3
        nested.rollback()
        tx.rollback()


@pytest.mark.parametrize(
    "kwargs, constraint",
    [
        ({"code": "41100200100100A"}, "area_code_digits"),
        ({"code": "411002001002001", "parent": "411002001001"}, "area_code_in_parent"),
        ({"geom": "SRID=4326;MULTIPOLYGON(((0 0,1 1,1 0,0 1,0 0)))"}, "area_geom_valid"),
        ({"level": "block"}, "area_level"),
    ],
)
def test_area_constraints_refuse_bad_rows(pg_engine, kwargs, constraint):
    with pg_engine.connect() as conn:
        tx = conn.begin()
        gen = _generation(conn, "g")
        args = {"code": "411002001001001", "low": gen, "high": gen, **kwargs}
        with pytest.raises(IntegrityError, match=constraint):
            _area(conn, **args)
        tx.rollback()


def test_incident_external_id_is_unique_per_source(pg_engine):
    insert = text(
        "INSERT INTO incident (source, external_id, location_status) VALUES (:s, :e, 'unlocated')"
    )
    with pg_engine.connect() as conn:
        tx = conn.begin()
        conn.execute(insert, {"s": "hotline_12345", "e": "A1"})
        conn.execute(insert, {"s": "police_110", "e": "A1"})
        with pytest.raises(IntegrityError, match="incident_source_external_id"):
            conn.execute(insert, {"s": "hotline_12345", "e": "A1"})
        tx.rollback()


def test_located_incident_needs_a_location(pg_engine):
    with pg_engine.connect() as conn:
        tx = conn.begin()
        with pytest.raises(IntegrityError, match="incident_location_known"):
            conn.execute(
                text(
                    "INSERT INTO incident (source, external_id, location_status) "
                    "VALUES ('patrol', 'x', 'located')"
                )
            )
        tx.rollback()


def test_postgis_is_enabled(pg_engine):
    with pg_engine.connect() as conn:
        version = conn.execute(text("SELECT postgis_lib_version()")).scalar_one()
    assert version.split(".")[0] >= "3"


def test_deleting_an_incident_deletes_its_assignments(pg_engine):
    with pg_engine.connect() as conn:
        tx = conn.begin()
        gen = _generation(conn, "g")
        incident = conn.execute(
            text(
                "INSERT INTO incident (source, external_id, location_status) "
                "VALUES ('patrol', 'x', 'unlocated') RETURNING id"
            )
        ).scalar_one()
        conn.execute(
            text(
                "INSERT INTO incident_assignment (generation_id, incident_id, "
                "assign_status) VALUES (:g, :i, 'outside')"
            ),
            {"g": gen, "i": incident},
        )
        conn.execute(text("DELETE FROM incident WHERE id = :i"), {"i": incident})
        left = conn.execute(text("SELECT count(*) FROM incident_assignment")).scalar_one()
        tx.rollback()
    assert left == 0


def test_redesign_plans_survive_downgrade_to_0003_and_upgrade(clean_db):
    from alembic import command

    from app.db import plans, repo
    from app.db.session import alembic_config, upgrade
    from tests.helpers import engine_url

    stored = dict(target=2, mode="reshape", weights={"households": 1.0})
    with clean_db.begin() as conn:
        source = repo.create_generation(conn, "before-plan")
        gen = repo.create_generation(conn, "plan-x", note="reshape redesign of before-plan")
        repo.create_generation(conn, "free-text", note="{not json, a person's note")
        plans.store_plan(
            conn,
            plans.PlanInfo(
                generation_id=gen.id,
                source_label="before-plan",
                source_generation_id=source.id,
                metrics={"cv": 0.25},
                baseline={"cv": 0.5},
                **stored,
            ),
        )
    url = engine_url(clean_db)
    command.downgrade(alembic_config(url), "0003")
    try:
        with clean_db.connect() as conn:
            notes = dict(conn.execute(text("SELECT label, note FROM generation")).all())
            assert not inspect(conn).has_table("redesign_plan")
        assert json.loads(notes["plan-x"]) == {
            "redesign_of": "before-plan",
            "metrics": {"cv": 0.25},
            "baseline": {"cv": 0.5},
            **stored,
        }
    finally:
        upgrade(url)
    with clean_db.connect() as conn:
        plan = plans.get_plan(conn, gen.id)
        notes = dict(conn.execute(text("SELECT label, note FROM generation")).all())
    assert plan is not None
    assert (plan.source_label, plan.source_generation_id) == ("before-plan", source.id)
    assert (plan.target, plan.mode, plan.weights) == (2, "reshape", {"households": 1.0})
    assert (plan.metrics, plan.baseline) == ({"cv": 0.25}, {"cv": 0.5})
    assert notes["plan-x"] == "reshape redesign of before-plan"
    assert notes["free-text"] == "{not json, a person's note"
