"""``gridmap gazetteer``: the door-plate addresses that geocode address-only reports."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from app.cli.common import EncodingOpt, SheetOpt, console, open_engine

gazetteer_app = typer.Typer(
    help="Address gazetteer for geocoding address-only reports.", no_args_is_help=True
)


@gazetteer_app.command("import")
def gazetteer_import(
    file: Annotated[
        Path,
        typer.Argument(
            help="CSV (UTF-8 or GBK), XLSX or Parquet with address, lon, lat (WGS84).",
            exists=True,
            dir_okay=False,
        ),
    ],
    replace: Annotated[bool, typer.Option(help="Replace the whole gazetteer.")] = False,
    sheet: SheetOpt = None,
    encoding: EncodingOpt = None,
    address_field: Annotated[str, typer.Option(help="Column with the address.")] = "address",
    lon_field: Annotated[str, typer.Option(help="Column with the longitude.")] = "lon",
    lat_field: Annotated[str, typer.Option(help="Column with the latitude.")] = "lat",
):
    """Load building / door-plate addresses used to geocode address-only incidents."""
    from app.db import repo
    from gis.geocode import Gazetteer
    from gis.tables import TABLE_SUFFIXES, read_table

    if file.suffix.lower() in TABLE_SUFFIXES:
        frame, read = read_table(file, sheet=sheet, encoding=encoding)
        console.print(f"{file.name}: {read.describe()}")
        names = {address_field: "address", lon_field: "lon", lat_field: "lat"}
        gazetteer = Gazetteer(frame.rename(columns=names))
    else:
        gazetteer = Gazetteer.from_file(file)
    with open_engine().begin() as conn:
        n = repo.store_gazetteer(conn, gazetteer.entries, source=file.name, replace=replace)
    console.print(f"stored {n:,} addresses")
