"""A city's own data in PostGIS: stored taxonomy versions, category maps, historical tickets."""

from __future__ import annotations

import pandas as pd
import pytest
from sqlalchemy import inspect, text

from app.db import repo
from app.db import taxonomy as taxonomy_rows
from app.services.incident_import import import_incident_file
from app.services.taxonomy import Taxonomy, export_taxonomy, import_taxonomy
from gis.errors import ValidationError
from gis.incidents import FieldMap
from gis.tables import read_table, write_table
from gis.taxonomy import load_taxonomy
from tests.helpers import engine_url, make_client

pytestmark = pytest.mark.db

CITY_ITEMS = [
    ("10", "市容环境", "City appearance", "1001", "占道经营", "Street vending", "6"),
    ("10", "市容环境", "City appearance", "1002", "暴露垃圾", "Exposed garbage", "24"),
    ("20", "治安", "Public order", "2001", "盗窃", "Theft", "48"),
]


def _city_taxonomy(path):
    columns = list(load_taxonomy().columns)
    write_table(pd.DataFrame(CITY_ITEMS, columns=columns), path)
    return path


def test_migration_seeds_version_one_and_downgrades(clean_db):
    from alembic import command

    from app.db.session import alembic_config, upgrade

    with clean_db.connect() as conn:
        version = taxonomy_rows.current_version(conn)
        assert version is not None and version.source == "data/taxonomy.csv"
        stored = taxonomy_rows.items_frame(conn, version.id)
    pd.testing.assert_frame_equal(stored, load_taxonomy().sort_values("code", ignore_index=True))
    url = engine_url(clean_db)
    command.downgrade(alembic_config(url), "0004")
    try:
        with clean_db.connect() as conn:
            assert not inspect(conn).has_table("taxonomy_version")
            assert "taxonomy_version" not in {
                c["name"] for c in inspect(conn).get_columns("incident")
            }
    finally:
        upgrade(url)
    with clean_db.connect() as conn:
        assert taxonomy_rows.current_version(conn).items == len(load_taxonomy())


def test_imported_taxonomy_is_the_one_in_use(clean_db, tmp_path):
    live = Taxonomy(clean_db)
    assert "0101" in live.by_code
    before = live.version
    stored = import_taxonomy(clean_db, _city_taxonomy(tmp_path / "city.xlsx"))
    assert (stored.items, stored.majors, stored.read.sheet) == (3, 2, "Sheet1")
    live.refresh(force=True)
    assert live.version == stored.version != before
    assert set(live.by_code) == {"1001", "1002", "2001"}
    assert live.name("2001", "en") == "Theft"
    out = tmp_path / "export.csv"
    assert export_taxonomy(clean_db, out) == 3
    assert out.read_bytes().startswith(b"\xef\xbb\xbf")
    assert list(read_table(out)[0]["code"]) == ["1001", "1002", "2001"]
    assert export_taxonomy(clean_db, tmp_path / "old.xlsx", version=before) == len(load_taxonomy())


def test_bad_taxonomy_stores_nothing(clean_db, tmp_path):
    path = tmp_path / "bad.csv"
    rows = [*CITY_ITEMS, ("20", "治安", "Public order", "2001", "重复", "Duplicate", "-1")]
    pd.DataFrame(rows, columns=list(load_taxonomy().columns)).to_csv(
        path, index=False, encoding="gbk"
    )
    with clean_db.connect() as conn:
        versions = len(taxonomy_rows.list_versions(conn))
    with pytest.raises(ValidationError) as info:
        import_taxonomy(clean_db, path)
    assert {p["row"] for p in info.value.problems} == {4}
    assert len(info.value.problems[0]["reason"]) > 0
    with clean_db.connect() as conn:
        assert len(taxonomy_rows.list_versions(conn)) == versions


def test_api_taxonomy_and_open311_services_follow_the_stored_taxonomy(clean_db, tmp_path):
    with make_client(clean_db) as client:
        first = client.get("/taxonomy").json()
        assert len(first["items"]) == len(load_taxonomy())
        stored = import_taxonomy(clean_db, _city_taxonomy(tmp_path / "city.csv"))
        client.app.state.gridmap.taxonomy.refresh(force=True)
        now = client.get("/taxonomy").json()
        assert now["version"] == stored.version and now["source"] == "city.csv"
        assert [i["code"] for i in now["items"]] == ["1001", "1002", "2001"]
        services = client.get("/open311/v2/services.json").json()
        assert sorted(s["service_code"] for s in services) == ["1001", "1002", "2001"]
        old = client.get("/taxonomy", params={"version": first["version"]}).json()
        assert len(old["items"]) == len(load_taxonomy())
        assert client.get("/taxonomy", params={"version": 999}).status_code == 404
        assert client.get("/taxonomy", params={"version": "x"}).status_code == 422


