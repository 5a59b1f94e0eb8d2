"""Incident import into PostGIS: counts add up, re-import is idempotent, assignment is stored."""

import dataclasses

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from sqlalchemy import text

from app.db import repo
from app.services.area_import import import_areas
from app.services.assignment import activate_and_reassign, assign_stored
from app.services.incident_import import import_incident_file, import_incidents
from gis.crs import from_wgs84
from gis.errors import GridmapError

pytestmark = pytest.mark.db

COMMUNITY = "411002001001"
HEADER = "id,lon,lat,reported_at,category,address\n"


def _box(x0, y0, x1, y1):
    return shapely.box(113.80 + x0, 34.00 + y0, 113.80 + x1, 34.00 + y1)


@pytest.fixture
def small_district(clean_db):
    """One street, one community, two grids side by side, four micro-grids; active generation."""
    layers = [
        ("district", [_box(0, 0, 0.02, 0.01)], ["411002"]),
        ("street", [_box(0, 0, 0.02, 0.01)], ["411002001"]),
        ("community", [_box(0, 0, 0.02, 0.01)], [COMMUNITY]),
        (
            "grid",
            [_box(0, 0, 0.01, 0.01), _box(0.01, 0, 0.02, 0.01)],
            [COMMUNITY + "001", COMMUNITY + "002"],
        ),
        (
            "micro_grid",
            [
                _box(0, 0, 0.005, 0.01),
                _box(0.005, 0, 0.01, 0.01),
                _box(0.01, 0, 0.015, 0.01),
                _box(0.015, 0, 0.02, 0.01),
            ],
            [
                COMMUNITY + "001001",
                COMMUNITY + "001002",
                COMMUNITY + "002001",
                COMMUNITY + "002002",
            ],
        ),
    ]
    for level, geoms, codes in layers:
        parents = [c[:-3] if level != "district" else None for c in codes]
        layer = gpd.GeoDataFrame({"code": codes, "parent": parents}, geometry=geoms, crs=4326)
        report = import_areas(
            clean_db,
            layer,
            level,
            source="test",
            code_field="code",
            parent_field="parent" if level != "district" else None,
            generation="g1",
        )
        assert report.loaded, report.problems
    with clean_db.begin() as conn:
        repo.store_gazetteer(
            conn,
            pd.DataFrame(
                {"address": ["魏都区建设路12号3号楼"], "lon": [113.8025], "lat": [34.005]}
            ),
            source="test",
        )
    return clean_db


def _write(tmp_path, body, name="calls.csv"):
    path = tmp_path / name
    path.write_text(HEADER + body, encoding="utf-8")
    return path


def _incidents(engine):
    with engine.connect() as conn:
        return repo.incidents_frame(conn).set_index("external_id")


