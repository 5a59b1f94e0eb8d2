"""A city's own files without a database: office tables, encodings, category maps, histories."""

from __future__ import annotations

from dataclasses import replace

import geopandas as gpd
import numpy as np
import openpyxl
import pandas as pd
import pytest
import shapely

from gis.areas import read_areas, shapefile_encoding
from gis.errors import GridmapError, ValidationError
from gis.incidents import (
    HISTORY_COLUMNS,
    STEP_COLUMNS,
    FieldMap,
    _HistoryCheck,
    _parse_time,
    _ticket,
    clean_incidents,
    field_map_from_table,
    read_incident_file,
)
from gis.tables import read_table, write_table
from gis.taxonomy import TAXONOMY_COLUMNS, load_taxonomy, read_category_map, read_taxonomy

NAMES = ["七里店街道", "建设路社区", "魏都区丁庄街道"]


def _xlsx(path, rows, sheet="Sheet1", extra_sheet=None):
    book = openpyxl.Workbook()
    ws = book.active
    ws.title = sheet
    for row in rows:
        ws.append(row)
    if extra_sheet:
        other = book.create_sheet(extra_sheet[0])
        for row in extra_sheet[1]:
            other.append(row)
    book.save(path)
    return path


# -- office tables ---------------------------------------------------------------------
@pytest.mark.parametrize(
    ("encoding", "expected"), [("gbk", "gb18030"), ("utf-8", "utf-8"), ("utf-8-sig", "utf-8-sig")]
)
def test_csv_encoding_is_detected_and_reported(tmp_path, encoding, expected):
    path = tmp_path / "t.csv"
    path.write_bytes("编号,名称\n001,七里店街道\n002,建设路社区\n".encode(encoding))
    frame, read = read_table(path)
    assert list(frame.columns) == ["编号", "名称"]
    assert list(frame["编号"]) == ["001", "002"]  # codes stay text, leading zeros kept
    assert list(frame["名称"]) == ["七里店街道", "建设路社区"]
    assert (read.encoding, read.encoding_detected) == (expected, True)
    assert expected in read.describe()


def test_gbk_csv_read_as_utf8_is_refused_naming_the_detected_encoding(tmp_path):
    path = tmp_path / "gbk.csv"
    path.write_bytes("名称\n七里店街道\n".encode("gbk"))
    with pytest.raises(ValidationError, match="not valid utf-8.*reads as gb18030"):
        read_table(path, encoding="utf-8")
    frame, read = read_table(path, encoding="gbk")
    assert frame["名称"].iloc[0] == "七里店街道" and not read.encoding_detected


def test_latin1_bytes_are_not_guessed(tmp_path):
    path = tmp_path / "latin.csv"
    path.write_bytes("name\ncaf\xe9,\xe9\n".encode("latin-1"))
    with pytest.raises(ValidationError, match="neither UTF-8 nor GB18030"):
        read_table(path)


def test_xlsx_cells_are_read_as_the_text_typed(tmp_path):
    path = _xlsx(
        tmp_path / "t.xlsx",
        [
            ["编号", "电话", "经度", "日期", "名称"],
            ["0101", 13800138000, 113.8215, pd.Timestamp("2024-03-01 08:30").to_pydatetime(), "甲"],
            ["0102", None, 113.5, None, "乙"],
        ],
    )
    frame, read = read_table(path)
    assert read.sheet == "Sheet1" and read.format == "xlsx"
    assert frame.to_dict("records") == [
        {
            "编号": "0101",
            "电话": "13800138000",
            "经度": "113.8215",
            "日期": "2024-03-01 08:30:00",
            "名称": "甲",
        },
        {"编号": "0102", "电话": "", "经度": "113.5", "日期": "", "名称": "乙"},
    ]


