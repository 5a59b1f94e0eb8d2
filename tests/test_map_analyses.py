"""The map's analyses from the database: counts the database makes equal the frame's, and
what depends on the areas alone is kept per generation version, across restarts."""

from __future__ import annotations

import dataclasses

import pandas as pd
import pytest
from sqlalchemy import text

import app.services.analysis as analysis
import app.services.map_data as map_data
from app.maps.page import PageOptions, build_map_page
from app.maps.tiles import TileOptions
from app.services.analysis import Selection
from app.services.map_data import load_map_data
from gis.coverage import check_coverage
from gis.hotspots import grid_counts

pytestmark = pytest.mark.db


def _load(engine, directory=None):
    with engine.connect() as conn:
        return load_map_data(conn, directory=directory)


def _in_memory(data):
    """The same data holding its incidents: every analysis from the frame, as before."""
    return dataclasses.replace(data, incidents=data.incidents, cache={}, stored=None)


def _selections(incidents: pd.DataFrame) -> list[Selection]:
    times = incidents["reported_at"].sort_values()
    start, end = times.iloc[len(times) // 4], times.iloc[3 * len(times) // 4]
    source = incidents["source"].value_counts().index[0]
    category = incidents["category"].dropna().iloc[0][:2]
    return [
        Selection(),
        Selection.parse(start, end),
        Selection.parse(start=start.strftime("%Y-%m-%d")),
        Selection.parse(category=category),
        Selection.parse(source=source),
        Selection.parse(end=end, category=category, source=source),
        Selection.parse(category="99"),  # nothing
    ]


def _plant_outside_incident(conn) -> None:
    """An incident far outside every grid, assigned 'outside' as the import would."""
    conn.execute(
        text(
            "WITH added AS (INSERT INTO incident (source, external_id, category, reported_at, "
            "location_status, location) VALUES ('patrol', 'far-away', '0101', now(), "
            "'located', ST_SetSRID(ST_MakePoint(100.0, 20.0), 4326)) RETURNING id) "
            "INSERT INTO incident_assignment (generation_id, incident_id, assign_status) "
            "SELECT g.id, added.id, 'outside' FROM added, generation g WHERE g.is_active"
        )
    )


def test_counts_by_the_database_equal_counts_of_the_frame(loaded):
    with loaded.begin() as conn:
        _plant_outside_incident(conn)  # selected, but no grid's
    data = _load(loaded)
    frame = data.incidents
    assert data.in_database is not None
    for selection in _selections(frame):
        counted = analysis.grid_counts_of(data, selection)
        expected = grid_counts(frame, data.level("grid"), **selection.gis_args)
        pd.testing.assert_frame_equal(
            pd.DataFrame(counted.drop(columns="geometry")),
            pd.DataFrame(expected.drop(columns="geometry")),
        )
        assert counted.geometry.equals(expected.geometry)
        assert counted.attrs == expected.attrs, selection.describe()
    assert analysis.grid_counts_of(data, Selection()).attrs["unassigned"] == 1


def test_gi_star_on_database_counts_and_kept_weights_equals_gi_star_of_the_frame(loaded, tmp_path):
    data = _load(loaded, tmp_path)
    kept = analysis.grid_stats(data, Selection(), permutations=99)
    before = _in_memory(data)
    expected = analysis.grid_stats(before, Selection(), permutations=99)
    pd.testing.assert_frame_equal(
        pd.DataFrame(kept.drop(columns="geometry")),
        pd.DataFrame(expected.drop(columns="geometry")),
    )
    assert (kept["bin"] != 0).any()
    assert list((tmp_path / "weights").glob("*.pkl"))
    # after a restart: the weights come from disk, the results stay the same
    again = analysis.grid_stats(_load(loaded, tmp_path), Selection(), permutations=99)
    pd.testing.assert_frame_equal(
        pd.DataFrame(again.drop(columns="geometry")),
        pd.DataFrame(expected.drop(columns="geometry")),
    )


def _same_report(left, right) -> None:
    pd.testing.assert_frame_equal(pd.DataFrame(left.defects), pd.DataFrame(right.defects))
    assert left.defects.geometry.equals(right.defects.geometry)
    pd.testing.assert_frame_equal(left.staffing, right.staffing)
    pd.testing.assert_frame_equal(left.levels, right.levels)
    assert left.settings == right.settings and left.metric_crs == right.metric_crs


def test_coverage_in_parts_equals_one_report_of_areas_staff_and_incidents(loaded, tmp_path):
    with loaded.begin() as conn:
        _plant_outside_incident(conn)
        conn.execute(  # and one never assigned (stored before any generation was active)
            text(
                "INSERT INTO incident (source, external_id, location_status, location) "
                "VALUES ('patrol', 'never-assigned', 'located', "
                "ST_SetSRID(ST_MakePoint(101.0, 21.0), 4326))"
            )
        )
        grid = conn.execute(
            text("SELECT code FROM area WHERE level = 'grid' ORDER BY code LIMIT 1")
        ).scalar_one()
        conn.execute(text("DELETE FROM staff WHERE area_code = :g"), {"g": grid})
        conn.execute(  # a gap where it was, an overlap where it goes
            text(
                "UPDATE area SET geom = ST_Translate(geom, 0.0004, 0) WHERE code = ("
                "SELECT code FROM area WHERE level = 'micro_grid' ORDER BY code LIMIT 1)"
            )
        )
    data = _load(loaded, tmp_path)
    report = analysis.coverage(data)
    expected = check_coverage(data.all_areas(), data.staff, data.incidents[["id", "lon", "lat"]])
    _same_report(report, expected)
    counts = report.counts
    assert counts["outside_incident"] == 2 and counts["unstaffed"] >= 1
    assert counts["gap"] + counts["overlap"] + counts["sliver"] >= 1
    _same_report(analysis.coverage(_in_memory(data)), expected)


def test_kept_coverage_serves_a_restart_and_a_new_incident_and_not_changed_areas(
    loaded, tmp_path, monkeypatch
):
    built = []

    def counted(areas, *args, **kwargs):
        if set(areas["level"]) != {"grid"}:  # the areas' own part, not staff and incidents
            built.append(len(areas))
        return check_coverage(areas, *args, **kwargs)

    monkeypatch.setattr(analysis, "check_coverage", counted)
    first = analysis.coverage(_load(loaded, tmp_path))
    assert len(built) == 1 and len(list((tmp_path / "coverage").glob("*.pkl"))) == 1

    _same_report(analysis.coverage(_load(loaded, tmp_path)), first)  # a restart
    with loaded.begin() as conn:  # a new incident: a new data version, the same areas
        conn.execute(
            text(
                "INSERT INTO incident (source, external_id, location_status, location) "
                "SELECT 'patrol', 'kept-coverage', 'located', ST_PointOnSurface(geom) "
                "FROM area WHERE level = 'grid' ORDER BY code LIMIT 1"
            )
        )
    assert analysis.coverage(_load(loaded, tmp_path)).counts == first.counts
    assert len(built) == 1

    with loaded.begin() as conn:  # one micro-grid moved: the areas' part is checked again
        conn.execute(
            text(
                "UPDATE area SET geom = ST_Translate(geom, 0.0004, 0) WHERE code = ("
                "SELECT code FROM area WHERE level = 'micro_grid' ORDER BY code LIMIT 1)"
            )
        )
    moved = analysis.coverage(_load(loaded, tmp_path))
    assert len(built) == 2 and len(list((tmp_path / "coverage").glob("*.pkl"))) == 2
    assert moved.counts != first.counts
    _same_report(moved, check_coverage(_load(loaded).all_areas(), *_people(loaded)))


def _people(engine):
    data = _load(engine)
    return data.staff, data.incidents[["id", "lon", "lat"]]


def test_kept_areas_are_read_back_after_a_restart(loaded, tmp_path):
    first = _load(loaded, tmp_path)
    assert len(list((tmp_path / "areas").glob("*.pkl"))) == 1
    again = _load(loaded, tmp_path)
    for level, frame in first.areas.items():
        pd.testing.assert_frame_equal(
            pd.DataFrame(again.areas[level].drop(columns="geometry")),
            pd.DataFrame(frame.drop(columns="geometry")),
        )
        assert again.areas[level].geometry.equals(frame.geometry)


def test_a_city_sized_page_reads_no_incident_row_by_row(loaded, tmp_path, monkeypatch):
    """At city scale the page counts, bins and samples in the database."""
    monkeypatch.setattr(analysis, "AGGREGATE_FROM", 0)
    data = _load(loaded, tmp_path)
    frame = _load(loaded).incidents
    window = Selection.parse(start="2000-01-01", end=frame["reported_at"].median())
    in_window = len(analysis.select_incidents(_in_memory(_load(loaded)), window))

    def refuse(conn):
        raise AssertionError("every incident was read")

    monkeypatch.setattr(map_data, "current_incidents", refuse)
    tiles = TileOptions("/tiles/{layer}/{z}/{x}/{y}.mvt?v=1", threshold=10)
    page = build_map_page(data, options=PageOptions(asset_prefix="/static/", tiles=tiles))
    assert "热力 heat" in page and "事件聚类 incidents" in page

    for selection in (Selection(), window):  # counted with the micro-grids: the same
        counted = analysis.grid_counts_of(data, selection)
        expected = grid_counts(frame, data.level("grid"), **selection.gis_args)
        assert counted["count"].tolist() == expected["count"].tolist()
        assert counted.attrs == expected.attrs
    heat = analysis.heat_points(data, Selection(), cell_m=100.0)
    assert len(heat) and heat["weight"].max() == 1.0
    # the points inside the micro-grids are kept with the areas: a reload reads them back
    assert len(list((tmp_path / "inner_points").glob("*.pkl"))) == 1
    monkeypatch.setattr(analysis, "_inner_points", refuse)
    reloaded = _load(loaded, tmp_path)
    pd.testing.assert_frame_equal(analysis.heat_points(reloaded, Selection(), cell_m=100.0), heat)
    sample, selected = analysis.incident_sample(data, Selection(), 500)
    assert selected == len(frame) and 0 < len(sample) <= 500
    assert sample["id"].isin(frame["id"]).all() and sample["lon"].notna().all()
    chosen, selected = analysis.incident_sample(data, window, 100)
    assert selected == in_window and 0 < len(chosen) <= 100
    assert (chosen["reported_at"] < window.end).all()
