"""``gridmap departments``: the district's departments (委办局) that streets whistle for."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from app.cli.common import EncodingOpt, SheetOpt, console, open_engine, print_problems

departments_app = typer.Typer(
    help="Departments (委办局) a street whistles for (吹哨报到): import and list.",
    no_args_is_help=True,
)


@departments_app.command("import")
def departments_import(
    file: Annotated[
        Path,
        typer.Argument(
            help="CSV (UTF-8 or GBK, detected) or XLSX with columns code, name and optionally "
            "contact (部门编码, 部门名称, 联系方式).",
            exists=True,
            dir_okay=False,
        ),
    ],
    sheet: SheetOpt = None,
    encoding: EncodingOpt = None,
):
    """Validate a department table and store all of it, or nothing with every reason.

    A code already stored gets the file's name and contact.
    """
    from app.services.departments import import_departments

    result = import_departments(open_engine(), file, sheet=sheet, encoding=encoding)
    console.print(f"{file.name}: {result.read_as}")
    if result.loaded:
        console.print(
            f"[green]已导入 stored {result.added + result.updated} departments[/green] "
            f"({result.added} new, {result.updated} updated); batch #{result.batch_id}"
        )
        return
    print_problems(
        result.problems,
        f"{file.name}: 拒绝导入 refused, nothing stored ({len(result.problems)} problems in "
        f"{result.rows_in} rows; kept as import batch #{result.batch_id})",
    )
    raise typer.Exit(1)


@departments_app.command("list")
def departments_list():
    """List the departments: code, name and contact."""
    from app.services.departments import list_departments

    with open_engine().connect() as conn:
        departments = list_departments(conn)
    table = Table(title=f"部门 departments ({len(departments)})")
    for header in ("部门编码 code", "部门名称 name", "联系方式 contact"):
        table.add_column(header)
    for d in departments:
        table.add_row(d["code"], d["name"], d["contact"] or "—")
    console.print(table)