def _tickets(tmp_path, name="tickets.csv"):
    path = tmp_path / name
    path.write_bytes(
        (
            "编号,经度,纬度,上报时间,类别,状态,结案时间\n"
            "T1,113.805,34.005,2024-01-01 08:00,占道摆摊,结案,2024-01-01 12:00\n"
            "T2,113.805,34.005,2024-01-01 08:00,遛狗,上报,\n"
            "T3,113.805,34.005,2024-01-01 08:00,乱停乱放,结案,2023-12-31 08:00\n"
            "T4,113.805,34.005,2024-01-01 08:00,,立案,\n"
        ).encode("gbk")
    )
    return path


FIELDS = FieldMap(
    id="编号",
    lon="经度",
    lat="纬度",
    time="上报时间",
    category="类别",
    status="状态",
    closed_at="结案时间",
)


def test_tickets_keep_history_taxonomy_version_and_count_uncategorised(clean_db, tmp_path):
    mapping = tmp_path / "map.csv"
    mapping.write_text("source_value,code\n占道摆摊,0202\n", encoding="utf-8")
    report = import_incident_file(
        clean_db,
        _tickets(tmp_path),
        fields=FIELDS,
        source="hotline_12345",
        category_map=mapping,
        unknown_category="keep",
    )
    assert report.read.encoding == "gb18030"
    assert (report.rows_in, report.rejected, report.uncategorised_count) == (4, 1, 2)
    assert report.uncategorised == {"遛狗": 1, "": 1}
    assert "closed_at" in report.rejected_rows[0]["reason"] and report.rejected_rows[0]["row"] == 4
    with clean_db.connect() as conn:
        version = taxonomy_rows.current_version_id(conn)
        rows = conn.execute(
            text(
                "SELECT external_id, category, status, closed_at IS NOT NULL AS closed, "
                "taxonomy_version FROM incident ORDER BY external_id"
            )
        ).all()
        batch = conn.execute(text("SELECT report FROM import_batch")).scalar_one()
    assert [tuple(r) for r in rows] == [
        ("T1", "0202", "closed", True, version),
        ("T2", None, "reported", False, None),
        ("T4", None, "registered", False, None),
    ]
    assert batch["uncategorised"] == {"遛狗": 1, "": 1}
    assert batch["by_loop_status"] == {"closed": 1, "reported": 1, "registered": 1}


def test_unmapped_category_under_reject_is_a_rejected_row(clean_db, tmp_path):
    report = import_incident_file(
        clean_db, _tickets(tmp_path), fields=FIELDS, source="patrol", unknown_category="reject"
    )
    reasons = {r["row"]: r["reason"] for r in report.rejected_rows}
    assert reasons[2] == "unknown category '占道摆摊' (not in the taxonomy)"
    assert reasons[5] == "missing category"
    with clean_db.connect() as conn:
        kept = repo.rejected_rows(conn, report.batch_id)
    assert len(kept) == report.rejected == 4 - report.stored - report.unlocated


def test_chicago_crimes_import_with_a_category_map_from_primary_type(
    clean_db, chicago_dir, tmp_path
):
    crimes = chicago_dir / "chicago_crimes_2012_sample_10k.csv"
    if not crimes.exists():
        pytest.skip(f"{crimes} not found")
    raw, _ = read_table(crimes)
    types = sorted(raw["primary_type"].str.strip().unique())
    # Every Chicago crime type is a public-order matter in the default taxonomy (治安隐患).
    mapping = pd.DataFrame({"source_value": types, "code": ["0406"] * len(types)})
    map_path = write_table(mapping, tmp_path / "chicago_map.xlsx")
    fields = FieldMap(
        id="case_number",
        lon="longitude",
        lat="latitude",
        time="date",
        category="primary_type",
        address="block",
        description="description",
    )
    report = import_incident_file(
        clean_db,
        crimes,
        fields=fields,
        source="police_110",
        category_map=map_path,
        unknown_category="reject",
    )
    assert report.rows_in == len(raw)
    assert report.stored + report.unlocated + report.rejected == len(raw)
    assert not [r for r in report.rejected_rows if "category" in r["reason"]]
    assert report.category_map_read.sheet == "Sheet1"
    with clean_db.connect() as conn:
        by_category = dict(
            (c, n)
            for c, n in conn.execute(text("SELECT category, count(*) FROM incident GROUP BY 1"))
        )
    assert by_category == {"0406": report.stored + report.unlocated}
