"""``gridmap assign``: bulk (re)assignment of stored incidents."""

from __future__ import annotations

from typing import Annotated

import typer

from app.cli.common import console, index_store, open_engine, progress_bar

ENGINES = ("local", "dask")


def assign(
    all_: Annotated[bool, typer.Option("--all", help="Re-assign every located incident.")] = False,
    unassigned: Annotated[
        bool,
        typer.Option("--unassigned", help="Only incidents not assigned to the active generation."),
    ] = False,
    tolerance: Annotated[float, typer.Option(help="Snap tolerance in metres.")] = 0.0,
    chunk_size: Annotated[int, typer.Option(help="Incidents per chunk.")] = 250_000,
    engine: Annotated[str, typer.Option(help="local (in this process) or dask.")] = "local",
    scheduler: Annotated[
        str | None,
        typer.Option(help="Dask scheduler address (tcp://host:8786); default a LocalCluster."),
    ] = None,
):
    """Assign stored incidents to the active generation's areas, in bulk."""
    from app.services.assignment import assign_stored

    if engine not in ENGINES:
        raise typer.BadParameter("use local or dask", param_hint="--engine")
    if all_ == unassigned:
        raise typer.BadParameter("give exactly one of --all or --unassigned")
    with progress_bar() as bar:
        # The total is known only once the service has counted the incidents to assign.
        task = bar.add_task("assigning", total=None)
        report = assign_stored(
            open_engine(),
            only_unassigned=unassigned,
            tolerance=tolerance,
            chunk_size=chunk_size,
            dask=engine == "dask",
            scheduler=scheduler,
            indexes=index_store(),
            progress=lambda done, total: bar.update(task, completed=done, total=total),
        )
    console.print(
        f"assigned {report.assigned:,} incidents to generation "
        f"{report.generation!r}: "
        + ", ".join(f"{k} {v:,}" for k, v in sorted(report.by_status.items()))
    )
