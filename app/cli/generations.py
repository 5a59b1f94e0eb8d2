"""``gridmap generations``: versions of the whole boundary set."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from app.cli.common import console, index_store, open_engine
from gis.vocabulary import AREA_LEVELS

gen_app = typer.Typer(help="Generations: versions of the whole boundary set.", no_args_is_help=True)

#: Column headers of the area counts, narrow enough for an 80-column terminal.
SHORT_LEVELS = {
    "district": "dist.",
    "street": "streets",
    "community": "comm.",
    "grid": "grids",
    "micro_grid": "micro",
}


@gen_app.command("list")
def generations_list():
    """List generations with their area counts."""
    from app.db import repo

    table = Table("id", "label", "active", "created", *SHORT_LEVELS.values(), "note")
    table.columns[1].no_wrap = True
    with open_engine().connect() as conn:
        for gen in repo.list_generations(conn):
            counts = repo.counts_by_level(conn, gen.id)
            table.add_row(
                str(gen.id),
                gen.label,
                "✔" if gen.is_active else "",
                f"{gen.created_at:%Y-%m-%d %H:%M}",
                *[str(counts.get(level, 0)) for level in AREA_LEVELS],
                short_note(gen.note),
            )
    console.print(table)


def short_note(note: str | None) -> str:
    """Redesign plans keep their metrics as JSON in the note: show the gist."""
    if not note:
        return ""
    try:
        data = json.loads(note)
    except json.JSONDecodeError:
        return note[:60]
    if isinstance(data, dict) and "redesign_of" in data:
        cv = data.get("metrics", {}).get("cv")
        return f"{data.get('mode')} redesign of {data['redesign_of']}" + (
            f", CV {cv:.3f}" if isinstance(cv, float) else ""
        )
    return note[:60]


@gen_app.command("activate")
def generations_activate(
    generation: Annotated[str, typer.Argument(help="Label or id.")],
    tolerance: Annotated[float, typer.Option(help="Snap tolerance in metres.")] = 0.0,
):
    """Activate a generation and re-assign every incident (old assignments kept in history)."""
    from app.services.assignment import activate_and_reassign

    with console.status(f"activating {generation} and re-assigning incidents…"):
        report = activate_and_reassign(
            open_engine(), generation, tolerance=tolerance, indexes=index_store()
        )
    console.print(
        f"generation {report.generation!r} is active; {report.assigned:,} incidents re-assigned"
    )
