"""A city package loaded through the ``gridmap`` script as a user runs it (pseudo-terminal).

GBK files with Chinese headers and the city's own categories, a category map in
XLSX, a GBK Shapefile without ``.cpg``, a taxonomy of the city's own: no garbled
text is stored and the import report's counts equal counts computed from the input.
"""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import openpyxl
import pandas as pd
import pytest
import shapely
from sqlalchemy import text

from gis.tables import read_table, write_table
from gis.taxonomy import TAXONOMY_COLUMNS
from tests.terminal import Cli, Run

# The tests build on each other: areas, then the taxonomy, then tickets under it.
pytestmark = [pytest.mark.db, pytest.mark.slow, pytest.mark.in_file_order]

GRIDS = ["七里店第一网格", "丁庄第二网格", "建设路第三网格"]
GRID_CODES = ["411002001001001", "411002001001002", "411002001001003"]
CITY_TAXONOMY = [
    ("10", "市容环境", "City appearance", "1001", "占道经营", "Street vending", "6"),
    ("10", "市容环境", "City appearance", "1002", "暴露垃圾", "Exposed garbage", "24"),
    ("20", "治安", "Public order", "2001", "盗窃", "Theft", "48"),
]
# The hotline's own words → the city's taxonomy codes.
CATEGORY_MAP = {"摊贩占道": "1001", "垃圾乱堆": "1002", "偷盗": "2001"}
TICKETS = pd.DataFrame(
    {
        "工单编号": ["C1", "C2", "C3", "C4", "C5", "C6", "C7"],
        "经度": ["113.805", "113.815", "113.825", "113.805", "113.815", "", "113.805"],
        "纬度": ["34.005"] * 5 + ["", "34.005"],
        "上报时间": ["2024-03-01 08:00"] * 7,
        "问题类型": ["摊贩占道", "垃圾乱堆", "偷盗", "噪音扰民", "摊贩占道", "偷盗", "垃圾乱堆"],
        "办理状态": ["结案", "处置", "上报", "已结案", "派遣", "立案", "结案"],
        "处置层级": ["网格", "社区", "", "街道", "网格", "", "网格"],
        "结案时间": ["2024-03-02 09:00", "", "", "2024-03-03 10:00", "", "", "2024-02-28 10:00"],
        "地址": [
            "七里店路1号",
            "丁庄路2号",
            "建设路3号",
            "七里店路4号",
            "丁庄路5号",
            "",
            "建设路7号",
        ],
    }
)


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("city")


def _rows(cli: Cli, sql: str) -> list[tuple]:
    with cli.engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text(sql))]


def test_gbk_shapefile_without_cpg_is_stored_without_mojibake(cli: Cli, files: Path):
    boxes = [shapely.box(113.80 + i * 0.01, 34.0, 113.81 + i * 0.01, 34.01) for i in range(3)]
    layer = gpd.GeoDataFrame({"code": GRID_CODES, "name": GRIDS}, geometry=boxes, crs=4326)
    path = files / "grids.shp"
    layer.to_file(path, engine="pyogrio", encoding="gbk")
    path.with_suffix(".cpg").unlink()
    run = cli(
        "areas", "import", path, "--level", "grid", "--code-field", "code",
        "--name-field", "name", "--parent-code", "411002001001", "--generation", "city",
    ).ok()  # fmt: skip
    assert "encoding: gb18030" in run.flat and "stored 3 grid areas" in run.flat
    assert _rows(cli, "SELECT code, name FROM area ORDER BY code") == list(
        zip(GRID_CODES, GRIDS, strict=True)
    )


def test_city_taxonomy_import_export_and_a_bad_file(cli: Cli, files: Path):
    good = files / "taxonomy.xlsx"
    write_table(pd.DataFrame(CITY_TAXONOMY, columns=TAXONOMY_COLUMNS), good)
    run = cli("taxonomy", "import", good).ok()
    assert "taxonomy version 2: 3 items in 2 major classes" in run.flat
    bad = files / "bad_taxonomy.csv"
    rows = [*CITY_TAXONOMY, ("30", "其他", "Other", "4001", "错码", "Wrong prefix", "0")]
    pd.DataFrame(rows, columns=TAXONOMY_COLUMNS).to_csv(bad, index=False, encoding="gbk")
    refused = cli("taxonomy", "import", bad)
    assert refused.code == 2, refused.output
    assert "does not extend its major code" in refused.flat and "nothing was stored" in refused.flat
    assert _rows(cli, "SELECT count(*) FROM taxonomy_version") == [(2,)]
    out = files / "taxonomy_out.csv"
    assert "wrote 3 taxonomy items" in cli("taxonomy", "export", "-o", out).ok().flat
    assert out.read_bytes().startswith(b"\xef\xbb\xbf")
    assert read_table(out)[0]["name_zh"].tolist() == ["占道经营", "暴露垃圾", "盗窃"]


