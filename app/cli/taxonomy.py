"""``gridmap taxonomy``: the deployment's incident categories in and out."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from app.cli.common import EncodingOpt, SheetOpt, console, err, open_engine, print_problems

taxonomy_app = typer.Typer(
    help="Incident category taxonomy 事件分类: import and export.", no_args_is_help=True
)


@taxonomy_app.command("import")
def taxonomy_import(
    file: Annotated[
        Path,
        typer.Argument(
            help="CSV (UTF-8 or GBK) or XLSX with the columns of data/taxonomy.csv.",
            exists=True,
            dir_okay=False,
        ),
    ],
    sheet: SheetOpt = None,
    encoding: EncodingOpt = None,
):
    """Store a taxonomy as the new version in use: checked as a whole, all or nothing."""
    from app.services.taxonomy import import_taxonomy
    from gis.errors import ValidationError

    try:
        stored = import_taxonomy(open_engine(), file, sheet=sheet, encoding=encoding)
    except ValidationError as exc:
        if exc.problems:
            print_problems(exc.problems, f"{file.name}: 分类表有误 taxonomy refused")
        err.print(f"[red]error:[/red] {exc}; nothing was stored")
        raise typer.Exit(2) from exc
    console.print(f"{file.name}: {stored.read.describe()}")
    console.print(
        f"分类版本 taxonomy version {stored.version}: "
        f"{stored.items:,} items in {stored.majors:,} major classes"
    )


@taxonomy_app.command("export")
def taxonomy_export(
    output: Annotated[
        Path, typer.Option("--output", "-o", help="File to write: .csv (with a BOM) or .xlsx.")
    ],
    version: Annotated[
        int | None, typer.Option(help="A stored version (default: the one in use).")
    ] = None,
):
    """Write the taxonomy in use (or a stored version) in the format ``import`` reads."""
    from app.services.taxonomy import export_taxonomy

    n = export_taxonomy(open_engine(), output, version)
    console.print(f"wrote {n:,} taxonomy items to {output}")
