"""``gridmap gazetteer``: the door-plate addresses that geocode address-only reports."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from app.cli.common import console, open_engine

gazetteer_app = typer.Typer(
    help="Address gazetteer for geocoding address-only reports.", no_args_is_help=True
)


@gazetteer_app.command("import")
def gazetteer_import(
    file: Annotated[
        Path,
        typer.Argument(
            help="CSV or Parquet with address, lon, lat (WGS84).", exists=True, dir_okay=False
        ),
    ],
    replace: Annotated[bool, typer.Option(help="Replace the whole gazetteer.")] = False,
):
    """Load building / door-plate addresses used to geocode address-only incidents."""
    from app.db import repo
    from gis.geocode import Gazetteer

    gazetteer = Gazetteer.from_file(file)
    with open_engine().begin() as conn:
        n = repo.store_gazetteer(conn, gazetteer.entries, source=file.name, replace=replace)
    console.print(f"stored {n:,} addresses")
