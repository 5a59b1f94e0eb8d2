"""The "city package" of issue 10, loaded through ``gridmap`` as an office hands it over.

A small district's boundary layers as GBK Shapefiles without ``.cpg``, an XLSX staff
roster with Chinese headers and role words, and a GBK CSV of historical tickets with
Chinese headers, the city's own categories and a category map — each loaded by the
installed script on a pseudo-terminal into a fresh database. Nothing garbled is stored,
no grid is left unstaffed, and the statistics report equals what pandas counts directly
from the files written here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import openpyxl
import pandas as pd
import pytest
import shapely
from sqlalchemy import text

from app.services.stats import SOURCE_NAMES
from gis.staff import DEFAULT_ROLES

# The fixture: the installed script on a pseudo-terminal, on a fresh database per module.
from tests.terminal import Cli

# Each test is one step of the hand-over: areas, roster, tickets, then the report.
pytestmark = [pytest.mark.db, pytest.mark.slow, pytest.mark.in_file_order]

DISTRICT = ("411002", "龙亭区", (113.80, 34.00, 113.84, 34.02))
# street code → name, its box; community code → name, box, grids across × down.
STREETS = {
    "411002001": ("七里店街道", (113.80, 34.00, 113.82, 34.02)),
    "411002002": ("繁塔街道", (113.82, 34.00, 113.84, 34.02)),
}
COMMUNITIES = {
    "411002001001": ("建设路社区", (113.80, 34.00, 113.81, 34.02), (1, 2)),
    "411002001002": ("丁庄社区", (113.81, 34.00, 113.82, 34.02), (1, 2)),
    "411002002001": ("繁塔寺社区", (113.82, 34.00, 113.84, 34.02), (2, 2)),
}
GRID_NAMES = ("第一网格", "第二网格", "第三网格", "第四网格")
LEVELS = ("district", "street", "community", "grid", "micro_grid")
GRID_ROLES = {r.code for r in DEFAULT_ROLES if r.staffs == "grid"}

# The hotline's own words → codes of data/taxonomy.csv (the seeded taxonomy, version 1).
CATEGORY_MAP = {
    "下水道井盖丢失": "0101",
    "路面坑洼": "0102",
    "摆摊设点": "0202",
    "夜间施工噪音": "0204",
    "电动车楼内充电": "0401",
    "楼道堆物": "0402",
}
UNMAPPED = "其他诉求"
STATUS_WORDS = ("上报", "立案", "派遣", "处置", "核查", "结案")
LEVEL_WORDS = {"网格": "grid", "社区": "community", "街道": "street"}
SOURCES = ("hotline_12345", "patrol", "police_110", "")  # "" → --source
DEFAULT_SOURCE = "hotline_12345"
TIME = "%Y-%m-%d %H:%M"


@dataclass
class Package:
    """The files of the hand-over and the areas they were made from."""

    root: Path
    areas: gpd.GeoDataFrame  # code, name, level, parent, geometry (every level)
    roster: Path
    roster_rows: pd.DataFrame
    tickets: Path
    category_map: Path

    def layer(self, level: str) -> Path:
        return self.root / f"{level}.shp"


@pytest.fixture(scope="module")
def city(cli: Cli) -> Cli:
    """``gridmap`` on the module's fresh database, where the office's files are loaded."""
    return cli


def _rows(city: Cli, sql: str) -> list[tuple]:
    with city.engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text(sql))]


# -- the package, as the office writes it ----------------------------------------------
def _split(box: tuple[float, ...], across: int, down: int) -> list[shapely.Polygon]:
    """``box`` cut into across × down cells, west to east then north to south; shared
    edges are the same rounded numbers on both sides, so neighbours tile exactly."""
    x0, y0, x1, y1 = box
    xs = [round(x0 + (x1 - x0) * i / across, 6) for i in range(across + 1)]
    ys = [round(y1 - (y1 - y0) * j / down, 6) for j in range(down + 1)]
    return [
        shapely.box(xs[i], ys[j + 1], xs[i + 1], ys[j]) for j in range(down) for i in range(across)
    ]


def _areas() -> gpd.GeoDataFrame:
    code, name, box = DISTRICT
    rows: list[tuple[str, str, str, str | None, shapely.Polygon]] = [
        (code, name, "district", None, shapely.box(*box))
    ]
    rows += [(c, n, "street", c[:6], shapely.box(*b)) for c, (n, b) in STREETS.items()]
    for community, (cname, box, (across, down)) in COMMUNITIES.items():
        rows.append((community, cname, "community", community[:9], shapely.box(*box)))
        for k, cell in enumerate(_split(box, across, down)):
            grid = f"{community}{k + 1:03d}"
            rows.append((grid, f"{cname}{GRID_NAMES[k]}", "grid", community, cell))
            for m, half in enumerate(_split(tuple(cell.bounds), 2, 1)):
                micro = f"{grid}{m + 1:03d}"
                rows.append(
                    (micro, f"{cname}{GRID_NAMES[k]}{m + 1}号微网格", "micro_grid", grid, half)
                )
    frame = pd.DataFrame(rows, columns=["code", "name", "level", "parent", "geometry"])
    frame["geometry"] = _on_one_lattice(list(frame["geometry"]))
    return gpd.GeoDataFrame(frame, geometry="geometry", crs=4326)


def _on_one_lattice(boxes: list[shapely.Polygon]) -> list[shapely.Polygon]:
    """Each box with a vertex wherever another box's edge meets its boundary, as a
    topologically clean layer has: a straight edge in degrees bends once projected to
    metres, so a parent's edge with fewer vertices than its children's would leave
    slivers between them."""
    xs = sorted({round(x, 6) for b in boxes for x in b.bounds[::2]})
    ys = sorted({round(y, 6) for b in boxes for y in b.bounds[1::2]})
    return [_lattice_ring(tuple(b.bounds), xs, ys) for b in boxes]


def _lattice_ring(box: tuple[float, ...], xs: list[float], ys: list[float]) -> shapely.Polygon:
    x0, y0, x1, y1 = (round(v, 6) for v in box)
    across = [x for x in xs if x0 <= x <= x1]
    down = [y for y in ys if y0 <= y <= y1]
    ring = [(x, y0) for x in across] + [(x1, y) for y in down[1:]]
    ring += [(x, y1) for x in reversed(across[:-1])] + [(x0, y) for y in reversed(down[1:-1])]
    return shapely.Polygon(ring)


def _write_layers(areas: gpd.GeoDataFrame, root: Path) -> None:
    """One GBK Shapefile per level, its ``.cpg`` removed (as many offices' files arrive)."""
    for level in LEVELS:
        layer = areas[areas["level"] == level].drop(columns="level")
        if level == "district":
            layer = layer.drop(columns="parent")
        path = root / f"{level}.shp"
        layer.to_file(path, engine="pyogrio", encoding="gbk")
        path.with_suffix(".cpg").unlink()


_SURNAMES = "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗"
_GIVEN = ("伟", "芳", "娜", "敏", "静", "磊", "洋", "艳", "勇", "军", "杰", "娟")


def _roster(areas: gpd.GeoDataFrame) -> pd.DataFrame:
    """Every grid a 网格长 and a 专职 or 兼职 worker, every micro-grid its 微网格员, and a
    第一书记 on a community (who staffs no grid)."""
    rows: list[tuple[str, str]] = []
    for grid in areas.loc[areas["level"] == "grid", "code"]:
        rows += [("网格长", grid), ("专职网格员" if int(grid[-1]) % 2 else "兼职网格员", grid)]
    rows += [("微网格员", micro) for micro in areas.loc[areas["level"] == "micro_grid", "code"]]
    rows.append(("第一书记", "411002001001"))
    names = [f"{_SURNAMES[i % 20]}{_GIVEN[i // 20 % 12]}{_GIVEN[i % 12]}" for i in range(len(rows))]
    return pd.DataFrame(
        {
            "姓名": names,
            "岗位": [role for role, _ in rows],
            "网格编码": [code for _, code in rows],
            "联系电话": [f"138{i:08d}" for i in range(len(rows))],
            "单位": [f"{STREETS[code[:9]][0]}办事处" for _, code in rows],
        }
    )


def _write_roster(roster: pd.DataFrame, path: Path) -> None:
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "网格员花名册"
    sheet.append(list(roster.columns))
    for row in roster.itertuples(index=False):
        sheet.append(list(row))  # codes and phones as text, as offices type them
    book.save(path)


def _tickets(areas: gpd.GeoDataFrame) -> pd.DataFrame:
    """Historical tickets: points inside grids, the city's words, every loop step; one ticket
    without coordinates, and three histories the closed loop forbids."""
    rng = np.random.default_rng(10)
    grids = areas[areas["level"] == "grid"].reset_index(drop=True)
    words = [*CATEGORY_MAP, UNMAPPED]
    rows = []
    for i in range(80):
        x0, y0, x1, y1 = grids.geometry.iat[int(rng.integers(len(grids)))].bounds
        status = STATUS_WORDS[int(rng.integers(len(STATUS_WORDS)))]
        reported = pd.Timestamp("2024-01-01 08:00") + pd.Timedelta(hours=int(rng.integers(8000)))
        level = "" if status == "上报" else str(rng.choice(["网格"] * 6 + ["社区"] * 2 + ["街道"]))
        word = words[int(rng.integers(len(words)))]
        road = ("七里店路", "建设路", "丁庄街", "繁塔北路")[i % 4]
        rows.append(
            {
                "工单编号": f"GD2024{i:05d}",
                "诉求类别": word,
                "问题描述": f"群众反映{road}{i + 1}号附近{word}，请尽快处理。",
                "地址": f"{road}{i + 1}号",
                "受理时间": reported.strftime(TIME),
                "办结时间": (
                    (reported + pd.Timedelta(hours=int(rng.integers(1, 96)))).strftime(TIME)
                    if status == "结案"
                    else ""
                ),
                "处置层级": level,
                "状态": status,
                "经度": f"{rng.uniform(x0 + 1e-4, x1 - 1e-4):.6f}",
                "纬度": f"{rng.uniform(y0 + 1e-4, y1 - 1e-4):.6f}",
                "来源": SOURCES[i % len(SOURCES)],
            }
        )
    rows[5].update(经度="", 纬度="")  # no coordinates, no gazetteer: stored unlocated
    # Impossible histories: closed before it was received; a closing time on a ticket only
    # dispatched; a handling level on a ticket never registered.
    rows[7].update(状态="结案", 受理时间="2024-06-02 10:00", 办结时间="2024-06-01 09:00")
    rows[11].update(状态="派遣", 处置层级="网格", 办结时间="2024-06-05 09:00")
    rows[13].update(状态="上报", 处置层级="社区", 办结时间="")
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def package(tmp_path_factory) -> Package:
    root = tmp_path_factory.mktemp("city_package")
    areas = _areas()
    _write_layers(areas, root)
    roster = _roster(areas)
    _write_roster(roster, root / "网格员花名册.xlsx")
    _tickets(areas).to_csv(root / "历史工单.csv", index=False, encoding="gbk")
    pd.DataFrame(CATEGORY_MAP.items(), columns=["source_value", "code"]).to_csv(
        root / "分类对照.csv", index=False, encoding="gbk"
    )
    return Package(
        root,
        areas,
        root / "网格员花名册.xlsx",
        roster,
        root / "历史工单.csv",
        root / "分类对照.csv",
    )


# -- what the files say, computed directly from them ------------------------------------
def _read_tickets(package: Package) -> pd.DataFrame:
    """The ticket file as the office wrote it, every cell text."""
    return pd.read_csv(package.tickets, encoding="gbk", dtype=str, keep_default_na=False)


def _impossible(tickets: pd.DataFrame) -> pd.Series:
    """The three kinds of forbidden history this package holds."""
    closed = tickets["办结时间"] != ""
    closed_before = closed & (tickets["办结时间"] < tickets["受理时间"])
    closed_but_open = closed & (tickets["状态"] != "结案")
    level_unregistered = (tickets["处置层级"] != "") & (tickets["状态"] == "上报")
    return closed_before | closed_but_open | level_unregistered


def _located_in_grids(package: Package, tickets: pd.DataFrame) -> pd.DataFrame:
    """The stored tickets with coordinates, each with the grid (read back from the
    Shapefile) that holds it and that grid's street."""
    grids = gpd.read_file(package.layer("grid"), encoding="gbk")
    kept = tickets[~_impossible(tickets) & (tickets["经度"] != "")]
    points = gpd.GeoDataFrame(
        kept,
        geometry=gpd.points_from_xy(kept["经度"].astype(float), kept["纬度"].astype(float)),
        crs=4326,
    )
    joined = points.sjoin(grids[["code", "geometry"]], predicate="within", how="left")
    assert joined["code"].notna().all() and len(joined) == len(kept)
    return pd.DataFrame(joined.drop(columns="geometry")).assign(street=joined["code"].str[:9])


def _expected_counts(located: pd.DataFrame, key: str, codes: list[str]) -> pd.DataFrame:
    """received, handled in the grid, passed up to community / street per area (and a
    totals row), from the ticket file."""
    level = located["处置层级"].map(LEVEL_WORDS)
    counts = pd.DataFrame(
        {
            "received": located.groupby(key).size(),
            "grid": (level == "grid").groupby(located[key]).sum(),
            "community": (level == "community").groupby(located[key]).sum(),
            "street": (level == "street").groupby(located[key]).sum(),
        }
    )
    counts = counts.reindex(codes, fill_value=0).astype(int)
    counts.loc["合计 total"] = counts.sum()
    return counts


def _report(path: Path) -> pd.DataFrame:
    """The statistics workbook, read back with pandas, by its bilingual headers."""
    sheet = pd.read_excel(path, engine="openpyxl", dtype={"编码 / code": str})
    return sheet.rename(
        columns={
            "编码 / code": "code",
            "名称 / name": "name",
            "受理总数 / received": "received",
            "网格内处置 / handled in the grid": "grid",
            "上报社区 / passed up to community": "community",
            "上报街道 / passed up to street": "street",
        }
    ).set_index("code")


# -- the hand-over ----------------------------------------------------------------------
def test_gbk_layers_without_cpg_load_level_by_level_without_mojibake(city: Cli, package: Package):
    for level in LEVELS:
        assert not package.layer(level).with_suffix(".cpg").exists()
        parent = [] if level == "district" else ["--parent-field", "parent"]
        run = city(
            "areas", "import", package.layer(level), "--level", level, "--code-field", "code",
            "--name-field", "name", *parent, "--generation", "龙亭区2024",
        ).ok()  # fmt: skip
        count = int((package.areas["level"] == level).sum())
        assert "encoding: gb18030" in run.flat and "自动识别 detected" in run.flat
        assert f"stored {count} {level} areas" in run.flat
    stored = _rows(city, "SELECT code, name, level FROM area ORDER BY code")
    expected = package.areas.sort_values("code")[["code", "name", "level"]]
    assert stored == list(expected.itertuples(index=False, name=None))
    assert _rows(city, "SELECT label, is_active FROM generation") == [("龙亭区2024", True)]


def test_micro_grid_workers_alone_leave_every_grid_unstaffed(city: Cli, package: Package):
    """The first sheet an office sends is often the micro-grid workers (a GBK CSV): they
    staff their micro-grids, never the grid above (docs/domain.md)."""
    micro = package.roster_rows[package.roster_rows["岗位"] == "微网格员"]
    path = package.root / "微网格员.csv"
    micro.to_csv(path, index=False, encoding="gbk")
    run = city("staff", "import", path).ok()
    assert "gb18030" in run.flat and run.number(r"stored ([\d,]+) staff") == len(micro)
    run = city("coverage").ok()
    grids = package.areas.loc[package.areas["level"] == "grid", "code"]
    for grid in grids:
        assert f"grid {grid} has no grid leader or grid worker" in run.flat
    assert f"{len(grids)} defects" in run.flat, run.output  # no gap, overlap or sliver


def test_xlsx_roster_with_chinese_headers_staffs_every_grid(city: Cli, package: Package):
    run = city("staff", "import", package.roster, "--replace").ok()
    assert "工作表 sheet: 网格员花名册" in run.flat
    assert run.number(r"stored ([\d,]+) staff") == len(package.roster_rows)
    micro_workers = int((package.roster_rows["岗位"] == "微网格员").sum())
    assert run.number(r"replacing ([\d,]+)") == micro_workers  # the first sheet's rows
    stored = _rows(city, "SELECT name, area_code, phone, department FROM staff ORDER BY phone")
    columns = ["姓名", "网格编码", "联系电话", "单位"]
    assert stored == list(package.roster_rows[columns].itertuples(index=False, name=None))
    unstaffed = _rows(
        city,
        "SELECT a.code FROM area a WHERE a.level = 'grid' AND NOT EXISTS (SELECT 1 FROM staff s "
        f"WHERE s.area_code = a.code AND s.role IN ({', '.join(map(repr, sorted(GRID_ROLES)))}))",
    )
    assert unstaffed == []
    assert "no defects: full coverage, no blind spots" in city("coverage", "--strict").ok().flat


def test_gbk_historical_tickets_with_the_citys_categories(city: Cli, package: Package):
    run = city(
        "incidents", "import", package.tickets, "--category-map", package.category_map,
        "--source", DEFAULT_SOURCE, "--source-field", "来源", "--id-field", "工单编号",
        "--lon-field", "经度", "--lat-field", "纬度", "--time-field", "受理时间",
        "--category-field", "诉求类别", "--description-field", "问题描述",
        "--address-field", "地址", "--status-field", "状态", "--level-field", "处置层级",
        "--closed-at-field", "办结时间",
    ).ok()  # fmt: skip
    tickets = _read_tickets(package)
    impossible = _impossible(tickets)
    kept = tickets[~impossible]
    assert "历史工单.csv: 编码 encoding: gb18030 (自动识别 detected)" in run.flat
    assert "分类对照.csv: 编码 encoding: gb18030" in run.flat
    assert run.number(r"│ input\s+│\s+([\d,]+)") == len(tickets)
    assert run.number(r"│ rejected\s+│\s+([\d,]+)") == int(impossible.sum()) == 3
    assert run.number(r"│ stored with a location\s+│\s+([\d,]+)") == int((kept["经度"] != "").sum())
    assert run.number(r"│ stored unlocated\s+│\s+([\d,]+)") == int((kept["经度"] == "").sum())
    unmapped = int((kept["诉求类别"] == UNMAPPED).sum())
    assert run.number(r"uncategorised \(stored\): ([\d,]+)") == unmapped
    for reason in (
        "closed_at 2024-06-01T09:00:00+08:00 is before reported_at 2024-06-02T10:00:00+08:00",
        "closed_at is given but the status is only dispatched",
        "a handling level is set before the ticket was registered (立案)",
    ):
        assert reason in run.flat
    status = dict(zip(STATUS_WORDS, ("reported", "registered", "dispatched", "handled",
                                     "verified", "closed"), strict=True))  # fmt: skip
    stored = _rows(
        city,
        "SELECT external_id, source, category, status, handling_level, description, address "
        "FROM incident ORDER BY external_id",
    )
    assert stored == [
        (
            r["工单编号"],
            r["来源"] or DEFAULT_SOURCE,
            CATEGORY_MAP.get(r["诉求类别"]),
            status[r["状态"]],
            LEVEL_WORDS.get(r["处置层级"]),
            r["问题描述"],
            r["地址"],
        )
        for r in kept.sort_values("工单编号").to_dict("records")
    ]
    # Step times kept as the file gave them (local time), and every refused row kept.
    closed = _rows(
        city,
        "SELECT external_id, to_char(closed_at AT TIME ZONE 'Asia/Shanghai', "
        "'YYYY-MM-DD HH24:MI') FROM incident WHERE closed_at IS NOT NULL ORDER BY external_id",
    )
    done = kept[kept["办结时间"] != ""].sort_values("工单编号")
    assert closed == list(done[["工单编号", "办结时间"]].itertuples(index=False, name=None))
    assert city.scalar(
        "SELECT count(*) FROM rejected_row r JOIN import_batch b ON b.id = r.batch_id "
        "WHERE b.kind = 'incidents'"
    ) == int(impossible.sum())
    # Every located ticket lies in a grid: coverage still finds nothing wrong.
    assert "no defects" in city("coverage", "--strict").ok().flat


@pytest.mark.parametrize("level", ["grid", "street"])
def test_stats_report_equals_the_counts_of_the_ticket_file(city: Cli, package: Package, level: str):
    out = package.root / f"统计_{level}.xlsx"
    run = city("stats", "--level", level, "-o", out).ok()
    located = _located_in_grids(package, _read_tickets(package))
    areas = package.areas[package.areas["level"] == level].sort_values("code")
    expected = _expected_counts(
        located, "code" if level == "grid" else "street", list(areas["code"])
    )
    report = _report(out)
    assert list(report.index) == [*areas["code"], "合计 total"]
    assert list(report["name"]) == [*areas["name"], "合计"]
    assert report[list(expected.columns)].astype(int).equals(expected)
    total = expected.loc["合计 total"]
    assert f"{total['received']:,} incidents received, {total['grid']:,} handled" in run.flat
    # The report's sources: the file's own column, blanks under --source.
    sources = located["来源"].replace("", DEFAULT_SOURCE).value_counts()
    for source, n in sources.items():
        assert int(report.loc["合计 total", f"来源:{SOURCE_NAMES[source]} / source: {source}"]) == n
