"""``gridmap incidents``: incident reports in and out."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from app.cli.common import console, open_engine, print_incident_report

incidents_app = typer.Typer(help="Incidents: import and export.", no_args_is_help=True)


@incidents_app.command("import")
def incidents_import(
    file: Annotated[
        Path,
        typer.Argument(
            help="CSV, GeoJSON points or Open311 GeoReport v2 JSON.", exists=True, dir_okay=False
        ),
    ],
    source: Annotated[
        str | None,
        typer.Option(
            help="Source of every row: hotline_12345, police_110, patrol, resident, petition, "
            "other or a name of yours. Without it, a 'source' column."
        ),
    ] = None,
    crs: Annotated[
        str | None,
        typer.Option(
            help="CRS of the coordinates: wgs84 (default), cgcs2000, gcj02, bd09. A 'crs' column "
            "overrides it per row."
        ),
    ] = None,
    id_field: Annotated[str, typer.Option(help="Column with the external id.")] = "id",
    lon_field: Annotated[str, typer.Option(help="Column with the longitude.")] = "lon",
    lat_field: Annotated[str, typer.Option(help="Column with the latitude.")] = "lat",
    time_field: Annotated[str, typer.Option(help="Column with the report time.")] = "reported_at",
    category_field: Annotated[
        str, typer.Option(help="Column with the category (taxonomy code or name).")
    ] = "category",
    address_field: Annotated[str, typer.Option(help="Column with the address.")] = "address",
    description_field: Annotated[
        str, typer.Option(help="Column with the description.")
    ] = "description",
    encoding: Annotated[str, typer.Option(help="Text encoding of the file.")] = "utf-8",
    tolerance: Annotated[
        float, typer.Option(help="Snap points within this many metres of a grid (GPS noise).")
    ] = 0.0,
):
    """Import incidents: clean, geocode, assign to grids and store as one batch."""
    from app.services.incident_import import import_incident_file
    from gis.incidents import FieldMap

    fields = FieldMap(
        id=id_field,
        lon=lon_field,
        lat=lat_field,
        time=time_field,
        category=category_field,
        address=address_field,
        description=description_field,
    )
    with console.status(f"importing {file.name}…"):
        report = import_incident_file(
            open_engine(),
            file,
            fields=fields,
            source=source,
            crs=crs,
            encoding=encoding,
            tolerance=tolerance,
        )
    print_incident_report(report, file.name)


@incidents_app.command("export")
def incidents_export(
    output: Annotated[
        Path, typer.Option("--output", "-o", help="File to write: .csv, .geojson or .parquet.")
    ],
):
    """Write every incident with its assignment columns."""
    from app.db import repo

    suffix = output.suffix.lower()
    if suffix not in (".csv", ".geojson", ".json", ".parquet", ".geoparquet"):
        raise typer.BadParameter("use .csv, .geojson or .parquet", param_hint="--output")
    with open_engine().connect() as conn:
        frame = repo.incidents_frame(conn)
    if suffix == ".csv":
        frame.drop(columns="geometry").to_csv(output, index=False)
    elif suffix in (".geojson", ".json"):
        frame[frame.geometry.notna()].to_file(output, driver="GeoJSON", engine="pyogrio")
    else:
        frame.to_parquet(output)
    console.print(f"wrote {len(frame):,} incidents to {output}")
