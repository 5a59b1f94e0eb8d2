"""``gridmap departments import|list`` run as a user runs them (the installed script on a
pseudo-terminal, a fresh database of the module's), and the department table's rules.

An office's table comes as a GBK CSV saved by Excel with Chinese headers, or as XLSX;
it is stored whole or not at all, with every bad row listed.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from gis.departments import validate_departments
from tests.terminal import Cli

pytestmark = [pytest.mark.db, pytest.mark.slow, pytest.mark.in_file_order]

DEPARTMENTS = [
    ("CGJ", "区城市管理局", "0374-2961234"),
    ("SJJ", "区市场监督管理局", "0374-2965678"),
    ("ZJJ", "区住房和城乡建设局", ""),
]
HEADERS = ["部门编码", "部门名称", "联系方式"]


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("departments")


def stored(cli: Cli) -> dict[str, tuple[str, str | None]]:
    with cli.engine.connect() as conn:
        from sqlalchemy import text

        rows = conn.execute(text("SELECT code, name, contact FROM department")).all()
    return {code: (name, contact) for code, name, contact in rows}


# -- the table's rules, pure -------------------------------------------------------------
def test_every_bad_row_is_named_with_its_line():
    frame = pd.DataFrame(
        [
            ["CGJ", "城管局", ""],
            ["", "无编码", ""],
            ["城管", "中文编码", ""],
            ["SJJ", "", "123"],
            ["CGJ", "重复", ""],
            ["WJW", "卫健委", "x" * 201],
        ],
        columns=["部门编码 / code", "部门名称 / name", "联系方式 / contact"],
    )
    check = validate_departments(frame)
    reasons = {p["row"]: p["reason"] for p in check.problems}
    assert sorted(reasons) == [3, 4, 5, 6, 7]
    assert "missing code" in reasons[3] and "malformed code" in reasons[4]
    assert "missing name" in reasons[5] and "duplicate of row 2" in reasons[6]
    assert "contact over 200" in reasons[7]
    assert check.departments["code"].tolist() == ["CGJ"]


def test_a_table_without_a_name_column_is_refused_whole():
    from gis.errors import ValidationError

    with pytest.raises(ValidationError, match="name"):
        validate_departments(pd.DataFrame({"部门编码": ["CGJ"], "备注": ["x"]}))


# -- the command line ----------------------------------------------------------------------
def test_gbk_csv_with_chinese_headers_is_stored(cli: Cli, files: Path):
    path = files / "departments_gbk.csv"
    pd.DataFrame(DEPARTMENTS, columns=HEADERS).to_csv(path, index=False, encoding="gbk")
    run = cli("departments", "import", path).ok()
    assert "gb18030" in run.flat and "stored 3 departments" in run.flat
    assert "(3 new, 0 updated)" in run.flat
    assert stored(cli) == {
        "CGJ": ("区城市管理局", "0374-2961234"),
        "SJJ": ("区市场监督管理局", "0374-2965678"),
        "ZJJ": ("区住房和城乡建设局", None),
    }
    listed = cli("departments", "list").ok().flat
    for code, name, _ in DEPARTMENTS:
        assert code in listed and name in listed
    assert "departments (3)" in listed


def test_xlsx_adds_and_updates(cli: Cli, files: Path):
    path = files / "departments.xlsx"
    rows = [("CGJ", "区城市管理局（综合执法）", "0374-2960000"), ("GAJ", "区公安分局", "110")]
    pd.DataFrame(rows, columns=["code", "name", "contact"]).to_excel(path, index=False)
    run = cli("departments", "import", path).ok()
    assert "(1 new, 1 updated)" in run.flat
    assert stored(cli)["CGJ"] == ("区城市管理局（综合执法）", "0374-2960000")
    assert stored(cli)["GAJ"] == ("区公安分局", "110")
    assert len(stored(cli)) == 4


def test_a_bad_table_stores_nothing_and_lists_every_bad_row(cli: Cli, files: Path):
    path = files / "bad_gbk.csv"
    rows = [
        ("HBJ", "区生态环境分局", ""),  # good, but the file is refused as a whole
        ("", "区教育局", ""),
        ("SW-1", "", ""),
        ("HBJ", "重复的编码", ""),
        ("水务", "区水利局", ""),
    ]
    pd.DataFrame(rows, columns=HEADERS).to_csv(path, index=False, encoding="gbk")
    before = stored(cli)
    run = cli("departments", "import", path)
    assert run.code == 1, run.output
    assert "refused, nothing stored (4 problems in 5 rows" in run.flat
    for reason in ("missing code", "missing name", "duplicate of row 2", "malformed code"):
        assert reason in run.flat, reason
    assert stored(cli) == before
    batch = cli.scalar("SELECT max(id) FROM import_batch WHERE kind = 'departments'")
    assert cli.scalar("SELECT count(*) FROM rejected_row WHERE batch_id = :b", b=batch) == 4
    assert (
        cli.scalar(
            "SELECT count(*) FROM import_batch WHERE id = :b AND status = 'rejected'", b=batch
        )
        == 1
    )
