"""``gridmap staff``: staff rosters in and out, and the deployment's roles.

Rosters hold names and phone numbers: they leave the database only through
this local command, never through a public endpoint.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from app.cli.common import (
    EncodingOpt,
    GenerationOpt,
    SheetOpt,
    console,
    open_engine,
    print_problems,
)

staff_app = typer.Typer(help="Staff rosters: import, export and roles.", no_args_is_help=True)


@staff_app.command("import")
def staff_import(
    file: Annotated[
        Path,
        typer.Argument(
            help="CSV or XLSX with columns name, role, area_code, phone (姓名, 岗位, 网格编码, "
            "联系电话); optional external_id, department, start_date, end_date.",
            exists=True,
            dir_okay=False,
        ),
    ],
    sheet: SheetOpt = None,
    encoding: EncodingOpt = None,
    replace: Annotated[
        bool, typer.Option(help="Replace the roster of the areas named in the file.")
    ] = False,
    generation: GenerationOpt = None,
    report: Annotated[
        Path | None, typer.Option(help="Also write the problems as JSON to this file.")
    ] = None,
):
    """Validate a staff roster and store all of it, or nothing with every reason."""
    from app.services.staff import import_staff_file

    result = import_staff_file(
        open_engine(),
        file,
        sheet=sheet,
        encoding=encoding,
        replace=replace,
        generation=generation,
    )
    console.print(f"{file.name}: {result.read_as}")
    if report:
        report.write_text(json.dumps(result.problems, ensure_ascii=False, indent=1, default=str))
    if result.loaded:
        replaced = f", replacing {result.replaced}" if replace else ""
        console.print(
            f"[green]已导入 stored {result.stored} staff[/green]{replaced} into generation "
            f"{result.generation!r}; batch #{result.batch_id}"
        )
        return
    print_problems(
        result.problems,
        f"{file.name}: 拒绝导入 refused, nothing stored ({len(result.problems)} problems in "
        f"{result.rows_in} rows; kept as import batch #{result.batch_id})",
    )
    raise typer.Exit(1)


@staff_app.command("export")
def staff_export(
    output: Annotated[
        Path, typer.Option("--output", "-o", help="File to write: .csv (with a BOM) or .xlsx.")
    ],
    generation: GenerationOpt = None,
):
    """Write a generation's roster (names and phones: keep the file safe)."""
    from app.services.staff import export_staff

    count = export_staff(open_engine(), output, generation)
    console.print(f"wrote {count} staff to {output}")


@staff_app.command("roles")
def staff_roles():
    """List the roles a roster may use, with the words accepted for each."""
    from app.services.staff import staff_roles as roles_of

    with open_engine().connect() as conn:
        roles = roles_of(conn)
    table = Table(title="岗位 roles")
    for header in ("code", "中文", "English", "staffs", "words"):
        table.add_column(header)
    for role in roles:
        table.add_row(
            role.code, role.name_zh, role.name_en, role.staffs or "—", ", ".join(role.words)
        )
    console.print(table)


@staff_app.command("add-role")
def staff_add_role(
    code: Annotated[str, typer.Argument(help="Code of the role, e.g. building_head.")],
    name_zh: Annotated[str, typer.Option(help="Chinese name, e.g. 楼栋长.")],
    name_en: Annotated[str, typer.Option(help="English name.")],
    staffs: Annotated[
        str, typer.Option(help="What the role staffs: grid, micro_grid or none.")
    ] = "none",
    word: Annotated[
        list[str] | None, typer.Option(help="Another word a roster may use (repeatable).")
    ] = None,
):
    """Add a role of this deployment to the default ones."""
    from app.services.staff import add_role
    from gis.staff import StaffRole

    level = None if staffs == "none" else staffs
    role = StaffRole(code, name_zh, name_en, level, tuple(word or ()))
    add_role(open_engine(), role)
    console.print(f"added role {code} ({name_zh})")
