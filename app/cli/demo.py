"""``gridmap demo``: the synthetic demo district 411002, or a generated city."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from app.cli.common import console, open_engine, print_incident_report, progress_bar
from gis.vocabulary import AREA_LEVELS, INCIDENT_STATUSES

if TYPE_CHECKING:
    from app.services.demo import DemoLoadReport

#: Steps of the load: one per level, then staff, gazetteer and incidents.
LOAD_STEPS = len(AREA_LEVELS) + 3


def demo(
    seed: Annotated[
        int | None,
        typer.Option(help="Seed of the synthetic district (default 411002; city 340700)."),
    ] = None,
    defects: Annotated[
        bool, typer.Option(help="Plant coverage defects (one gap, one overlap, unstaffed grids).")
    ] = False,
    incidents: Annotated[
        int | None,
        typer.Option(help="Incidents to generate (default 50,000; city: the preset's)."),
    ] = None,
    reload: Annotated[bool, typer.Option(help="Replace a demo that is already loaded.")] = False,
    city: Annotated[
        bool,
        typer.Option(
            "--city",
            help="A whole city (铜陵市, several districts) as generation 'city', for "
            "benchmarks; it replaces the stored incidents.",
        ),
    ] = False,
    preset: Annotated[
        str,
        typer.Option(
            help="With --city: 'small' (2 districts, ~370 micro-grids, 20,000 incidents) or "
            "'full' (6 districts, 3,900 grids, ~39,000 micro-grids, 1,000,000 incidents)."
        ),
    ] = "small",
):
    """Provision PostGIS, migrate, load the demo district (Weidu-like, 411002) and summarise."""
    from app.services.demo import load_demo
    from gis.demo import build_demo
    from gis.demo.city import PRESETS

    if preset not in PRESETS:
        raise typer.BadParameter(
            f"{preset!r} is not a preset; use one of {', '.join(PRESETS)}", param_hint="--preset"
        )
    if defects and city:
        raise typer.BadParameter(
            "defects are planted in the demo district only", param_hint="--defects"
        )
    started = time.perf_counter()
    engine = open_engine()
    if city:
        made = _generate_city(seed, preset, incidents)
        title = f"{made.city_name} {made.summary()['districts']} 个区 (city, preset {preset})"
        where = "117.81 E, 30.94 N"
    else:
        with console.status("generating the demo district…"):
            made = build_demo(
                seed=411002 if seed is None else seed,
                defects=defects,
                n_incidents=50_000 if incidents is None else incidents,
            )
        title, where = "demo district 411002", "113.82 E, 34.03 N"
    with progress_bar() as bar:
        task = bar.add_task("loading", total=LOAD_STEPS)

        def step(what: str, done: int, total: int) -> None:
            bar.update(task, description=f"loading {what}", completed=done - 1, total=total)

        result = load_demo(
            engine, made, reload=reload, progress=step, generation="city" if city else "demo"
        )
        bar.update(task, completed=LOAD_STEPS, description="loaded")
    print_demo_summary(result, time.perf_counter() - started, title, where)


def _generate_city(seed: int | None, preset: str, incidents: int | None):
    """Build the city district by district, one bar step each."""
    from gis.demo.city import build_city, city_specs
    from gis.errors import ValidationError

    with progress_bar() as bar:
        task = bar.add_task("generating the city", total=len(city_specs(preset)))

        def step(name: str, done: int, total: int) -> None:
            bar.update(task, description=f"generated {name}", completed=done, total=total)

        try:
            return build_city(
                seed=340700 if seed is None else seed,
                preset=preset,
                n_incidents=incidents,
                progress=step,
            )
        except ValidationError as exc:
            raise typer.BadParameter(str(exc)) from exc


def print_demo_summary(
    result: DemoLoadReport,
    seconds: float,
    title: str = "demo district 411002",
    where: str = "113.82 E, 34.03 N",
) -> None:
    table = Table(
        title=f"{title} — generation {result.generation!r}"
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
        console.print(_history_line(result))
    console.print(f"synthetic content on real coordinates around {where}; done in {seconds:.1f} s")


def _history_line(result: DemoLoadReport) -> str:
    """Where the stored demo incidents are in the closed loop, and how many went to workers."""
    assert result.incidents is not None
    statuses = result.incidents.by_loop_status
    still_open = [f"{statuses[s]:,} {s}" for s in INCIDENT_STATUSES[:-1] if statuses.get(s)]
    return (
        f"history: {statuses.get('closed', 0):,} closed, "
        f"{sum(n for s, n in statuses.items() if s != 'closed'):,} still open"
        + (f" ({', '.join(still_open)})" if still_open else "")
        + f"; {result.dispatched_to_workers:,} dispatched to grid workers"
    )
