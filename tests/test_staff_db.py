"""Staff rosters through the service: XLSX and GBK CSV in, all or nothing, export, roles."""

from __future__ import annotations

import pandas as pd
import pytest
from openpyxl import Workbook
from sqlalchemy import text

from app.db import repo
from app.errors import ConflictError
from app.services.staff import add_role, export_staff, import_staff_file
from gis.coverage import check_coverage
from gis.staff import StaffRole
from tests.helpers import load_generation, small_district

pytestmark = pytest.mark.db

COMMUNITIES = ["411002003001"]


@pytest.fixture
def district(clean_db, demo):
    frames = small_district(demo, COMMUNITIES)
    load_generation(clean_db, "g1", frames)
    return clean_db, frames


def grid_roster(frames) -> pd.DataFrame:
    """A leader on every grid and a worker on the first micro-grid."""
    grids = list(frames["grid"]["code"])
    rows = [(f"网格长{i}", "网格长", code, f"1381234{i:04d}") for i, code in enumerate(grids)]
    rows.append(("微网格员甲", "微网格员", frames["micro_grid"]["code"].iloc[0], "13900000000"))
    return pd.DataFrame(rows, columns=["姓名", "岗位", "网格编码", "联系电话"])


def write_xlsx(frame: pd.DataFrame, path, numeric_phone: bool = True) -> None:
    book = Workbook()
    sheet = book.active
    sheet.title = "花名册"
    sheet.append(list(frame.columns))
    for row in frame.itertuples(index=False):
        values = list(row)
        if numeric_phone:  # Excel stores a typed phone number as a number
            values[3] = int(values[3])
        sheet.append(values)
    book.save(path)


def stored(engine) -> pd.DataFrame:
    with engine.connect() as conn:
        return pd.DataFrame(
            conn.execute(text("SELECT name, role, area_code, phone, batch_id FROM staff"))
            .mappings()
            .all()
        )


def test_an_xlsx_roster_loads_and_staffs_every_grid(district, tmp_path):
    engine, frames = district
    path = tmp_path / "roster.xlsx"
    write_xlsx(grid_roster(frames), path)
    report = import_staff_file(engine, path, sheet="花名册")
    assert report.loaded, report.problems
    assert report.stored == len(frames["grid"]) + 1 and "花名册" in report.read_as
    rows = stored(engine)
    assert rows["phone"].str.fullmatch(r"1[3-9]\d{9}").all()  # not 13812340000.0
    assert set(rows["role"]) == {"grid_leader", "micro_grid_worker"}
    assert rows["batch_id"].nunique() == 1
    areas = pd.concat([frames["grid"], frames["micro_grid"]])
    coverage = check_coverage(areas, rows)
    assert coverage.counts["unstaffed"] == 0
    assert len(coverage.unstaffed_micro_grids) == len(frames["micro_grid"]) - 1


def test_a_gbk_csv_with_chinese_words_reads_without_mojibake(district, tmp_path):
    engine, frames = district
    path = tmp_path / "roster.csv"
    grid_roster(frames).to_csv(path, index=False, encoding="gbk")
    report = import_staff_file(engine, path)
    assert report.loaded, report.problems
    assert "gb18030" in report.read_as
    assert "网格长0" in set(stored(engine)["name"])


def test_a_bad_roster_stores_nothing_and_keeps_every_reason(district, tmp_path):
    engine, frames = district
    roster = grid_roster(frames)
    roster.loc[len(roster)] = ["张三", "网格长", "411002999999999", "13812345678"]
    roster.loc[len(roster)] = ["李四", "保安", frames["grid"]["code"].iloc[0], "13812345678"]
    roster.loc[len(roster)] = ["王五", "网格长", frames["grid"]["code"].iloc[0], "12345"]
    roster.loc[len(roster)] = roster.iloc[0].tolist()
    path = tmp_path / "bad.csv"
    roster.to_csv(path, index=False, encoding="utf-8-sig")
    report = import_staff_file(engine, path)
    assert not report.loaded and report.stored == 0
    assert stored(engine).empty
    with engine.connect() as conn:
        kept = repo.rejected_rows(conn, report.batch_id)
        status = conn.execute(
            text("SELECT kind, status FROM import_batch WHERE id = :b"), {"b": report.batch_id}
        ).one()
    assert tuple(status) == ("staff", "rejected")
    texts = " | ".join(r["reason"] for r in kept)
    for reason in ("unknown area code", "unknown role", "malformed phone", "duplicate of row 2"):
        assert reason in texts
    assert len(kept) == 4 and kept[0]["raw"]["姓名"] == "张三"