def test_xlsx_sheet_by_name_or_index_and_a_missing_sheet(tmp_path):
    path = _xlsx(tmp_path / "t.xlsx", [["a"], ["1"]], extra_sheet=("第二页", [["b"], ["2"]]))
    assert read_table(path, sheet="第二页")[0]["b"].tolist() == ["2"]
    assert read_table(path, sheet=1)[0]["b"].tolist() == ["2"]
    assert read_table(path, sheet="1")[1].sheet == "第二页"
    with pytest.raises(ValidationError, match="no sheet '汇总'; sheets: Sheet1, 第二页"):
        read_table(path, sheet="汇总")


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("t.docx", b"x", "unsupported table format .docx"),
        ("t.xlsx", b"not a zip at all", "not a readable workbook"),
        ("empty.csv", b"", "is empty"),
        ("missing.csv", None, "file not found"),
    ],
)
def test_bad_tables_are_refused_clearly(tmp_path, name, content, message):
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ValidationError, match=message):
        read_table(path)


def test_write_table_csv_has_a_bom_and_xlsx_a_frozen_chinese_header(tmp_path):
    frame = pd.DataFrame({"编号": ["0101"], "名称": ["七里店街道办事处"], "n": [3]})
    csv_path = write_table(frame, tmp_path / "out.csv")
    assert csv_path.read_bytes().startswith(b"\xef\xbb\xbf")
    plain = write_table(frame, tmp_path / "plain.csv", excel_csv=False)
    assert not plain.read_bytes().startswith(b"\xef\xbb\xbf")
    xlsx_path = write_table(frame, tmp_path / "out.xlsx")
    sheet = openpyxl.load_workbook(xlsx_path).active
    assert sheet.freeze_panes == "A2"
    assert [c.value for c in sheet[1]] == ["编号", "名称", "n"]
    assert sheet.column_dimensions["B"].width >= 16  # eight CJK characters, double width
    back, _ = read_table(xlsx_path)
    assert back.to_dict("records") == [{"编号": "0101", "名称": "七里店街道办事处", "n": "3"}]
    with pytest.raises(ValidationError, match="unsupported output format .txt"):
        write_table(frame, tmp_path / "out.txt")


# -- taxonomy and category maps ----------------------------------------------------------
def test_taxonomy_reads_from_xlsx_and_gbk_csv(tmp_path):
    default = load_taxonomy()
    workbook = tmp_path / "taxonomy.xlsx"
    write_table(default, workbook)
    gbk = tmp_path / "taxonomy.csv"
    gbk.write_bytes(default.to_csv(index=False).encode("gbk"))
    for path in (workbook, gbk):
        frame, _ = read_taxonomy(path)
        pd.testing.assert_frame_equal(frame, default)


def test_bad_taxonomy_lists_every_problem(tmp_path):
    path = tmp_path / "bad.csv"
    rows = [
        ",".join(TAXONOMY_COLUMNS),
        "01,城市运行,City,0101,井盖,Manhole,24",
        "01,城市运行,City,0101,重复,Duplicate,24",
        "02,公共管理,Public,0302,错类,Wrong prefix,8",
        "03,公共服务,Service,0301,无时限,No deadline,zero",
    ]
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    with pytest.raises(ValidationError) as info:
        read_taxonomy(path)
    reasons = {p["row"]: p["reason"] for p in info.value.problems}
    assert "duplicate code '0101'" in reasons[2]
    assert "does not extend its major code" in reasons[3]
    assert "deadline_hours" in reasons[4]


def test_category_map_translates_a_citys_words(tmp_path):
    path = tmp_path / "map.csv"
    path.write_bytes("source_value,code\n占道摆摊,0202\n 违停 ,乱停乱放\n".encode("gbk"))
    mapping, read = read_category_map(path, load_taxonomy())
    assert mapping == {"占道摆摊": "0202", "违停": "0201"}
    assert read.encoding == "gb18030"


def test_bad_category_map_lists_every_problem(tmp_path):
    path = tmp_path / "map.csv"
    path.write_text(
        "source_value,code\n占道摆摊,0202\n占道摆摊,0201\n遛狗,9999\n,0101\n", encoding="utf-8"
    )
    with pytest.raises(ValidationError) as info:
        read_category_map(path, load_taxonomy())
    reasons = {p["row"]: p["reason"] for p in info.value.problems}
    assert "mapped to '0202' in row 1 and to '0201' here" in reasons[2]
    assert "'9999' is not in the taxonomy" in reasons[3]
    assert "empty" in reasons[4]


