"""``gridmap incidents``: incident reports in and out."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import pandas as pd
import typer

from app.cli.common import (
    EncodingOpt,
    SheetOpt,
    console,
    err,
    index_store,
    open_engine,
    print_incident_report,
    progress_bar,
)

if TYPE_CHECKING:
    from app.services.incident_import import ImportProgress

incidents_app = typer.Typer(help="Incidents: import and export.", no_args_is_help=True)

#: Export formats; .csv and .xlsx are written for Excel (see ``incidents export``).
EXPORT_SUFFIXES = (".csv", ".xlsx", ".geojson", ".json", ".parquet", ".geoparquet")


class UnknownCategory(StrEnum):
    keep = "keep"
    reject = "reject"


def _field(help_text: str):
    return typer.Option(help=help_text)


@incidents_app.command("import")
def incidents_import(
    file: Annotated[
        Path,
        typer.Argument(
            help="CSV (UTF-8 or GBK), XLSX, GeoJSON points or Open311 GeoReport v2 JSON.",
            exists=True,
            dir_okay=False,
        ),
    ],
    source: Annotated[
        str | None,
        typer.Option(
            help="Source of the rows without one of their own: hotline_12345, police_110, "
            "patrol, resident, petition, other or a name of yours."
        ),
    ] = None,
    crs: Annotated[
        str | None,
        typer.Option(
            help="CRS of the coordinates: wgs84 (default), cgcs2000, gcj02, bd09. A 'crs' column "
            "overrides it per row."
        ),
    ] = None,
    id_field: Annotated[str, _field("Column with the external id.")] = "id",
    lon_field: Annotated[str, _field("Column with the longitude (e.g. 经度).")] = "lon",
    lat_field: Annotated[str, _field("Column with the latitude (e.g. 纬度).")] = "lat",
    time_field: Annotated[str, _field("Column with the report time.")] = "reported_at",
    category_field: Annotated[
        str, _field("Column with the category (taxonomy code or name, or a --category-map word).")
    ] = "category",
    address_field: Annotated[str, _field("Column with the address.")] = "address",
    description_field: Annotated[str, _field("Column with the description.")] = "description",
    source_field: Annotated[str, _field("Column with each row's source.")] = "source",
    status_field: Annotated[
        str | None, _field("Column with the status (上报/立案/派遣/处置/核查/结案 or English).")
    ] = None,
    level_field: Annotated[
        str | None, _field("Column with the handling level (网格/社区/街道 or English).")
    ] = None,
    registered_at_field: Annotated[str | None, _field("Column with the 立案 time.")] = None,
    dispatched_at_field: Annotated[str | None, _field("Column with the 派遣 time.")] = None,
    handled_at_field: Annotated[str | None, _field("Column with the 处置 time.")] = None,
    verified_at_field: Annotated[str | None, _field("Column with the 核查 time.")] = None,
    closed_at_field: Annotated[str | None, _field("Column with the 结案 time.")] = None,
    columns: Annotated[
        Path | None,
        typer.Option(
            help="CSV/XLSX 'field,column' mapping gridmap's fields (id, lon, status, closed_at, "
            "…) to the file's columns; applied over the --*-field options.",
            exists=True,
            dir_okay=False,
        ),
    ] = None,
    category_map: Annotated[
        Path | None,
        typer.Option(
            help="CSV/XLSX 'source_value,code' translating the file's categories to taxonomy "
            "codes.",
            exists=True,
            dir_okay=False,
        ),
    ] = None,
    unknown_category: Annotated[
        UnknownCategory,
        typer.Option(
            help="A missing or unmapped category: keep the row uncategorised (counted in the "
            "report) or reject it."
        ),
    ] = UnknownCategory.keep,
    sheet: SheetOpt = None,
    encoding: EncodingOpt = None,
    tolerance: Annotated[
        float, typer.Option(help="Snap points within this many metres of a grid (GPS noise).")
    ] = 0.0,
    chunk_rows: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="CSV rows read, cleaned and stored at a time (default 200,000): bounds the "
            "memory, not the batch, which stays all or nothing.",
        ),
    ] = None,
):
    """Import incidents: clean, geocode, assign to grids and store as one batch."""
    from app.services.incident_import import import_incident_file
    from gis.incident_stream import DEFAULT_CHUNK_ROWS
    from gis.incidents import FieldMap, field_map_from_table
    from gis.tables import read_table

    fields = FieldMap(
        id=id_field,
        lon=lon_field,
        lat=lat_field,
        time=time_field,
        category=category_field,
        address=address_field,
        description=description_field,
        source=source_field,
        status=status_field,
        handling_level=level_field,
        registered_at=registered_at_field,
        dispatched_at=dispatched_at_field,
        handled_at=handled_at_field,
        verified_at=verified_at_field,
        closed_at=closed_at_field,
    )
    if columns is not None:
        fields = field_map_from_table(read_table(columns)[0], fields)
    with import_progress(file.name) as progress:
        report = import_incident_file(
            open_engine(),
            file,
            fields=fields,
            source=source,
            crs=crs,
            encoding=encoding,
            sheet=sheet,
            tolerance=tolerance,
            category_map=category_map,
            unknown_category=unknown_category.value,
            indexes=index_store(),
            progress=progress,
            chunk_rows=chunk_rows or DEFAULT_CHUNK_ROWS,
        )
    if report.read is not None:
        console.print(f"{file.name}: {report.read.describe()}")
    if report.category_map_read is not None and category_map is not None:
        console.print(f"{category_map.name}: {report.category_map_read.describe()}")
    print_incident_report(report, file.name)
    _print_classification(report)


@contextmanager
def import_progress(name: str) -> Iterator[ImportProgress]:
    """Bars for the rows of an import: read, cleaned (located and assigned), stored.

    A CSV moves all three chunk by chunk, towards the rows its lines promise;
    other files are read whole first, the first bar pulsing meanwhile.
    """
    labels = {"read": "读取 read", "cleaned": "清洗 cleaned", "stored": "入库 stored"}
    with progress_bar() as bar:
        tasks = {
            step: bar.add_task(f"{name} {label}", total=None, start=step == "read")
            for step, label in labels.items()
        }

        def progress(step: str, done: int, total: int) -> None:
            bar.start_task(tasks[step])
            bar.update(tasks[step], completed=done, total=total)

        yield progress


def _print_classification(report) -> None:
    """What the import report adds for a city's own files: categories and history."""
    console.print(f"分类版本 taxonomy version: {report.taxonomy_version}")
    if report.uncategorised:
        console.print(f"未分类 uncategorised (stored): {report.uncategorised_count:,}")
        for given, n in sorted(report.uncategorised.items(), key=lambda kv: -kv[1])[:20]:
            err.print(f"  {n:,} × {given or '(no category)'}")
    for status, n in sorted(report.by_loop_status.items()):
        console.print(f"状态 status {status}: {n:,}")


