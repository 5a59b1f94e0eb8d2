"""``gridmap coverage``, ``hotspots`` and ``map``: the active generation analysed and drawn."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from app.cli.common import console, open_engine
from app.maps.basemap import resolve_basemap

if TYPE_CHECKING:
    import geopandas as gpd

    from app.services.map_data import MapData

StartOpt = Annotated[
    str | None,
    typer.Option(
        help="Incidents reported from this date or time on (China Standard Time unless an "
        "offset is given), e.g. 2023-01-01."
    ),
]
EndOpt = Annotated[
    str | None, typer.Option(help="Incidents reported before this date or time (exclusive).")
]
CategoryOpt = Annotated[
    str | None,
    typer.Option(help="Category codes, comma-separated; a major class (04) selects its items."),
]
SourceOpt = Annotated[
    str | None,
    typer.Option(help="Sources, comma-separated (hotline_12345, police_110, patrol, …)."),
]


def load(generation: str | None = None) -> MapData:
    """Areas, staff and incidents of ``generation`` (the active one without it)."""
    from app.services.map_data import load_map_data

    with console.status("loading areas, staff and incidents…"), open_engine().connect() as conn:
        return load_map_data(conn, generation)


# -- coverage --------------------------------------------------------------------------
def coverage(
    strict: Annotated[
        bool,
        typer.Option(help="Exit with status 1 when any defect is found (for CI and cron checks)."),
    ] = False,
    generation: Annotated[
        str | None,
        typer.Option(
            "--generation", "-g", help="Generation label or id (default: the active one)."
        ),
    ] = None,
    sliver_m2: Annotated[
        float, typer.Option(help="Gaps/overlaps smaller than this (m²) are slivers.")
    ] = 100.0,
    incident_tolerance: Annotated[
        float, typer.Option(help="Incidents this close (m) to a grid are not reported.")
    ] = 0.0,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Also write the defects as GeoJSON to this file."),
    ] = None,
    limit: Annotated[int, typer.Option(help="Defects listed at most.")] = 30,
):
    """Check full coverage: gaps, overlaps, slivers, nesting, unstaffed grids, stray incidents."""
    from app.services import analysis
    from gis.coverage import DEFECT_TYPES, coverage_summary_table

    data = load(generation)
    with console.status("checking coverage…"):
        report = analysis.coverage(
            data, sliver_m2=sliver_m2, incident_tolerance_m=incident_tolerance
        )
    summary = coverage_summary_table(report)
    headers = [_SHORT.get(t, t) for t in DEFECT_TYPES]
    table = Table(
        "level",
        "areas",
        "covered",
        *headers,
        title=f"coverage of generation {data.generation['label']!r}",
    )
    for level, row in zip(summary.index, summary.to_dict("records"), strict=True):
        ratio = row["coverage_ratio"]
        table.add_row(
            str(level),
            f"{int(row['areas']):,}",
            "" if ratio != ratio else f"{ratio:.3%}",
            *[_count(int(row[t])) for t in DEFECT_TYPES],
        )
    console.print(table)
    _print_defects(report.defects, limit)
    if output is not None:
        report.defects.to_file(output, driver="GeoJSON", engine="pyogrio")
        console.print(f"wrote {len(report.defects)} defects to {output}")
    if strict and not report.ok:
        raise typer.Exit(1)


_SHORT = {"outside_incident": "outside", "unstaffed": "unstaffed"}


def _count(value: int) -> str:
    return f"[bold red]{value}[/bold red]" if value else "0"


def _print_defects(defects: gpd.GeoDataFrame, limit: int) -> None:

    if not len(defects):
        console.print("[green]no defects: full coverage, no blind spots[/green]")
        return
    table = Table("type", "level", "m²", "detail", title=f"{len(defects)} defects")
    for row in defects.head(limit).itertuples():
        table.add_row(row.type, row.level, f"{row.area_m2:,.1f}", row.detail)
    console.print(table)
    if len(defects) > limit:
        console.print(f"… {len(defects) - limit} more (--limit, or -o FILE.geojson)")


# -- hotspots --------------------------------------------------------------------------
def hotspots(
    start: StartOpt = None,
    end: EndOpt = None,
    category: CategoryOpt = None,
    source: SourceOpt = None,
    permutations: Annotated[
        int,
        typer.Option(
            min=0,
            max=99_999,
            help="Permutations for pseudo p-values; 0 for the normal approximation (as ArcGIS).",
        ),
    ] = 999,
    fdr: Annotated[
        bool, typer.Option(help="Control the false discovery rate per confidence level.")
    ] = False,
    seed: Annotated[int, typer.Option(help="Seed of the permutations.")] = 0,
    value: Annotated[str, typer.Option(help="count, rate_per_1000 or per_km2.")] = "count",
    output: Annotated[
        Path | None,
        typer.Option(
            "--output", "-o", help="Write every grid with count, z, p and bin as GeoJSON."
        ),
    ] = None,
    top: Annotated[int, typer.Option(help="Hottest grids listed.")] = 15,
    district: Annotated[
        str | None,
        typer.Option(help="A district's 6-digit code: Gi* among its grids only (a city)."),
    ] = None,
):
    """Getis-Ord Gi* hot and cold spots of incidents per grid (ArcGIS bins, ±3 = 99 %)."""
    from app.maps.layers import HOT_LABELS
    from app.services import analysis
    from app.services.scope import scope_grids
    from app.services.stats import narrow_to_district
    from gis.errors import GridmapError

    selection = analysis.Selection.parse(start, end, category, source)
    try:
        area = narrow_to_district(None, district)
    except GridmapError as exc:
        raise typer.BadParameter(str(exc), param_hint="--district") from exc
    data = load()
    if area is not None:
        data = scope_grids(data, area)
    with console.status(f"Gi* with {permutations} permutations…"):
        stats = analysis.grid_stats(data, selection, permutations, seed, fdr, 0.10, value)
    console.print(
        f"{selection.describe()}: {stats.attrs['selected']:,} incidents, "
        f"{stats.attrs['unassigned']:,} outside every grid"
    )
    bins = Table("class", "grids", title="confidence bins")
    for b in (3, 2, 1, 0, -1, -2, -3):
        bins.add_row(HOT_LABELS[b], f"{int((stats['bin'] == b).sum()):,}")
    console.print(bins)
    hottest = stats.sort_values("z", ascending=False).head(top)
    table = Table("code", "name", value, "z", "p", "class", title=f"top {top} by z")
    for row in hottest.itertuples():
        table.add_row(
            row.code,
            _name_cell(row.name),
            f"{getattr(row, value):,.2f}",
            f"{row.z:.2f}",
            f"{row.p:.3f}",
            HOT_LABELS[int(row.bin)],
        )
    console.print(table)
    if output is not None:
        out = stats.assign(**{"class": stats["bin"].map(HOT_LABELS)})
        out.to_file(output, driver="GeoJSON", engine="pyogrio")
        console.print(f"wrote {len(out)} grids to {output}")


def _name_cell(name: object) -> str:
    """A grid's name, or a dash for a grid without one (never ``nan``)."""
    import pandas as pd  # loaded already by the analysis; imported here to keep startup light

    return "—" if pd.isna(name) or str(name).strip() == "" else str(name)  # type: ignore[arg-type]