def test_counts_add_up_and_every_row_is_somewhere(small_district, tmp_path):
    path = _write(
        tmp_path,
        "\n".join(
            [
                "1,113.805,34.005,2023-01-01 09:00,0101,",  # grid 001, inside
                "2,113.815,34.005,2023-01-01 09:00,0101,",  # grid 002
                "3,113.81,34.005,2023-01-01 09:00,0101,",  # on the shared edge → boundary, 001
                "4,113.90,34.005,2023-01-01 09:00,0101,",  # outside every grid
                "5,,,2023-01-01 09:00,0101,魏都区建设路１２号３栋",  # geocoded (full-width, 栋)
                "6,,,2023-01-01 09:00,0101,不存在的路99号",  # unlocated: unknown address
                "7,34.005,113.805,2023-01-01 09:00,0101,",  # rejected: swapped
                "8,113.805,34.005,not a time,0101,",  # rejected: time
                "9,113.805,34.005,2023-01-01 09:00,XXXX,",  # rejected: category
                "1,113.805,34.005,2023-01-01 09:00,0101,",  # rejected: duplicate id
            ]
        )
        + "\n",
    )
    report = import_incident_file(small_district, path, source="hotline_12345")
    assert (report.stored, report.unlocated, report.rejected) == (5, 1, 4)
    assert report.stored + report.unlocated + report.rejected == report.rows_in == 10
    assert report.geocoded == 1
    rows = _incidents(small_district)
    assert rows.loc["1", "grid_code"] == COMMUNITY + "001"
    assert rows.loc["1", "micro_grid_code"] == COMMUNITY + "001002"
    assert rows.loc["1", "street_code"] == "411002001"
    assert rows.loc["2", "grid_code"] == COMMUNITY + "002"
    assert (rows.loc["3", "grid_code"], rows.loc["3", "assign_status"]) == (
        COMMUNITY + "001",
        "boundary",
    )
    assert rows.loc["4", "assign_status"] == "outside" and pd.isna(rows.loc["4", "grid_code"])
    assert rows.loc["5", "location_status"] == "geocoded"
    assert rows.loc["5", "grid_code"] == COMMUNITY + "001"
    assert rows.loc["6", "location_status"] == "unlocated"
    assert "不存在的路99号" in rows.loc["6", "unlocated_reason"]
    with small_district.connect() as conn:
        kept = conn.execute(
            text("SELECT row_number, reason FROM rejected_row ORDER BY row_number")
        ).all()
    assert [r[0] for r in kept] == [8, 9, 10, 11]
    assert "swapped" in kept[0][1] and "duplicate id '1'" in kept[3][1]


def test_reimport_is_idempotent(small_district, tmp_path):
    path = _write(
        tmp_path, "1,113.805,34.005,2023-01-01,0101,\n2,113.815,34.005,2023-01-01,0101,\n"
    )
    first = import_incident_file(small_district, path, source="patrol")
    again = import_incident_file(small_district, path, source="patrol")
    assert (first.stored, first.already_present) == (2, 0)
    assert (again.stored, again.already_present) == (2, 2)
    assert len(_incidents(small_district)) == 2
    other = import_incident_file(small_district, path, source="resident")  # other source
    assert other.already_present == 0 and len(_incidents(small_district)) == 4


def test_tolerance_snaps_with_distance_in_metres(small_district, tmp_path):
    # 0.0001° west of the district ≈ 9.2 m at 34° N.
    path = _write(tmp_path, "1,113.7999,34.005,2023-01-01,0101,\n")
    report = import_incident_file(small_district, path, source="patrol", tolerance=20)
    row = _incidents(small_district).loc["1"]
    assert report.by_status == {"snapped": 1}
    assert row["grid_code"] == COMMUNITY + "001"
    assert row["distance_m"] == pytest.approx(9.23, abs=0.1)


def test_gcj02_file_lands_in_the_same_grid(small_district, tmp_path):
    lon, lat = from_wgs84(np.array([113.805, 113.815]), np.array([34.005, 34.005]), "gcj02")
    path = _write(
        tmp_path, f"1,{lon[0]},{lat[0]},2023-01-01,0101,\n2,{lon[1]},{lat[1]},2023-01-01,0101,\n"
    )
    import_incident_file(small_district, path, source="resident", crs="gcj02")
    rows = _incidents(small_district)
    assert list(rows["grid_code"]) == [COMMUNITY + "001", COMMUNITY + "002"]
    assert list(rows["raw_crs"]) == ["gcj02", "gcj02"]


def test_a_crash_during_import_leaves_no_partial_batch(small_district, tmp_path, monkeypatch):
    path = _write(tmp_path, "1,113.805,34.005,2023-01-01,0101,\n")

    def boom(*args, **kwargs):
        raise RuntimeError("connection lost")

    monkeypatch.setattr(repo, "add_rejected_rows", boom)  # after the incidents were inserted
    with pytest.raises(RuntimeError):
        import_incident_file(small_district, path, source="patrol")
    with small_district.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM incident")).scalar_one() == 0
        assert (
            conn.execute(
                text("SELECT count(*) FROM import_batch WHERE kind = 'incidents'")
            ).scalar_one()
            == 0
        )


