"""Incident cleaning (pure): each bad-input kind has a clear reason and nothing is lost."""

import json

import numpy as np
import pandas as pd
import pytest

from gis.crs import from_wgs84
from gis.errors import GridmapError
from gis.incidents import FieldMap, clean_incidents, read_incident_file
from gis.taxonomy import load_taxonomy

BOUNDS = (113.7, 33.9, 113.95, 34.15)  # around the demo district
HEADER = "id,lon,lat,reported_at,category,address,description\n"


def _clean(tmp_path, body, name="in.csv", **kwargs):
    path = tmp_path / name
    path.write_text(HEADER + body, encoding="utf-8")
    raw, _, _ = read_incident_file(path)
    kwargs.setdefault("source", "hotline_12345")
    return clean_incidents(raw, categories=load_taxonomy(), expected_bounds=BOUNDS, **kwargs)


def _reasons(result):
    return {r["row"]: r["reason"] for r in result.rejected}


def test_clean_rows_are_kept_with_local_time_and_wgs84(tmp_path):
    result = _clean(tmp_path, "A1,113.82,34.03,2023-05-01 08:30,0101,,井盖缺失\n")
    row = result.frame.iloc[0]
    assert result.rejected == [] and row["location_status"] == "located"
    assert row["reported_at"] == pd.Timestamp("2023-05-01 08:30", tz="Asia/Shanghai")
    assert (row["lon"], row["lat"]) == (113.82, 34.03)


@pytest.mark.parametrize(
    "line, reason",
    [
        ("A1,34.03,113.82,2023-05-01,0101,,", "latitude and longitude look swapped"),
        ("A1,200,34.03,2023-05-01,0101,,", "coordinates out of range (lon=200.0"),
        ("A1,abc,34.03,2023-05-01,0101,,", "coordinates are not numbers: lon=abc"),
        ("A1,113.82,34.03,yesterday-ish,0101,,", "unparseable time 'yesterday-ish'"),
        ("A1,113.82,34.03,,0101,,", "missing reported time"),
        ("A1,113.82,34.03,2023-05-01,9999,,", "unknown category '9999' (not in the taxonomy)"),
        (",113.82,34.03,2023-05-01,0101,,", "missing id"),
    ],
)
def test_each_bad_row_is_rejected_with_its_reason(tmp_path, line, reason):
    result = _clean(tmp_path, line + "\nB2,113.82,34.03,2023-05-01,0101,,\n")
    assert reason in _reasons(result)[2]
    assert len(result.frame) == 1 and result.frame["external_id"].iloc[0] == "B2"
    assert len(result.frame) + len(result.rejected) == result.rows_in == 2


def test_duplicate_ids_in_one_file_keep_the_first(tmp_path):
    result = _clean(
        tmp_path, "A1,113.82,34.03,2023-05-01,0101,,\nA1,113.83,34.04,2023-05-02,0101,,\n"
    )
    assert _reasons(result) == {3: "duplicate id 'A1' in this file (first at row 2)"}


def test_nan_and_null_island_without_address_are_stored_unlocated(tmp_path):
    result = _clean(
        tmp_path,
        "A1,,,2023-05-01,0101,,\nA2,0,0,2023-05-01,0101,,\nA3,0,0,2023-05-01,0101,建设路12号,\n",
    )
    status = dict(zip(result.frame["external_id"], result.frame["location_status"], strict=True))
    assert status == {"A1": "unlocated", "A2": "unlocated", "A3": "to_geocode"}
    reasons = dict(zip(result.frame["external_id"], result.frame["unlocated_reason"], strict=True))
    assert reasons["A1"] == "no coordinates and no address"
    assert reasons["A2"] == "coordinates (0, 0) are a device placeholder"


def test_gcj02_rows_are_converted_back_to_wgs84(tmp_path):
    glon, glat = from_wgs84(np.array([113.82]), np.array([34.03]), "gcj02")
    body = f"A1,{float(glon[0])!r},{float(glat[0])!r},2023-05-01,0101,,\n"
    result = _clean(tmp_path, body, crs="gcj02")
    assert result.frame["lon"].iloc[0] == pytest.approx(113.82, abs=1e-9)
    assert result.frame["lat"].iloc[0] == pytest.approx(34.03, abs=1e-9)
    assert result.frame["raw_crs"].iloc[0] == "gcj02"