# -- incidents: categories, sources, histories -------------------------------------------
HEADER = "id,lon,lat,reported_at,category\n"


def _clean(tmp_path, body, header=HEADER, **kwargs):
    path = tmp_path / "in.csv"
    path.write_text(header + body, encoding="utf-8")
    raw, _, _ = read_incident_file(path)
    kwargs.setdefault("source", "hotline_12345")
    return clean_incidents(raw, categories=load_taxonomy(), **kwargs)


def test_unmapped_category_is_rejected_under_reject_and_counted_under_keep(tmp_path):
    body = (
        "1,113.8,34.0,2024-01-01,占道摆摊\n2,113.8,34.0,2024-01-01,遛狗\n3,113.8,34.0,2024-01-01,\n"
    )
    mapping = {"占道摆摊": "0202"}
    strict = _clean(tmp_path, body, category_map=mapping, unknown_category="reject")
    assert list(strict.frame["category"]) == ["0202"]
    reasons = {r["row"]: r["reason"] for r in strict.rejected}
    assert reasons == {
        3: "unknown category '遛狗' (not in the taxonomy or the category map)",
        4: "missing category",
    }
    kept = _clean(tmp_path, body, category_map=mapping, unknown_category="keep")
    assert list(kept.frame["category"]) == ["0202", None, None]
    assert kept.rejected == [] and kept.uncategorised == {"遛狗": 1, "": 1}


def test_source_field_per_row_and_source_as_default(tmp_path):
    body = "1,113.8,34.0,2024-01-01,0101,police_110\n2,113.8,34.0,2024-01-01,0101,\n"
    result = _clean(
        tmp_path, body, header=HEADER.strip() + ",来源\n", fields=FieldMap(source="来源")
    )
    assert list(result.frame["source"]) == ["police_110", "hotline_12345"]
    without = _clean(
        tmp_path,
        body,
        header=HEADER.strip() + ",来源\n",
        fields=FieldMap(source="来源"),
        source=None,
    )
    assert list(without.frame["source"]) == ["police_110"]
    assert "missing source" in without.rejected[0]["reason"]


HISTORY = FieldMap(
    status="status",
    handling_level="level",
    registered_at="registered_at",
    dispatched_at="dispatched_at",
    closed_at="closed_at",
)
HISTORY_HEADER = (
    "id,lon,lat,reported_at,category,status,level,registered_at,dispatched_at,closed_at\n"
)


def test_historical_tickets_keep_status_level_and_step_times(tmp_path):
    body = (
        "1,113.8,34.0,2024-01-01 08:00,0101,结案,社区,2024-01-01 09:00,2024-01-01 10:00,"
        "2024-01-02 10:00\n"
        "2,113.8,34.0,2024-01-01 08:00,0101,立案,,2024-01-01 09:00,,\n"
        "3,113.8,34.0,2024-01-01 08:00,0101,Dispatched,grid,,2024-01-01 10:00,\n"
        "4,113.8,34.0,2024-01-01 08:00,0101,,,,,\n"
        "5,113.8,34.0,2024-01-01 08:00,0101,,网格,2024-01-01 09:00,,2024-01-03 09:00\n"
    )
    result = _clean(tmp_path, body, header=HISTORY_HEADER, fields=HISTORY)
    assert result.rejected == []
    frame = result.frame.set_index("external_id")
    assert list(frame["status"]) == ["closed", "registered", "dispatched", "reported", "closed"]
    assert list(frame["handling_level"].fillna("-")) == ["community", "-", "grid", "-", "grid"]
    assert frame.at["1", "closed_at"] == pd.Timestamp("2024-01-02 10:00", tz="Asia/Shanghai")
    # step times are a time column (a million tickets are not a million objects): NaT for none
    assert pd.api.types.is_datetime64_any_dtype(frame["closed_at"])
    assert pd.isna(frame.at["2", "closed_at"])


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("结案,,,,2023-12-31 08:00", "closed_at 2023-12-31T08:00:00+08:00 is before reported_at"),
        (
            "结案,,2024-01-01 12:00,2024-01-01 10:00,",
            "dispatched_at 2024-01-01T10:00:00+08:00 is before registered_at",
        ),
        (
            "派遣,网格,,2024-01-01 10:00,2024-01-02 10:00",
            "closed_at is given but the status is only dispatched",
        ),
        ("上报,街道,,,", "a handling level is set before the ticket was registered"),
        ("已归档,,,,", "unknown status '已归档'"),
        ("结案,区县,,,", "unknown handling level '区县'"),
        ("结案,,,,yesterday", "unparseable closed_at 'yesterday'"),
    ],
)
def test_impossible_histories_are_rejected_with_the_reason(tmp_path, line, reason):
    body = f"1,113.8,34.0,2024-01-01 08:00,0101,{line}\n2,113.8,34.0,2024-01-01 08:00,0101,,,,,\n"
    result = _clean(tmp_path, body, header=HISTORY_HEADER, fields=HISTORY)
    assert [r["row"] for r in result.rejected] == [2]
    assert reason in result.rejected[0]["reason"]
    assert list(result.frame["external_id"]) == ["2"]


