"""``gridmap stats``: the statistics report of incidents per street, community or grid."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer

from app.cli.common import GenerationOpt, console


def stats(
    level: Annotated[str, typer.Option("--level", "-l", help="street, community, grid or worker.")],
    output: Annotated[
        Path, typer.Option("--output", "-o", help="File to write: .xlsx or .csv (with a BOM).")
    ],
    start: Annotated[
        datetime | None,
        typer.Option(formats=["%Y-%m-%d"], help="First day of the report (local time)."),
    ] = None,
    end: Annotated[
        datetime | None,
        typer.Option(formats=["%Y-%m-%d"], help="Last day of the report, inclusive."),
    ] = None,
    generation: GenerationOpt = None,
    district: Annotated[
        str | None,
        typer.Option(help="A district's 6-digit code: report that district only (a city)."),
    ] = None,
):
    """Write the statistics report: received, by source and class, handled in the grid,
    passed up, overdue, the on-time rate, the median hours to close and the rank per area
    (or per worker), with a totals row."""
    from app.cli.common import open_engine
    from app.services.stats import (
        REPORT_LEVELS,
        narrow_to_district,
        stats_report,
        write_report,
    )
    from gis.errors import GridmapError

    if level not in REPORT_LEVELS:
        raise typer.BadParameter(f"use one of {', '.join(REPORT_LEVELS)}", param_hint="--level")
    if output.suffix.lower() not in (".xlsx", ".csv"):
        raise typer.BadParameter("write a .xlsx or a .csv file", param_hint="--output")
    try:
        area = narrow_to_district(None, district)
    except GridmapError as exc:
        raise typer.BadParameter(str(exc), param_hint="--district") from exc
    report = stats_report(
        open_engine(),
        level,
        start=start.date() if start else None,
        end=end.date() if end else None,
        generation=generation,
        area=area,
    )
    write_report(report, output)
    total = report.table.iloc[-1]
    console.print(
        f"wrote {len(report.table) - 1} {level} rows and a totals row to {output}: "
        f"{int(total['received']):,} incidents received, {int(total['handled_grid']):,} handled "
        f"in the grid, {int(total['overdue']):,} overdue"
    )
