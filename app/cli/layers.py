"""``gridmap layers``: thematic layers (多格合一) beside the grids, and how they align."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from app.cli.common import (
    CrsOpt,
    GenerationOpt,
    GpkgLayerOpt,
    LayerEncodingOpt,
    NameFieldOpt,
    PolygonFileArg,
    console,
    open_engine,
    print_problems,
)

if TYPE_CHECKING:
    from app.services.layers import ThemeCrosswalk

layers_app = typer.Typer(
    help="Thematic layers 专题图层 (police, market, party, mediation …) and their crosswalk "
    "with the grids.",
    no_args_is_help=True,
)

ThemeOpt = Annotated[
    str,
    typer.Option(
        "--theme",
        "-t",
        help="police, market, party, mediation or another lower-case name (a-z, 0-9, _).",
    ),
]
ThresholdOpt = Annotated[
    float,
    typer.Option(help="Share of a grid's area in one unit from which the grid is aligned."),
]
ToleranceOpt = Annotated[
    float,
    typer.Option(
        "--tolerance", help="Metres from a grid boundary within which a theme boundary follows it."
    ),
]


@layers_app.command("import")
def layers_import(
    file: PolygonFileArg,
    theme: ThemeOpt,
    code_field: Annotated[
        str | None,
        typer.Option(help="Column with the department's codes; without it units are numbered."),
    ] = None,
    name_field: NameFieldOpt = None,
    encoding: LayerEncodingOpt = None,
    crs: CrsOpt = None,
    layer: GpkgLayerOpt = None,
    generation: GenerationOpt = None,
    merge_parts: Annotated[
        bool,
        typer.Option(help="Rows sharing a code are parts of one unit: merge them."),
    ] = False,
    repair: Annotated[bool, typer.Option(help="Repair invalid geometries (make_valid).")] = False,
    replace: Annotated[
        bool, typer.Option(help="Replace the theme instead of adding units to it.")
    ] = False,
    report: Annotated[
        Path | None, typer.Option(help="Also write the problems as JSON to this file.")
    ] = None,
):
    """Validate a theme file and store all of it beside a generation, or nothing."""
    from app.services.layers import import_layer_file

    with console.status(f"importing {file.name} as theme {theme}…"):
        result = import_layer_file(
            open_engine(),
            file,
            theme,
            code_field=code_field,
            name_field=name_field,
            encoding=encoding,
            crs=crs,
            layer=layer,
            generation=generation,
            merge_parts=merge_parts,
            repair=repair,
            replace=replace,
        )
    if report:
        report.write_text(json.dumps(result.problems, ensure_ascii=False, indent=1))
    if result.loaded:
        replaced = f", replacing {result.replaced} units" if result.replaced else ""
        console.print(
            f"[green]已导入 stored {result.stored} units[/green] of theme {theme!r} from "
            f"{file.name} beside generation {result.generation!r}{replaced}; "
            f"batch #{result.batch_id}"
        )
        return
    print_problems(
        result.problems,
        f"{file.name}: 拒绝导入 refused, nothing stored "
        f"({len(result.problems)} problems in {result.rows_in} rows; "
        f"kept as import batch #{result.batch_id})",
    )
    raise typer.Exit(1)


@layers_app.command("list")
def layers_list(
    generation: Annotated[
        str | None,
        typer.Option(
            "--generation", "-g", help="Generation label or id, or 'all' (default: the active one)."
        ),
    ] = None,
):
    """The themes stored beside a generation."""
    from app.services.layers import list_layers

    found = list_layers(open_engine(), generation)
    table = Table(title="专题图层 thematic layers")
    for column in ("主题 theme", "代 generation", "单元 units", "来源 source", "导入 loaded"):
        table.add_column(column)
    for layer in found:
        table.add_row(
            layer.theme,
            layer.generation,
            str(layer.units),
            layer.source or "",
            f"{layer.created_at:%Y-%m-%d %H:%M}",
        )
    console.print(table)
    if not found:
        console.print("no themes yet: gridmap layers import FILE --theme police")


@layers_app.command("export")
def layers_export(
    theme: ThemeOpt,
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
    """Write a theme's units to a file."""
    from app.services.layers import export_layer

    layer, count = export_layer(open_engine(), theme, output, generation)
    console.print(f"wrote {count} units of theme {theme!r} ({layer.generation}) to {output}")