def test_bulk_assign_and_activation_keep_history(small_district, tmp_path):
    raw = pd.DataFrame(
        {
            "id": ["a", "b"],
            "lon": ["113.805", "113.815"],
            "lat": ["34.005", "34.005"],
            "reported_at": ["2023-01-01"] * 2,
            "category": ["0101"] * 2,
        }
    )
    import_incidents(small_district, raw, label="t", source="patrol")
    # A second generation where one grid covers the whole community.
    for level, code, parent in [
        ("district", "411002", None),
        ("street", "411002001", "411002"),
        ("community", COMMUNITY, "411002001"),
        ("grid", COMMUNITY + "001", COMMUNITY),
    ]:
        layer = gpd.GeoDataFrame(
            {"code": [code], "parent": [parent]}, geometry=[_box(0, 0, 0.02, 0.01)], crs=4326
        )
        assert import_areas(
            small_district,
            layer,
            level,
            source="t",
            code_field="code",
            parent_field="parent" if parent else None,
            generation="g2",
        ).loaded
    report = activate_and_reassign(small_district, "g2")
    assert report.assigned == 2
    rows = _incidents(small_district)
    assert set(rows["grid_code"]) == {COMMUNITY + "001"}
    with small_district.connect() as conn:
        history = conn.execute(
            text(
                "SELECT a.grid_code FROM incident_assignment a JOIN generation g "
                "ON g.id = a.generation_id WHERE g.label = 'g1' ORDER BY a.grid_code"
            )
        ).scalars()
        assert list(history) == [COMMUNITY + "001", COMMUNITY + "002"]
    again = assign_stored(small_district, only_unassigned=True)
    assert again.assigned == 0  # everything already belongs to the active generation


def test_incidents_frame_selects_by_source(small_district, tmp_path):
    row = "1,113.805,34.005,2023-01-01 09:00,0101,\n"
    import_incident_file(small_district, _write(tmp_path, row, "a.csv"), source="hotline_12345")
    import_incident_file(small_district, _write(tmp_path, row, "b.csv"), source="patrol")
    with small_district.connect() as conn:
        every = repo.incidents_frame(conn)
        patrol = repo.incidents_frame(conn, sources=["patrol"])
    assert sorted(every["source"]) == ["hotline_12345", "patrol"]
    assert list(patrol["source"]) == ["patrol"]
    assert patrol.iloc[0]["grid_code"] == COMMUNITY + "001"


# A file with what depends on the whole file: ids repeated far apart, rows without a
# source (a whole chunk of them), missing ids, bad rows and an address to geocode.
MIXED_HEADER = "id,lon,lat,reported_at,category,address,source\n"
MIXED_ROWS = [
    "1,113.805,34.005,2023-01-01 09:00,0101,,",  # no source: rejected, not a refusal
    "2,113.815,34.005,2023-01-01 09:00,0101,,",
    ",113.815,34.005,2023-01-01 09:00,0101,,patrol",  # missing id
    "3,113.805,34.005,2023-01-01 09:00,0101,,patrol",
    "4,,,2023-01-01 09:00,0101,魏都区建设路12号3号楼,patrol",  # geocoded
    "1,113.805,34.005,2023-01-01 09:00,0101,,patrol",  # duplicate of row 2 (other chunk)
    "5,113.805,34.005,not a time,0101,,patrol",
    "3,113.805,34.005,2023-01-01 09:00,XXXX,,patrol",  # duplicate before its bad category
    "6,113.90,34.005,2023-01-01 09:00,0101,,patrol",  # outside
    "6,113.90,34.005,2023-01-01 09:00,0101,,patrol",  # duplicate inside one chunk
    "7,34.005,113.805,2023-01-01 09:00,0101,,patrol",  # swapped
]


def _stored_and_refused(engine):
    with engine.connect() as conn:
        stored = conn.execute(
            text(
                "SELECT external_id, source, location_status, grid_code, assign_status "
                "FROM incident_current ORDER BY external_id, source"
            )
        ).all()
        refused = conn.execute(
            text("SELECT row_number, reason, raw FROM rejected_row ORDER BY id")
        ).all()
        rows_in = conn.execute(
            text("SELECT rows_in FROM import_batch WHERE kind = 'incidents'")
        ).scalar_one()
    return stored, refused, rows_in