def test_categories_may_be_given_by_name(tmp_path):
    result = _clean(tmp_path, "A1,113.82,34.03,2023-05-01,井盖缺失,,\n")
    assert result.frame["category"].iloc[0] == "0101"


def test_gbk_file_is_detected_and_refused_when_read_as_utf8(tmp_path):
    path = tmp_path / "gbk.csv"
    path.write_bytes((HEADER + "A1,113.82,34.03,2023-05-01,0101,建设路,\n").encode("gbk"))
    raw, _, used = read_incident_file(path)
    assert raw["address"].iloc[0] == "建设路"
    assert (used.encoding, used.encoding_detected) == ("gb18030", True)
    with pytest.raises(GridmapError, match="not valid utf-8 .* reads as gb18030"):
        read_incident_file(path, encoding="utf-8")
    raw, _, used = read_incident_file(path, encoding="gb18030")
    assert raw["address"].iloc[0] == "建设路" and not used.encoding_detected


def test_empty_file_is_refused(tmp_path):
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(GridmapError, match="is empty"):
        read_incident_file(tmp_path / "empty.csv")


def test_header_only_file_gives_zero_rows(tmp_path):
    result = _clean(tmp_path, "")
    assert result.rows_in == 0 and result.frame.empty and result.rejected == []


def test_missing_id_column_names_the_columns(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("foo,lon,lat\n1,2,3\n")
    raw, _, _ = read_incident_file(path)
    with pytest.raises(GridmapError, match="no id column 'id'.*use --id-field"):
        clean_incidents(raw, source="patrol")


def test_geojson_points_and_non_points(tmp_path):
    doc = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "id": "g1",
                "properties": {"reported_at": "2023-01-02T10:00:00+08:00", "category": "0101"},
                "geometry": {"type": "Point", "coordinates": [113.82, 34.03]},
            },
            {
                "type": "Feature",
                "properties": {"id": "g2", "reported_at": "2023-01-02", "category": "0101"},
                "geometry": {"type": "LineString", "coordinates": [[113.8, 34], [113.9, 34.1]]},
            },
        ],
    }
    path = tmp_path / "p.geojson"
    path.write_text(json.dumps(doc))
    raw, fmt, _ = read_incident_file(path)
    result = clean_incidents(raw, source="patrol", categories=load_taxonomy())
    assert fmt == "geojson"
    assert list(result.frame["external_id"]) == ["g1"]
    assert "geometry is a LineString, not a Point" in result.rejected[0]["reason"]


def test_open311_requests_map_their_fields(tmp_path):
    requests = [
        {
            "service_request_id": "311-1",
            "service_code": "0101",
            "lat": 34.03,
            "long": 113.82,
            "requested_datetime": "2023-03-01T09:00:00+08:00",
            "description": "manhole",
            "status": "open",
        }
    ]
    path = tmp_path / "r.json"
    path.write_text(json.dumps(requests))
    raw, fmt, _ = read_incident_file(path)
    result = clean_incidents(raw, fields=FieldMap(), source="resident", categories=load_taxonomy())
    assert fmt == "open311"
    row = result.frame.iloc[0]
    assert (row["external_id"], row["lon"], row["category"]) == ("311-1", 113.82, "0101")


def test_source_column_per_row_and_invalid_source(tmp_path):
    path = tmp_path / "s.csv"
    path.write_text(
        "id,lon,lat,reported_at,category,source\n"
        "1,113.82,34.03,2023-01-01,0101,police_110\n"
        "2,113.82,34.03,2023-01-01,0101,Bad Source!\n"
    )
    raw, _, _ = read_incident_file(path)
    result = clean_incidents(raw, categories=load_taxonomy())
    assert list(result.frame["source"]) == ["police_110"]
    assert "invalid source 'bad source!'" in result.rejected[0]["reason"]