# -- map -------------------------------------------------------------------------------
def _check_embeddable(data: MapData, limit: int) -> None:
    """Refuse a standalone page that would embed more than ``limit`` areas."""
    from gis.errors import GridmapError

    areas = sum(len(frame) for frame in data.areas.values())
    if areas > limit:
        raise GridmapError(
            f"generation {data.generation['label']!r} has {areas:,} areas: a standalone page "
            f"embeds at most {limit:,} (GRIDMAP_MAP_EMBED_MAX_AREAS), beyond that it is too "
            "large to open. Serve the map instead — `gridmap serve`, then open /map: it draws "
            "the large levels from vector tiles (/tiles). Or write one grid: --grid CODE."
        )


def map_page(
    output: Annotated[
        Path, typer.Option("--output", "-o", help="HTML file to write.", dir_okay=False)
    ],
    start: StartOpt = None,
    end: EndOpt = None,
    category: CategoryOpt = None,
    source: SourceOpt = None,
    measure: Annotated[
        str, typer.Option(help="Choropleth: count, rate_per_1000 or per_km2.")
    ] = "count",
    basemap: Annotated[
        str,
        typer.Option(
            help="none (default), osm, amap (GCJ-02: geometries are converted), amap-satellite, "
            "or a tile URL template with {z}/{x}/{y}."
        ),
    ] = "none",
    basemap_crs: Annotated[
        str | None, typer.Option(help="Datum of a basemap URL: wgs84 or gcj02.")
    ] = None,
    grid: Annotated[
        str | None, typer.Option(help="Map one grid (its code) instead of the district.")
    ] = None,
    assets: Annotated[
        str,
        typer.Option(
            help="inline (default: one self-contained file, works offline anywhere) or a URL "
            "prefix where a gridmap server serves them, e.g. "
            "http://gridmap.intranet/static/vendor/."
        ),
    ] = "inline",
):
    """Write the map page as a standalone HTML file (the page /map serves)."""
    from app.config import MapSettings
    from app.maps.assets import AssetStore
    from app.maps.grid_page import build_grid_page
    from app.maps.page import PageOptions, build_map_page
    from app.services.analysis import Selection

    settings = MapSettings()
    selection = Selection.parse(start, end, category, source)
    options = PageOptions(
        basemap=resolve_basemap(basemap, crs=basemap_crs),
        asset_prefix=None if assets == "inline" else assets,
        simplify_m=settings.simplify_m,
        cluster_points=settings.cluster_points,
        permutations=settings.permutations,
    )
    data = load()
    if not grid:
        _check_embeddable(data, settings.embed_max_areas)
    with console.status("building the map…"):
        store = AssetStore(settings.asset_dir)
        page = (
            build_grid_page(data, grid, selection, options, store)
            if grid
            else build_map_page(data, selection, measure, options, store)
        )
    output.write_text(page, encoding="utf-8")
    size = len(page.encode("utf-8"))
    needs = [u for u in (options.basemap.url, options.asset_prefix) if u]
    console.print(
        f"wrote {output} ({size / 1e6:.1f} MB; {selection.describe()}; basemap "
        f"{options.basemap.name}); it loads "
        + (f"only from {', '.join(needs)}" if needs else "nothing from any network")
    )