@pytest.mark.parametrize("chunk_rows", [2, 3])
def test_a_file_read_in_chunks_is_imported_as_read_whole(small_district, tmp_path, chunk_rows):
    """Every row ends where a whole-file read puts it: same reasons, lines, counts."""
    path = tmp_path / "mixed.csv"
    path.write_text(MIXED_HEADER + "\n".join(MIXED_ROWS) + "\n", encoding="utf-8")
    whole = import_incident_file(small_district, path, chunk_rows=1_000)
    expected = _stored_and_refused(small_district)
    with small_district.begin() as conn:
        conn.execute(text("DELETE FROM incident"))
        conn.execute(text("DELETE FROM rejected_row"))
        conn.execute(text("DELETE FROM import_batch WHERE kind = 'incidents'"))
    chunked = import_incident_file(small_district, path, chunk_rows=chunk_rows)
    assert _stored_and_refused(small_district) == expected
    assert dataclasses.replace(chunked, batch_id=None) == dataclasses.replace(whole, batch_id=None)
    assert (whole.rows_in, whole.stored, whole.unlocated, whole.rejected) == (11, 3, 0, 8)
    assert whole.geocoded == 1 and whole.by_status == {"inside": 2, "outside": 1}
    reasons = {row: reason for row, reason, _ in expected[1]}
    assert reasons[7] == "duplicate id '1' in this file (first at row 2)"
    assert reasons[9] == "duplicate id '3' in this file (first at row 5)"
    assert reasons[11] == "duplicate id '6' in this file (first at row 10)"
    assert reasons[2].startswith("missing source") and reasons[4] == "missing id"


def test_a_file_without_any_source_is_refused_whole_in_chunks(small_district, tmp_path):
    path = tmp_path / "nosource.csv"
    rows = [r.rsplit(",", 1)[0] + "," for r in MIXED_ROWS]
    path.write_text(MIXED_HEADER + "\n".join(rows) + "\n", encoding="utf-8")
    with pytest.raises(GridmapError, match="no source"):
        import_incident_file(small_district, path, chunk_rows=3)
    with small_district.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM incident")).scalar_one() == 0
        batches = "SELECT count(*) FROM import_batch WHERE kind = 'incidents'"
        assert conn.execute(text(batches)).scalar_one() == 0


def test_two_large_imports_at_once_both_land(small_district, tmp_path, monkeypatch):
    """Each defers the tables' indexes (as a city import does): the second waits for the
    first and then does the same, and both batches are stored whole."""
    import threading

    from app.db import bulk

    monkeypatch.setattr(bulk, "DEFER_INDEXES_FROM", 0)
    monkeypatch.setattr(bulk, "DEFER_INDEXES_SHARE", 0.0)
    indexes = (
        "SELECT count(*) FROM pg_indexes WHERE tablename IN ('incident', 'incident_assignment')"
    )
    with small_district.connect() as conn:
        before = conn.execute(text(indexes)).scalar_one()
    paths = []
    for k in range(2):
        rows = [f"p{k}-{i},113.80{i % 10},34.00{i % 10},2024-05-01 08:00,0101," for i in range(300)]
        paths.append(_write(tmp_path, "\n".join(rows) + "\n", f"{k}.csv"))
    errors: list[BaseException] = []

    def load(path):
        try:
            import_incident_file(small_district, path, source=f"src_{path.stem}")
        except BaseException as error:  # noqa: BLE001 — reported by the assertion below
            errors.append(error)

    threads = [threading.Thread(target=load, args=(p,)) for p in paths]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with small_district.connect() as conn:
        assert conn.execute(text(indexes)).scalar_one() == before
        stored = conn.execute(text("SELECT count(*) FROM incident WHERE source LIKE 'src_%'"))
        assert stored.scalar_one() == 600