def test_a_second_import_needs_replace_and_replaces_only_its_areas(district, tmp_path):
    engine, frames = district
    roster = grid_roster(frames)
    first = tmp_path / "all.csv"
    roster.to_csv(first, index=False)
    assert import_staff_file(engine, first).loaded
    again = import_staff_file(engine, first)
    assert not again.loaded and "already on the roster" in again.problems[0]["reason"]
    one_grid = roster.iloc[:1].assign(姓名="新网格长")
    path = tmp_path / "one.csv"
    one_grid.to_csv(path, index=False)
    report = import_staff_file(engine, path, replace=True)
    assert report.loaded and report.replaced == 1 and report.stored == 1
    names = set(stored(engine)["name"])
    assert "新网格长" in names and "网格长0" not in names and "网格长1" in names


@pytest.mark.parametrize("suffix", [".csv", ".xlsx"])
def test_export_reads_back(district, tmp_path, suffix):
    engine, frames = district
    source = tmp_path / "in.csv"
    grid_roster(frames).to_csv(source, index=False)
    assert import_staff_file(engine, source).loaded
    out = tmp_path / f"out{suffix}"
    assert export_staff(engine, out) == len(frames["grid"]) + 1
    if suffix == ".csv":
        raw = out.read_bytes()
        assert raw.startswith(b"\xef\xbb\xbf") and "姓名 / name".encode() in raw
        assert "网格长".encode() in raw  # roles in Chinese for the office
    report = import_staff_file(engine, out, replace=True)
    assert report.loaded and report.stored == report.replaced == len(frames["grid"]) + 1


def test_a_deployment_role_can_be_added_and_used(district, tmp_path):
    engine, frames = district
    add_role(engine, StaffRole("building_head", "楼栋长", "building head", "micro_grid"))
    with pytest.raises(ConflictError, match="楼栋长"):
        add_role(engine, StaffRole("other_head", "楼栋长", "x", None))
    path = tmp_path / "heads.csv"
    micro = frames["micro_grid"]["code"].iloc[0]
    pd.DataFrame(
        [["a", "楼栋长", micro, "13812345678"]], columns=["name", "role", "area_code", "phone"]
    ).to_csv(path, index=False)
    report = import_staff_file(engine, path)
    assert report.loaded, report.problems
    assert list(stored(engine)["role"]) == ["building_head"]


def test_migration_0006_downgrades_and_upgrades(district, tmp_path):
    from alembic import command
    from sqlalchemy import inspect

    from app.db.session import alembic_config, upgrade
    from tests.helpers import engine_url

    engine, frames = district
    grid = frames["grid"]["code"].iloc[0]
    path = tmp_path / "two.csv"
    pd.DataFrame(
        [["a", "网格长", grid, "13812345678"], ["b", "第一书记", grid, "13812345679"]],
        columns=["name", "role", "area_code", "phone"],
    ).to_csv(path, index=False)
    assert import_staff_file(engine, path).loaded
    url = engine_url(engine)
    command.downgrade(alembic_config(url), "0005")
    try:
        with engine.connect() as conn:
            assert not inspect(conn).has_table("staff_role")
            columns = {c["name"] for c in inspect(conn).get_columns("staff")}
            # the one role 0001 knew stays; the instructor cannot under its CHECK
            roles = list(conn.execute(text("SELECT role FROM staff")).scalars())
        assert "external_id" not in columns and roles == ["grid_leader"]
    finally:
        upgrade(url)
    with engine.connect() as conn:
        assert inspect(conn).has_table("staff_role")
        plan_columns = {c["name"] for c in inspect(conn).get_columns("redesign_plan")}
    assert {"window_start", "window_end", "window_incidents"} <= plan_columns
