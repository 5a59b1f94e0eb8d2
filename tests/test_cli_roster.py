"""``gridmap staff``, ``gridmap stats`` and ``gridmap redesign --since/--until``, run as a user
runs them: the installed script on a pseudo-terminal (the runner and the ``cli`` fixture of
``tests/test_cli.py``: a fresh database per module)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from openpyxl import load_workbook

from tests.terminal import Cli

pytestmark = [pytest.mark.db, pytest.mark.slow]


@pytest.fixture(scope="module")
def demo_cli(cli: Cli) -> Cli:
    """The module's database with a small demo loaded by ``gridmap demo``."""
    cli("demo", "--incidents", "3000", timeout=600).ok()
    return cli


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("roster")


def test_staff_export_then_import_replaces_the_roster(demo_cli: Cli, files: Path):
    staff = demo_cli.scalar("SELECT count(*) FROM staff")
    out = files / "roster.xlsx"
    demo_cli("staff", "export", "-o", out).ok()
    header = [c.value for c in load_workbook(out).active[1]]
    assert header[:4] == ["姓名 / name", "岗位 / role", "网格编码 / area_code", "联系电话 / phone"]
    run = demo_cli("staff", "import", out, "--replace").ok()
    assert run.number(r"stored ([\d,]+) staff") == staff
    assert "工作表 sheet" in run.flat
    assert demo_cli.scalar("SELECT count(*) FROM staff") == staff


def test_a_bad_roster_is_refused_with_its_reasons(demo_cli: Cli, files: Path):
    grid = demo_cli.scalar("SELECT min(code)::bigint FROM area WHERE level = 'grid'")
    bad = files / "bad.csv"
    pd.DataFrame(
        [["张三", "网格长", "411002999999999", "13812345678"], ["李四", "网格长", grid, "123"]],
        columns=["姓名", "岗位", "网格编码", "联系电话"],
    ).to_csv(bad, index=False, encoding="gbk")
    before = demo_cli.scalar("SELECT count(*) FROM staff")
    run = demo_cli("staff", "import", bad)
    assert run.code == 1, run.output
    assert "refused, nothing stored" in run.flat and "gb18030" in run.flat
    assert "unknown area code" in run.flat and "malformed phone" in run.flat
    assert demo_cli.scalar("SELECT count(*) FROM staff") == before
    assert (
        demo_cli.scalar(
            "SELECT count(*) FROM rejected_row r JOIN import_batch b "
            "ON b.id = r.batch_id WHERE b.kind = 'staff'"
        )
        == 2
    )


def test_roles_are_listed_and_a_deployment_adds_one(demo_cli: Cli):
    run = demo_cli(
        "staff",
        "add-role",
        "building_head",
        "--name-zh",
        "楼栋长",
        "--name-en",
        "building head",
        "--staffs",
        "micro_grid",
    ).ok()
    assert "added role building_head" in run.flat
    listed = demo_cli("staff", "roles").ok().flat
    for word in ("网格长", "兼职网格员", "第一书记", "楼栋长"):
        assert word in listed


def test_stats_writes_the_report_with_a_totals_row(demo_cli: Cli, files: Path):
    out = files / "stats.xlsx"
    run = demo_cli("stats", "--level", "street", "-o", out).ok()
    assert run.number(r"([\d,]+) incidents received") == demo_cli.scalar(
        "SELECT count(*) FROM incident_current WHERE street_code IS NOT NULL"
    )
    rows = list(load_workbook(out).active.values)
    assert rows[0][:3] == ("编码 / code", "名称 / name", "受理总数 / received")
    assert len(rows) == 1 + 8 + 1 and rows[-1][0] == "合计 total"
    csv = files / "stats.csv"
    demo_cli(
        "stats", "--level", "grid", "--start", "2023-03-01", "--end", "2023-03-31", "-o", csv
    ).ok()
    assert csv.read_bytes().startswith(b"\xef\xbb\xbf")
    assert demo_cli("stats", "--level", "micro_grid", "-o", csv).code == 2
    # per worker: a row per staff member of the roster, with the rank and median columns
    workers = demo_cli("stats", "--level", "worker", "-o", out).ok()
    assert workers.number(r"wrote ([\d,]+) worker rows") == demo_cli.scalar(
        "SELECT count(*) FROM staff s JOIN generation g ON g.id = s.generation_id AND g.is_active"
    )
    header = next(load_workbook(out).active.values)
    assert "所属网格 / grid" in header and "排名 / rank" in header


def test_redesign_weighs_the_window_it_is_given(demo_cli: Cli):
    run = demo_cli(
        "redesign",
        "--target",
        "600",
        "--since",
        "2023-01-01",
        "--until",
        "2023-12-31",
        "--dry-run",
    ).ok()
    assert run.number(r"workload window 2023-01-01 – 2023-12-31: ([\d,]+) incidents") > 2500
    refused = demo_cli(
        "redesign",
        "--target",
        "600",
        "--since",
        "2023-12-01",
        "--until",
        "2023-12-14",
        "--dry-run",
    )
    assert refused.code == 2 and "too few incidents" in refused.flat, refused.output
