"""``gridmap areas``: boundary layers in and out."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Annotated

import typer

from app.cli.common import (
    CrsOpt,
    GenerationOpt,
    GpkgLayerOpt,
    LayerEncodingOpt,
    LevelOpt,
    NameFieldOpt,
    PolygonFileArg,
    check_level,
    console,
    generation_or_exit,
    open_engine,
    print_problems,
)

areas_app = typer.Typer(help="Boundary layers: import and export.", no_args_is_help=True)


@areas_app.command("import")
def areas_import(
    file: PolygonFileArg,
    level: LevelOpt,
    code_field: Annotated[
        str | None,
        typer.Option(help="Column with unified codes; without it codes are generated W→E, N→S."),
    ] = None,
    parent_field: Annotated[
        str | None,
        typer.Option(
            help="Column with parent codes; without it the parent is the area holding most of "
            "each polygon."
        ),
    ] = None,
    parent_code: Annotated[
        str | None,
        typer.Option(help="One parent code for every row (a layer loaded without its parents)."),
    ] = None,
    name_field: NameFieldOpt = None,
    kind_field: Annotated[
        str | None, typer.Option(help="Column with the kind (comprehensive, dedicated, …).")
    ] = None,
    crs: CrsOpt = None,
    layer: GpkgLayerOpt = None,
    encoding: LayerEncodingOpt = None,
    generation: GenerationOpt = None,
    repair: Annotated[bool, typer.Option(help="Repair invalid geometries (make_valid).")] = False,
    replace: Annotated[
        bool, typer.Option(help="Replace this level of the generation instead of adding to it.")
    ] = False,
    report: Annotated[
        Path | None, typer.Option(help="Also write the problems as JSON to this file.")
    ] = None,
):
    """Validate a boundary file and store all of it, or nothing with a full report."""
    from app.services.area_import import import_areas
    from gis.areas import read_areas

    check_level(level)
    with console.status(f"importing {file.name} as {level} areas…"):
        # Read here rather than in import_area_file: the encoding used is shown to the user.
        gdf = read_areas(file, crs=crs, layer=layer, encoding=encoding)
        if gdf.attrs.get("encoding"):
            how = "指定 given" if encoding else "自动识别 detected or .cpg"
            console.print(f"{file.name}: 编码 encoding: {gdf.attrs['encoding']} ({how})")
        result = import_areas(
            open_engine(),
            gdf,
            level,
            source=str(file),
            file_sha256=hashlib.sha256(file.read_bytes()).hexdigest(),
            code_field=code_field,
            parent_field=parent_field,
            parent_code=parent_code,
            name_field=name_field,
            kind_field=kind_field,
            generation=generation,
            repair=repair,
            replace=replace,
        )
    if report:
        report.write_text(json.dumps(result.problems, ensure_ascii=False, indent=1))
    if result.loaded:
        made = " (new generation)" if result.created_generation else ""
        console.print(
            f"[green]stored {result.stored} {level} areas[/green] from {file.name} "
            f"into generation {result.generation!r}{made}; batch #{result.batch_id}"
        )
        return
    print_problems(
        result.problems,
        f"{file.name}: refused, nothing stored "
        f"({len(result.problems)} problems in {result.rows_in} rows; "
        f"kept as import batch #{result.batch_id})",
    )
    raise typer.Exit(1)


@areas_app.command("export")
def areas_export(
    level: LevelOpt,
    output: Annotated[
        Path,
        typer.Option(
            "--output",
            "-o",
            help="File to write; the format follows the suffix (.geojson .gpkg .shp .parquet).",
        ),
    ],
    generation: GenerationOpt = None,
):
    """Write one level of a generation to a file."""
    from app.db import repo
    from gis.areas import write_areas

    check_level(level)
    with open_engine().connect() as conn:
        gen = generation_or_exit(conn, generation)
        gdf = repo.areas_frame(conn, gen.id, level)
    write_areas(gdf, output)
    console.print(f"wrote {len(gdf)} {level} areas of generation {gen.label!r} to {output}")