@layers_app.command("delete")
def layers_delete(
    theme: ThemeOpt,
    generation: GenerationOpt = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
):
    """Delete a theme (its units) from a generation."""
    from app.services.layers import delete_layer

    if not yes:
        typer.confirm(f"delete theme {theme!r}?", abort=True)
    deleted = delete_layer(open_engine(), theme, generation)
    console.print(f"已删除 deleted theme {theme!r} ({deleted} units)")


@layers_app.command("align")
def layers_align(
    theme: ThemeOpt,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            help="Write the crosswalk: .xlsx or .csv (every unit × grid pair) or .geojson "
            "(the grids with their class).",
        ),
    ] = None,
    generation: GenerationOpt = None,
    threshold: ThresholdOpt = 0.99,
    tolerance: ToleranceOpt = 10.0,
    show: Annotated[int, typer.Option(help="Split grids to list (largest first).")] = 50,
):
    """How a theme aligns with the grids: aligned and split grids, and the alignment score."""
    from app.services.layers import crosswalk_of, write_crosswalk

    with console.status(f"crosswalk of theme {theme}…"):
        result = crosswalk_of(
            open_engine(), theme, generation, threshold=threshold, tolerance_m=tolerance
        )
    _print_summary(result)
    _print_split(result, show)
    if output:
        write_crosswalk(result, output)
        console.print(f"wrote the crosswalk to {output}")


def _print_summary(result: ThemeCrosswalk) -> None:
    s = result.summary()
    table = Table(title=f"多格合一 theme {s['theme']!r} × grids of {s['generation']!r}")
    table.add_column("指标 measure")
    table.add_column("value", justify="right")
    table.add_row("专题单元 units", f"{s['units']:,}")
    table.add_row("网格 grids", f"{s['grids']:,}")
    table.add_row(f"对齐 aligned (≥ {s['threshold']:.0%} in one unit)", f"{s['aligned']:,}")
    table.add_row("分割 split", f"{s['split']:,}")
    table.add_row("未覆盖 uncovered", f"{s['uncovered']:,}")
    table.add_row("对齐率 share aligned", _percent(s["share_aligned"]))
    table.add_row(
        f"边界吻合 boundary within {s['tolerance_m']:g} m", _percent(s["share_boundary_within"])
    )
    table.add_row("专题边界 theme boundary", f"{s['boundary_m'] / 1000:,.1f} km")
    console.print(table)


def _print_split(result: ThemeCrosswalk, show: int) -> None:
    split = result.crosswalk.split
    if split.empty:
        return
    table = Table(title=f"分割网格 split grids ({len(split):,}, largest first)")
    table.add_column("网格 grid")
    table.add_column("面积 area m²", justify="right")
    table.add_column("主要单元 main unit")
    table.add_column("份额 share", justify="right")
    table.add_column("分割为 split into", overflow="fold")
    for row in split.head(show).itertuples():
        table.add_row(
            row.grid_code,
            f"{row.area_m2:,.0f}",
            str(row.unit_code),
            f"{row.share:.1%}",
            row.split_into,
        )
    console.print(table)
    if len(split) > show:
        console.print(f"… {len(split) - show:,} more (write them with -o FILE.xlsx)")


def _percent(value: float | None) -> str:
    return "–" if value is None else f"{value:.1%}"


@layers_app.command("suggest")
def layers_suggest(
    theme: ThemeOpt,
    output: Annotated[
        Path,
        typer.Option(
            "--output", "-o", help="Layer to write (.geojson .gpkg .shp .parquet) for review."
        ),
    ],
    generation: GenerationOpt = None,
    threshold: ThresholdOpt = 0.99,
):
    """Snapping suggestion: each unit as the union of the grids mostly inside it."""
    from app.services.layers import crosswalk_of, suggestion_of
    from gis.areas import write_areas

    result = crosswalk_of(open_engine(), theme, generation, threshold=threshold)
    suggestion = suggestion_of(result)
    write_areas(suggestion, output)
    table = Table(title=f"吸附建议 snapping suggestion for theme {theme!r}")
    for column in ("单元 unit", "网格 grids", "划入 gained m²", "划出 lost m²", "户 households ±"):
        table.add_column(column, justify="right")
    for row in suggestion.itertuples():
        table.add_row(
            str(row.code),
            str(row.grids),
            f"{row.area_gained_m2:,.0f}",
            f"{row.area_lost_m2:,.0f}",
            f"+{row.households_gained:,.0f} / -{row.households_lost:,.0f}",
        )
    console.print(table)
    console.print(f"wrote {len(suggestion)} suggested units to {output}")