#: What archives write in each history column: possible and impossible, every rule hit.
_STEP_TEXTS = [
    "",
    "",
    "2024-01-01 07:00",  # before the report
    "2024-01-01 09:00",
    "2024-01-01T03:30:00Z",  # 11:30 in Beijing
    "2024-01-02 10:00:00.000000500",  # nanoseconds
    "2024/01/03 8:00",  # not ISO: parsed on its own
    "2500-01-01",  # beyond nanoseconds
    "yesterday",
    "2024-02-30",
]
_STATUS_TEXTS = [
    "",
    "",
    "结案",
    "closed",
    "Dispatched",
    "已立案",
    "上报",
    "处置",
    "已归档",
    "VERIFIED",
]
_LEVEL_TEXTS = ["", "", "", "网格", "grid", "社区", "街道", "Street", "区县"]
_REPORT_TEXTS = ["2024-01-01 08:00", "2024-01-01 08:00", "2024-01-01T00:00:00Z", "", "soon"]


def _random_histories(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)

    def pick(texts: list[str]) -> list[str]:
        return [texts[k] for k in rng.integers(0, len(texts), n)]

    raw = pd.DataFrame(
        {
            "id": [str(i) for i in range(n)],
            "lon": "113.8",
            "lat": "34.0",
            "reported_at": pick(_REPORT_TEXTS),
            "category": "0101",
            "status": pick(_STATUS_TEXTS),
            "level": pick(_LEVEL_TEXTS),
        }
    )
    for column in STEP_COLUMNS:  # most rows give a few steps, in order or not
        raw[column] = np.where(rng.random(n) < 0.4, pick(_STEP_TEXTS), "")
    return raw


def test_the_column_check_gives_every_row_the_reason_of_the_row_rules():
    """The history check a column at a time (``_HistoryCheck``, what a million-row import
    runs) against the rules one row at a time (``_ticket``): the same reason for every
    impossible history, the same status, level and times for every possible one."""
    fields = replace(HISTORY, handling_level="level", verified_at="verified_at")
    fields = replace(fields, handled_at="handled_at")
    assert all(getattr(fields, c) for c in HISTORY_COLUMNS)
    raw = _random_histories(4000, seed=20240101)
    reported = pd.Series([_parse_time(t) for t in raw["reported_at"]], dtype=object)
    expected = [_ticket(raw, fields, i, reported.iat[i]) for i in range(len(raw))]
    check = _HistoryCheck(raw, fields, reported)
    problems = check.problems()
    assert list(problems) == [problem for _, problem in expected]
    reasons = {
        p.split(" ")[0] if p.startswith("unknown") else p.split(" ", 1)[1] for p in problems if p
    }
    assert len(reasons) >= 8, reasons  # every kind of impossible history was drawn

    # what a file import keeps: the rows with a report time and a possible history
    result = clean_incidents(raw, fields=fields, source="patrol", categories=load_taxonomy())
    rejected = {r["row"] - 2: r["reason"] for r in result.rejected}
    for i, (_, problem) in enumerate(expected):
        if reported.iat[i] is not None:
            assert rejected.get(i) == problem, i
    kept = result.frame.set_index(result.frame["row"] - 2)
    assert len(kept) > 500
    for i, row in kept.iterrows():
        record = expected[i][0]
        assert (row["status"], row["handling_level"]) == (
            record["status"],
            record["handling_level"],
        )
        for column in STEP_COLUMNS:
            want = record[column]
            got = row[column]
            assert (pd.isna(got) and want is None) or got == want.floor("us"), (i, column)


