"""Area import into PostGIS: all or nothing, every problem reported, rejections kept."""

import json

import geopandas as gpd
import pytest
import shapely
from sqlalchemy import text
from typer.testing import CliRunner

from app.db import repo
from app.services.area_import import import_area_file, import_areas

pytestmark = pytest.mark.db

BEATS = "chicago_police_beats_277.geojson"


def _count(engine, sql, **params):
    with engine.connect() as conn:
        return conn.execute(text(sql), params).scalar_one()


def test_chicago_beats_with_duplicate_beat_num_are_refused_and_nothing_is_stored(
    clean_db, chicago_dir
):
    report = import_area_file(
        clean_db, chicago_dir / BEATS, "grid", code_field="beat_num", generation="chicago"
    )
    assert not report.loaded
    duplicated = {p["code"] for p in report.problems if p.get("kind") == "duplicate"}
    beats = gpd.read_file(chicago_dir / BEATS)
    truly_duplicated = set(beats["beat_num"][beats["beat_num"].duplicated()])
    assert duplicated == truly_duplicated and duplicated  # the real file has repeats
    assert any("duplicate beat_num" in p["reason"] for p in report.problems)
    assert _count(clean_db, "SELECT count(*) FROM area") == 0
    assert _count(clean_db, "SELECT count(*) FROM generation") == 0  # rolled back too
    # The refusal itself is kept, with one row per problem.
    assert _count(clean_db, "SELECT count(*) FROM import_batch WHERE status = 'rejected'") == 1
    assert _count(clean_db, "SELECT count(*) FROM rejected_row") == len(report.problems)


def test_chicago_beats_with_generated_codes_load_all_277(clean_db, chicago_dir):
    report = import_area_file(
        clean_db, chicago_dir / BEATS, "grid", generation="chicago", parent_code="999999001001"
    )
    assert report.loaded, report.problems[:3]
    assert report.stored == 277
    with clean_db.connect() as conn:
        gen = repo.get_generation(conn, "chicago")
        grids = repo.areas_frame(conn, gen.id, "grid")
    assert len(grids) == 277 and grids["code"].is_unique
    assert grids["code"].str.startswith("999999001001").all()
    # Numbered west→east, north→south: the first code is in the north of the city.
    first = grids.set_index("code").geometry.loc["999999001001001"]
    assert first.centroid.y > grids.geometry.centroid.y.quantile(0.9)
    assert _count(clean_db, "SELECT count(*) FROM area WHERE NOT ST_IsValid(geom)") == 0


def test_a_failure_while_writing_leaves_no_partial_batch(clean_db, monkeypatch):
    layer = gpd.GeoDataFrame(
        geometry=[shapely.box(113.8 + i * 0.01, 34, 113.81 + i * 0.01, 34.01) for i in range(5)],
        crs=4326,
    )

    def boom(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(repo, "finish_batch", boom)  # fails after the COPY went through
    with pytest.raises(RuntimeError, match="disk full"):
        import_areas(clean_db, layer, "grid", source="test", parent_code="411002001001")
    assert _count(clean_db, "SELECT count(*) FROM area") == 0
    assert _count(clean_db, "SELECT count(*) FROM import_batch") == 0


def test_second_file_into_the_same_generation_refuses_existing_codes(clean_db):
    layer = gpd.GeoDataFrame(
        {"code": ["411002001001001"]}, geometry=[shapely.box(113.8, 34, 113.81, 34.01)], crs=4326
    )
    first = import_areas(
        clean_db, layer, "grid", source="a", code_field="code", parent_code="411002001001"
    )
    assert first.loaded
    again = import_areas(
        clean_db, layer, "grid", source="b", code_field="code", parent_code="411002001001"
    )
    assert "already exists in the target generation" in again.problems[0]["reason"]
    replaced = import_areas(
        clean_db,
        layer,
        "grid",
        source="c",
        code_field="code",
        parent_code="411002001001",
        replace=True,
    )
    assert replaced.loaded
    assert _count(clean_db, "SELECT count(*) FROM area") == 1


def test_spatial_parents_come_from_the_target_generation(clean_db):
    communities = gpd.GeoDataFrame(
        {"code": ["411002001001", "411002001002"]},
        geometry=[
            shapely.box(113.80, 34.0, 113.81, 34.01),
            shapely.box(113.81, 34.0, 113.82, 34.01),
        ],
        crs=4326,
    )
    assert import_areas(
        clean_db, communities, "community", source="c", code_field="code", parent_code="411002001"
    ).loaded
    grids = gpd.GeoDataFrame(
        geometry=[
            shapely.box(113.812, 34.001, 113.815, 34.004),
            shapely.box(113.801, 34.001, 113.804, 34.004),
        ],
        crs=4326,
    )
    report = import_areas(clean_db, grids, "grid", source="g")
    assert report.loaded, report.problems
    with clean_db.connect() as conn:
        stored = repo.areas_frame(conn, repo.active_generation(conn).id, "grid")
    assert dict(zip(stored["code"], stored["parent_code"], strict=True)) == {
        "411002001001001": "411002001001",
        "411002001002001": "411002001002",
    }


def test_cli_refuses_with_report_and_exports_every_format(
    clean_db, chicago_dir, tmp_path, monkeypatch
):
    from app.cli import app

    monkeypatch.setenv("GRIDMAP_DATABASE_URL", clean_db.url.render_as_string(hide_password=False))
    runner = CliRunner()
    refused = runner.invoke(
        app,
        [
            "areas",
            "import",
            str(chicago_dir / BEATS),
            "--level",
            "grid",
            "--code-field",
            "beat_num",
            "--report",
            str(tmp_path / "problems.json"),
        ],
    )
    assert refused.exit_code == 1
    assert "duplicated codes:" in refused.output
    assert json.loads((tmp_path / "problems.json").read_text())
    loaded = runner.invoke(
        app,
        [
            "areas",
            "import",
            str(chicago_dir / BEATS),
            "--level",
            "grid",
            "--parent-code",
            "999999001001",
        ],
    )
    assert loaded.exit_code == 0, loaded.output
    assert "stored 277 grid areas" in loaded.output
    for suffix in (".geojson", ".gpkg", ".shp", ".parquet"):
        out = tmp_path / f"beats{suffix}"
        result = runner.invoke(app, ["areas", "export", "--level", "grid", "-o", str(out)])
        assert result.exit_code == 0, result.output
        back = gpd.read_parquet(out) if suffix == ".parquet" else gpd.read_file(out)
        assert len(back) == 277
