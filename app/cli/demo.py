"""``gridmap demo``: the synthetic demo district 411002 on real coordinates."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from app.cli.common import console, open_engine, print_incident_report, progress_bar
from gis.vocabulary import AREA_LEVELS

if TYPE_CHECKING:
    from app.services.demo import DemoLoadReport

#: Steps of the load: one per level, then staff, gazetteer and incidents.
LOAD_STEPS = len(AREA_LEVELS) + 3


def demo(
    seed: Annotated[int, typer.Option(help="Seed of the synthetic district.")] = 411002,
    defects: Annotated[
        bool, typer.Option(help="Plant coverage defects (one gap, one overlap, unstaffed grids).")
    ] = False,
    incidents: Annotated[int, typer.Option(help="Incidents to generate.")] = 50_000,
    reload: Annotated[bool, typer.Option(help="Replace a demo that is already loaded.")] = False,
):
    """Provision PostGIS, migrate, load the demo district (Weidu-like, 411002) and summarise."""
    from app.services.demo import load_demo
    from gis.demo import build_demo

    started = time.perf_counter()
    engine = open_engine()
    with console.status("generating the demo district…"):
        district = build_demo(seed=seed, defects=defects, n_incidents=incidents)
    with progress_bar() as bar:
        task = bar.add_task("loading", total=LOAD_STEPS)

        def step(what: str, done: int, total: int) -> None:
            bar.update(task, description=f"loading {what}", completed=done - 1, total=total)

        result = load_demo(engine, district, reload=reload, progress=step)
        bar.update(task, completed=LOAD_STEPS, description="loaded")
    print_demo_summary(result, time.perf_counter() - started)


def print_demo_summary(result: DemoLoadReport, seconds: float) -> None:
    table = Table(
        title=f"demo district 411002 — generation {result.generation!r}"
        + (" (already loaded)" if result.already_loaded else "")
    )
    table.add_column("what")
    table.add_column("count", justify="right")
    for level in AREA_LEVELS:
        table.add_row(level, f"{result.counts.get(level, 0):,}")
    table.add_row("staff", f"{result.staff:,}")
    table.add_row("gazetteer addresses", f"{result.gazetteer:,}")
    table.add_row("incidents stored", f"{result.incidents_stored:,}")
    console.print(table)
    if result.incidents is not None:
        print_incident_report(result.incidents, "demo incidents")
    console.print(
        f"synthetic content on real coordinates around 113.82 E, 34.03 N; done in {seconds:.1f} s"
    )