def test_gbk_historical_tickets_with_a_category_map(cli: Cli, files: Path):
    tickets = files / "工单.csv"
    TICKETS.to_csv(tickets, index=False, encoding="gbk")
    mapping = files / "分类对照.xlsx"
    book = openpyxl.Workbook()
    book.active.append(["source_value", "code"])
    for word, code in CATEGORY_MAP.items():
        book.active.append([word, code])
    book.save(mapping)
    columns = files / "columns.csv"
    pd.DataFrame(
        {
            "field": ["id", "lon", "lat", "time", "category", "status", "handling_level",
                      "closed_at", "address"],
            "column": ["工单编号", "经度", "纬度", "上报时间", "问题类型", "办理状态", "处置层级",
                       "结案时间", "地址"],
        }
    ).to_csv(columns, index=False, encoding="gbk")  # fmt: skip
    run = cli(
        "incidents", "import", tickets, "--columns", columns, "--category-map", mapping,
        "--source", "hotline_12345",
    ).ok()  # fmt: skip
    # What the file says, computed directly from it.
    impossible = TICKETS["结案时间"].gt("") & (TICKETS["结案时间"] < TICKETS["上报时间"])
    kept = TICKETS[~impossible]
    unmapped = int((~kept["问题类型"].isin(CATEGORY_MAP)).sum())
    assert "encoding: gb18030" in run.flat
    assert run.number(r"│ input\s+│\s+([\d,]+)") == len(TICKETS)
    assert run.number(r"│ rejected\s+│\s+([\d,]+)") == int(impossible.sum())
    stored = run.number(r"│ stored with a location\s+│\s+([\d,]+)")
    unlocated = run.number(r"│ stored unlocated\s+│\s+([\d,]+)")
    assert stored + unlocated == len(kept)
    assert run.number(r"uncategorised \(stored\): ([\d,]+)") == unmapped
    assert "closed_at 2024-02-28T10:00:00+08:00 is before reported_at" in run.flat
    stored_rows = _rows(
        cli,
        "SELECT external_id, category, status, handling_level, address FROM incident "
        "ORDER BY external_id",
    )
    status = {"结案": "closed", "处置": "handled", "上报": "reported", "派遣": "dispatched",
              "立案": "registered", "已结案": "closed"}  # fmt: skip
    level = {"网格": "grid", "社区": "community", "街道": "street", "": None}
    assert stored_rows == [
        (
            r["工单编号"],
            CATEGORY_MAP.get(r["问题类型"]),
            status[r["办理状态"]],
            level[r["处置层级"]],
            r["地址"] or None,
        )
        for r in kept.to_dict("records")
    ]
    assert _rows(
        cli, "SELECT count(*) FROM incident WHERE category IS NOT NULL AND taxonomy_version = 2"
    ) == [(len(kept) - unmapped,)]


def test_unmapped_category_under_reject_is_refused_per_row(cli: Cli, files: Path):
    path = files / "strict.csv"
    path.write_bytes(
        "id,lon,lat,reported_at,category\nS1,113.805,34.005,2024-03-01,遛狗\n".encode("gbk")
    )
    run = cli(
        "incidents", "import", path, "--source", "patrol", "--unknown-category", "reject"
    ).ok()
    assert run.number(r"│ rejected\s+│\s+([\d,]+)") == 1
    assert "unknown category '遛狗'" in run.flat
    wrong = cli("incidents", "import", path, "--source", "patrol", "--encoding", "utf-8")
    assert wrong.code == 2 and "reads as gb18030" in wrong.flat


def test_export_for_excel_has_a_bom_and_local_times(cli: Cli, files: Path):
    out = files / "incidents.csv"
    cli("incidents", "export", "-o", out).ok()
    assert out.read_bytes().startswith(b"\xef\xbb\xbf")
    frame, _ = read_table(out)
    c1 = frame.set_index("external_id").loc["C1"]
    assert c1["reported_at"] == "2024-03-01 08:00:00"  # Asia/Shanghai, as the file said
    assert c1["closed_at"] == "2024-03-02 09:00:00"
    workbook = files / "incidents.xlsx"
    cli("incidents", "export", "-o", workbook).ok()
    sheet = openpyxl.load_workbook(workbook).active
    assert sheet.freeze_panes == "A2"
    assert read_table(workbook)[0]["external_id"].tolist() == frame["external_id"].tolist()
    plain = files / "plain.csv"
    cli("incidents", "export", "-o", plain, "--no-excel").ok()
    assert not plain.read_bytes().startswith(b"\xef\xbb\xbf")
    row = read_table(plain)[0].set_index("external_id").loc["C1"]
    assert row["reported_at"] == "2024-03-01T00:00:00+00:00"


def test_gazetteer_from_an_xlsx_sheet_with_chinese_headers(cli: Cli, files: Path):
    path = files / "门牌.xlsx"
    book = openpyxl.Workbook()
    book.active.title = "说明"
    sheet = book.create_sheet("门牌")
    sheet.append(["地址", "经度", "纬度"])
    sheet.append(["七里店路1号", 113.805, 34.005])
    book.save(path)
    run = cli(
        "gazetteer", "import", path, "--sheet", "门牌", "--address-field", "地址",
        "--lon-field", "经度", "--lat-field", "纬度",
    ).ok()  # fmt: skip
    assert "sheet: 门牌" in run.flat and "stored 1 addresses" in run.flat
    assert _rows(cli, "SELECT address FROM address_point") == [("七里店路1号",)]


def test_help_lists_the_taxonomy_commands(cli: Cli):
    assert "taxonomy" in cli("--help").ok().flat
    for sub in ("import", "export"):
        run: Run = cli("taxonomy", sub, "--help").ok()
        assert f"Usage: gridmap taxonomy {sub}" in run.flat