@incidents_app.command("export")
def incidents_export(
    output: Annotated[
        Path,
        typer.Option("--output", "-o", help="File to write: .csv, .xlsx, .geojson or .parquet."),
    ],
    excel: Annotated[
        bool,
        typer.Option(
            help="CSV for Excel: a UTF-8 BOM and local times (Asia/Shanghai, no offset). "
            "--no-excel writes plain UTF-8 and ISO 8601 times in UTC."
        ),
    ] = True,
):
    """Write every incident with its assignment columns."""
    from app.db import repo
    from gis.tables import write_table

    suffix = output.suffix.lower()
    if suffix not in EXPORT_SUFFIXES:
        raise typer.BadParameter("use .csv, .xlsx, .geojson or .parquet", param_hint="--output")
    with open_engine().connect() as conn:
        frame = repo.incidents_frame(conn)
    if suffix in (".csv", ".xlsx"):
        table = pd.DataFrame(frame.drop(columns="geometry"))
        write_table(_times_for(table, local=excel or suffix == ".xlsx"), output, excel_csv=excel)
    elif suffix in (".geojson", ".json"):
        frame[frame.geometry.notna()].to_file(output, driver="GeoJSON", engine="pyogrio")
    else:
        frame.to_parquet(output)
    console.print(f"wrote {len(frame):,} incidents to {output}")


def _times_for(table: pd.DataFrame, *, local: bool) -> pd.DataFrame:
    """Times as Excel shows them: local wall-clock text, or ISO 8601 in UTC."""
    from gis.vocabulary import LOCAL_TZ

    for column in [c for c in table.columns if c.endswith("_at")]:
        moments = pd.to_datetime(table[column], utc=True)
        if local:
            text = moments.dt.tz_convert(LOCAL_TZ).dt.strftime("%Y-%m-%d %H:%M:%S")
        else:
            text = moments.map(lambda t: None if pd.isna(t) else t.isoformat())
        table[column] = text.where(moments.notna(), None)
    return table