def test_columns_table_maps_chinese_headers(tmp_path):
    table = pd.DataFrame({"field": ["id", "lon", "status"], "column": ["编号", "经度", "状态"]})
    fields = field_map_from_table(table, FieldMap(lat="纬度"))
    assert (fields.id, fields.lon, fields.lat, fields.status) == ("编号", "经度", "纬度", "状态")
    bad = pd.DataFrame({"field": ["longitude", "lat"], "column": ["经度", ""]})
    with pytest.raises(ValidationError) as info:
        field_map_from_table(bad)
    assert [p["row"] for p in info.value.problems] == [1, 2]


def test_incident_xlsx_is_read_without_the_utf8_hint(tmp_path):
    path = _xlsx(
        tmp_path / "tickets.xlsx",
        [["编号", "经度", "纬度", "时间", "类别"], ["A1", 113.8, 34.0, "2024-01-01 08:00", "0101"]],
    )
    raw, fmt, read = read_incident_file(path)
    assert fmt == "xlsx" and read.sheet == "Sheet1"
    fields = FieldMap(id="编号", lon="经度", lat="纬度", time="时间", category="类别")
    result = clean_incidents(raw, fields=fields, source="patrol", categories=load_taxonomy())
    assert result.rejected == [] and result.frame["lon"].iloc[0] == pytest.approx(113.8)
    broken = tmp_path / "broken.xlsx"
    broken.write_bytes(b"\xd0\xcf\x11\xe0 not really a workbook")
    with pytest.raises(GridmapError) as info:
        read_incident_file(broken)
    assert "utf-8" not in str(info.value) and "workbook" in str(info.value)


# -- shapefiles and GeoJSON in GBK -------------------------------------------------------
def _layer():
    boxes = [shapely.box(113.8 + i * 0.01, 34.0, 113.81 + i * 0.01, 34.01) for i in range(3)]
    return gpd.GeoDataFrame({"name": NAMES, "code": ["01", "02", "03"]}, geometry=boxes, crs=4326)


def test_gbk_shapefile_without_cpg_is_read_without_mojibake(tmp_path):
    path = tmp_path / "streets.shp"
    _layer().to_file(path, engine="pyogrio", encoding="gbk")
    path.with_suffix(".cpg").unlink()
    plain = gpd.read_file(path, engine="pyogrio")  # what GDAL alone makes of it
    assert list(plain["name"]) != NAMES
    assert shapefile_encoding(path) == "gb18030"
    layer = read_areas(path)
    assert list(layer["name"]) == NAMES and layer.attrs["encoding"] == "gb18030"
    forced = read_areas(path, encoding="ISO-8859-1")  # --encoding overrides detection
    assert list(forced["name"]) != NAMES and forced.attrs["encoding"] == "ISO-8859-1"


def test_shapefile_cpg_is_honoured(tmp_path):
    path = tmp_path / "streets.shp"
    _layer().to_file(path, engine="pyogrio", encoding="utf-8")
    path.with_suffix(".cpg").write_text("UTF-8")
    layer = read_areas(path)
    assert list(layer["name"]) == NAMES and layer.attrs["encoding"] == "UTF-8"


def test_gbk_geojson_is_detected(tmp_path):
    path = tmp_path / "streets.geojson"
    path.write_bytes(_layer().to_json(ensure_ascii=False).encode("gbk"))
    layer = read_areas(path)
    assert list(layer["name"]) == NAMES and layer.attrs["encoding"] == "gb18030"
    with pytest.raises(ValidationError, match="reads as gb18030"):
        read_areas(path, encoding="utf-8")
