"""What the commands share: consoles, progress bars, the database, level checks, reports.

Command modules import the service layer, ``app.db``, ``app.maps``, the settings
and the heavy parts of ``gis`` inside the command functions, not at the top: they
pull in geopandas, esda, dask, folium, uvicorn, SQLAlchemy, psycopg, Alembic and
pydantic-settings, seconds of imports that ``gridmap --help`` (and shell
completion) should not pay for. Everything light is imported at module level.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, ProgressColumn, Task, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from gis.vocabulary import AREA_LEVELS

if TYPE_CHECKING:
    from sqlalchemy import Connection, Engine

    from app.db.repo import GenerationInfo
    from app.services.incident_import import IncidentImportReport
    from app.services.index_store import IndexStore

console = Console()
err = Console(stderr=True)

LevelOpt = Annotated[str, typer.Option("--level", "-l", help=f"One of: {', '.join(AREA_LEVELS)}.")]
GenerationOpt = Annotated[
    str | None,
    typer.Option(
        "--generation",
        "-g",
        help="Generation label or id (default: the active one). A new label "
        "creates an inactive generation.",
    ),
]

#: Options of every command that reads an office table (CSV or XLSX).
SheetOpt = Annotated[
    str | None, typer.Option(help="Worksheet of an XLSX file (name or 0-based index).")
]
EncodingOpt = Annotated[
    str | None,
    typer.Option(
        help="Encoding of a text file (default: detect UTF-8, with or without BOM, or GB18030/GBK)."
    ),
]


#: Options of every command that reads a polygon layer (areas, thematic units).
PolygonFileArg = Annotated[
    Path,
    typer.Argument(
        help="GeoJSON, GeoPackage, Shapefile or GeoParquet.", exists=True, dir_okay=False
    ),
]
NameFieldOpt = Annotated[str | None, typer.Option(help="Column with names.")]
CrsOpt = Annotated[
    str | None,
    typer.Option(help="CRS of the file when it has none: wgs84, cgcs2000, gcj02, bd09 or EPSG:n."),
]
GpkgLayerOpt = Annotated[str | None, typer.Option(help="Layer of a GeoPackage.")]
LayerEncodingOpt = Annotated[
    str | None,
    typer.Option(
        help="Encoding of a Shapefile's attributes or a GeoJSON file (default: the .cpg, "
        "else detect UTF-8 or GBK)."
    ),
]


def open_engine(migrate: bool = True) -> Engine:
    """Provision (install, start, migrate) the configured database and connect to it."""
    from app.config import Settings
    from app.db.provision import ensure_database
    from app.db.session import make_engine

    return make_engine(ensure_database(Settings(), migrate=migrate))


def index_store() -> IndexStore:
    """Where built lookup indexes are kept between commands (and shared with the server)."""
    from app.config import Settings
    from app.services.index_store import IndexStore

    return IndexStore.from_settings(Settings())


def check_level(level: str) -> str:
    if level not in AREA_LEVELS:
        raise typer.BadParameter(
            f"{level!r} is not a level; use one of {', '.join(AREA_LEVELS)}", param_hint="--level"
        )
    return level


class CountColumn(ProgressColumn):
    """``done/total`` with thousands separators; only ``done`` while the total is unknown."""

    def render(self, task: Task) -> Text:
        done = f"{int(task.completed):,}"
        shown = done if task.total is None else f"{done}/{int(task.total):,}"
        return Text(shown, style="progress.download")


def progress_bar() -> Progress:
    """A bar labelled by its task's description; safe while a task's total is still None."""
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        CountColumn(),
        TimeElapsedColumn(),
        console=console,
    )


def generation_or_exit(conn: Connection, ref: str | None) -> GenerationInfo:
    """The generation ``ref`` names (the active one without it), or exit with a message."""
    from app.db import repo

    gen = repo.get_generation(conn, ref) if ref else repo.active_generation(conn)
    if gen is None:
        err.print(
            f"[red]no generation {ref!r}[/red]"
            if ref
            else "[red]no active generation: import areas or run `gridmap demo` first[/red]"
        )
        raise typer.Exit(1)
    return gen


def print_problems(problems: list[dict[str, Any]], title: str) -> None:
    """The refusal report of an area import: one row per problem, then the duplicated codes."""
    table = Table(title=title, title_style="bold red", show_lines=False)
    table.add_column("row", justify="right")
    table.add_column("code")
    table.add_column("reason", overflow="fold")
    for p in problems:
        table.add_row(
            "" if p.get("row") is None else str(p["row"]), p.get("code") or "", p["reason"]
        )
    err.print(table)
    duplicated = sorted({p["code"] for p in problems if p.get("kind") == "duplicate"})
    if duplicated:
        err.print(f"[bold]duplicated codes:[/bold] {', '.join(duplicated)}")


def print_incident_report(report: IncidentImportReport, name: str) -> None:
    """Where every input row of an incident import ended: the counts add up to the input."""
    table = Table(title=f"{name}: batch #{report.batch_id}")
    table.add_column("rows")
    table.add_column("count", justify="right")
    table.add_row("input", f"{report.rows_in:,}")
    table.add_row("stored with a location", f"{report.stored:,}")
    table.add_row("  of which geocoded from the address", f"{report.geocoded:,}")
    table.add_row("stored unlocated", f"{report.unlocated:,}")
    table.add_row("rejected", f"{report.rejected:,}")
    table.add_row("already present (re-import, unchanged)", f"{report.already_present:,}")
    for status, n in sorted(report.by_status.items()):
        table.add_row(f"assignment: {status}", f"{n:,}")
    console.print(table)
    reasons = sorted(report.unlocated_reasons.items(), key=lambda item: (-item[1], item[0]))
    for reason, n in reasons[:20]:
        console.print(f"  unlocated: {n:,} × {reason}")
    if len(reasons) > 20:
        rest = sum(n for _, n in reasons[20:])
        console.print(
            f"  … {len(reasons) - 20:,} more reasons for {rest:,} rows "
            f"(stored unlocated in batch #{report.batch_id})"
        )
    for row in report.rejected_rows[:20]:
        err.print(f"  rejected row {row['row']}: {row['reason']}")
    if report.rejected > 20:
        err.print(f"  … {report.rejected - 20:,} more in rejected_row (batch #{report.batch_id})")
