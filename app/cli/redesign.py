"""``gridmap redesign`` computes a plan and stores it as an inactive generation;
``gridmap redesign-map`` draws it next to today's grids."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from app.cli.common import console, open_engine

METRIC_LABELS = {
    "k": "grids",
    "cv": "workload CV",
    "max_mean": "max / mean",
    "min_mean": "min / mean",
    "within_band": "share within ±20 %",
    "pp_mean": "Polsby–Popper mean",
    "pp_min": "Polsby–Popper min",
    "contiguity_violations": "contiguity violations",
    "nesting_violations": "nesting violations",
    "households_kept": "households keeping grid",
    "area_kept": "area keeping grid",
    "unstaffed_grids": "grids without a leader or worker",
}


def redesign_map(
    plan: Annotated[str, typer.Argument(help="Label or id of the plan's generation.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="HTML file to write.")],
):
    """Write the before/after map of a redesign plan as a standalone HTML page."""
    from app.config import MapSettings
    from app.maps.assets import AssetStore
    from app.maps.redesign_page import build_redesign_page
    from app.services.redesign import compare_plan

    comparison = compare_plan(open_engine(), plan)
    page = build_redesign_page(
        comparison.before,
        comparison.after,
        comparison.metrics,
        comparison.baseline,
        f"{comparison.source} → {comparison.label}",
        AssetStore(MapSettings().asset_dir),
        None,
    )
    output.write_text(page, encoding="utf-8")
    console.print(f"wrote {output} ({len(page) / 1e6:.1f} MB, assets inlined: works offline)")


def redesign(
    target: Annotated[int, typer.Option(help="Number of grids wanted (e.g. 539).")],
    mode: Annotated[
        str,
        typer.Option(help="merge: unions of whole grids; reshape: micro-grids move between grids."),
    ] = "merge",
    weights: Annotated[
        str | None,
        typer.Option(
            help='Workload weights as JSON, e.g. \'{"households": 0.5, "incidents": 0.5}\'; '
            "keys households, population, incidents, area."
        ),
    ] = None,
    nest_within: Annotated[str, typer.Option(help="community or street.")] = "community",
    band: Annotated[
        float | None,
        typer.Option(help="Require every grid within ±BAND of the mean workload (e.g. 0.2)."),
    ] = None,
    lock_dedicated: Annotated[
        bool, typer.Option(help="Keep dedicated grids exactly as they are.")
    ] = False,
    seed: Annotated[int, typer.Option(help="Seed of the search.")] = 0,
    label: Annotated[str | None, typer.Option(help="Label of the new generation.")] = None,
    dry_run: Annotated[bool, typer.Option(help="Compute and report; store nothing.")] = False,
    since: Annotated[
        datetime | None,
        typer.Option(
            formats=["%Y-%m-%d"],
            help="First day of the incidents weighed (default: 12 months before --until).",
        ),
    ] = None,
    until: Annotated[
        datetime | None,
        typer.Option(
            formats=["%Y-%m-%d"], help="Last day of the incidents weighed (default: today)."
        ),
    ] = None,
):
    """Redesign the active generation's grids to TARGET with balanced workload."""
    from app.services.redesign import plan_redesign

    if mode not in ("merge", "reshape"):
        raise typer.BadParameter("use merge or reshape", param_hint="--mode")
    try:
        parsed = json.loads(weights) if weights else None
    except json.JSONDecodeError as exc:
        raise typer.BadParameter(f"not JSON: {exc}", param_hint="--weights") from exc
    with console.status("redesigning…") as status:
        result = plan_redesign(
            open_engine(),
            target,
            mode=mode,
            weights=parsed,
            nest_within=nest_within,
            band=band,
            lock_dedicated=lock_dedicated,
            seed=seed,
            label=label,
            dry_run=dry_run,
            progress=lambda m: status.update(m),
            since=since.date() if since else None,
            until=until.date() if until else None,
        )
    table = Table(
        title=f"{mode} plan, {result.baseline['k']} → {result.metrics['k']} grids "
        f"({result.seconds:.1f} s)"
    )
    table.add_column("metric")
    table.add_column("before", justify="right")
    table.add_column("after", justify="right")
    for key, name in METRIC_LABELS.items():
        table.add_row(name, _fmt(result.baseline.get(key)), _fmt(result.metrics.get(key)))
    console.print(table)
    if result.window is not None:
        console.print(
            f"工作量统计期 workload window {result.window.describe()}: "
            f"{result.window_incidents:,} incidents"
            + ("" if result.window_incidents else " (none: workload without incidents)")
        )
    if result.unstaffed:
        console.print(
            f"[yellow]{len(result.unstaffed)} new grids without a grid leader or worker:[/yellow] "
            + ", ".join(result.unstaffed[:20])
            + (" …" if len(result.unstaffed) > 20 else "")
        )
    if result.generation:
        console.print(
            f"stored as inactive generation [bold]{result.generation}[/bold] with "
            f"{result.lineage_rows} lineage rows; activate it with "
            f"`gridmap generations activate {result.generation}`"
        )
    else:
        console.print("dry run: nothing stored")


def _fmt(value: float | None) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and not value.is_integer():
        return f"{value:.3f}"
    return f"{int(value):,}"
