"""The ``gridmap`` command line (typer + rich)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from app.config import Settings
from gis.codes import LEVELS
from gis.errors import GridmapError

app = typer.Typer(
    help="gridmap: grid governance GIS — grids with unified codes in PostGIS.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
db_app = typer.Typer(help="Database: provisioning and schema migrations.", no_args_is_help=True)
areas_app = typer.Typer(help="Boundary layers: import and export.", no_args_is_help=True)
gen_app = typer.Typer(help="Generations: versions of the whole boundary set.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(areas_app, name="areas")
incidents_app = typer.Typer(help="Incidents: import and export.", no_args_is_help=True)
gazetteer_app = typer.Typer(
    help="Address gazetteer for geocoding address-only reports.", no_args_is_help=True
)
app.add_typer(gen_app, name="generations")
app.add_typer(incidents_app, name="incidents")
app.add_typer(gazetteer_app, name="gazetteer")

console = Console()
err = Console(stderr=True)

LevelOpt = Annotated[str, typer.Option("--level", "-l", help=f"One of: {', '.join(LEVELS)}.")]
GenerationOpt = Annotated[
    str | None,
    typer.Option(
        "--generation",
        "-g",
        help="Generation label or id (default: the active one). A new label "
        "creates an inactive generation.",
    ),
]


def _engine(migrate: bool = True):
    from app.db.provision import ensure_database
    from app.db.session import make_engine

    return make_engine(ensure_database(Settings(), migrate=migrate))


def _check_level(level: str) -> str:
    if level not in LEVELS:
        raise typer.BadParameter(
            f"{level!r} is not a level; use one of {', '.join(LEVELS)}", param_hint="--level"
        )
    return level


# -- db ------------------------------------------------------------------------------
@db_app.command("upgrade")
def db_upgrade(revision: Annotated[str, typer.Argument(help="Target revision.")] = "head"):
    """Provision the database if needed and migrate the schema to REVISION."""
    from app.db.provision import ensure_database
    from app.db.session import upgrade

    upgrade(ensure_database(Settings(), migrate=False), revision)
    console.print(f"[green]schema at {revision}[/green]")


@db_app.command("url")
def db_url(show_password: Annotated[bool, typer.Option(help="Print the password too.")] = False):
    """Print the SQLAlchemy URL of the database gridmap uses (starting the embedded one)."""
    from app.db.provision import ensure_database

    url = ensure_database(Settings(), migrate=False)
    if not show_password and "@" in url:
        head, tail = url.split("@", 1)
        url = head.rsplit(":", 1)[0] + ":***@" + tail
    console.print(url, soft_wrap=True)


# -- areas ---------------------------------------------------------------------------
@areas_app.command("import")
def areas_import(
    file: Annotated[
        Path,
        typer.Argument(
            help="GeoJSON, GeoPackage, Shapefile or GeoParquet.", exists=True, dir_okay=False
        ),
    ],
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
    name_field: Annotated[str | None, typer.Option(help="Column with names.")] = None,
    kind_field: Annotated[
        str | None, typer.Option(help="Column with the kind (comprehensive, dedicated, …).")
    ] = None,
    crs: Annotated[
        str | None,
        typer.Option(
            help="CRS of the file when it has none: wgs84, cgcs2000, gcj02, bd09 or EPSG:n."
        ),
    ] = None,
    layer: Annotated[str | None, typer.Option(help="Layer of a GeoPackage.")] = None,
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
    from app.services.area_import import import_area_file

    _check_level(level)
    with console.status(f"importing {file.name} as {level} areas…"):
        result = import_area_file(
            _engine(),
            file,
            level,
            code_field=code_field,
            parent_field=parent_field,
            parent_code=parent_code,
            name_field=name_field,
            kind_field=kind_field,
            crs=crs,
            layer=layer,
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
    _print_problems(
        result.problems,
        f"{file.name}: refused, nothing stored "
        f"({len(result.problems)} problems in {result.rows_in} rows; "
        f"kept as import batch #{result.batch_id})",
    )
    raise typer.Exit(1)


def _print_problems(problems: list[dict], title: str) -> None:
    table = Table(title=title, title_style="bold red", show_lines=False)
    table.add_column("row", justify="right")
    table.add_column("code")
    table.add_column("reason", overflow="fold")
    for p in problems:
        table.add_row(
            "" if p.get("row") is None else str(p["row"]), p.get("code") or "", p["reason"]
        )
    err.print(table)
    duplicated = sorted({p["code"] for p in problems if p.get("kind") == "duplicate"})
    if duplicated:
        err.print(f"[bold]duplicated codes:[/bold] {', '.join(duplicated)}")


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

    _check_level(level)
    with _engine().connect() as conn:
        gen = _generation_or_exit(conn, generation)
        gdf = repo.areas_frame(conn, gen.id, level)
    write_areas(gdf, output)
    console.print(f"wrote {len(gdf)} {level} areas of generation {gen.label!r} to {output}")


def _generation_or_exit(conn, ref: str | None):
    from app.db import repo

    gen = repo.get_generation(conn, ref) if ref else repo.active_generation(conn)
    if gen is None:
        err.print(
            f"[red]no generation {ref!r}[/red]"
            if ref
            else "[red]no active generation: import areas or run `gridmap demo` first[/red]"
        )
        raise typer.Exit(1)
    return gen


# -- generations ---------------------------------------------------------------------
@gen_app.command("list")
def generations_list():
    """List generations with their area counts."""
    from app.db import repo

    short = {
        "district": "dist.",
        "street": "streets",
        "community": "comm.",
        "grid": "grids",
        "micro_grid": "micro",
    }
    table = Table("id", "label", "active", "created", *short.values(), "note")
    table.columns[1].no_wrap = True
    with _engine().connect() as conn:
        for gen in repo.list_generations(conn):
            counts = repo.counts_by_level(conn, gen.id)
            table.add_row(
                str(gen.id),
                gen.label,
                "✔" if gen.is_active else "",
                f"{gen.created_at:%Y-%m-%d %H:%M}",
                *[str(counts.get(lv, 0)) for lv in LEVELS],
                _short_note(gen.note),
            )
    console.print(table)


def _short_note(note: str | None) -> str:
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


# -- incidents -----------------------------------------------------------------------
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
            _engine(),
            file,
            fields=fields,
            source=source,
            crs=crs,
            encoding=encoding,
            tolerance=tolerance,
        )
    _print_incident_report(report, file.name)


def _print_incident_report(report, name: str) -> None:
    table = Table(title=f"{name}: batch #{report.batch_id}")
    table.add_column("rows")
    table.add_column("count", justify="right")
    table.add_row("input", f"{report.rows_in:,}")
    table.add_row("stored with a location", f"{report.stored:,}")
    table.add_row("  of which geocoded from the address", f"{report.geocoded:,}")
    table.add_row("stored unlocated", f"{report.unlocated:,}")
    table.add_row("rejected", f"{report.rejected:,}")
    table.add_row("already present (re-import, unchanged)", f"{report.already_present:,}")
    for status, n in sorted(report.by_status.items()):
        table.add_row(f"assignment: {status}", f"{n:,}")
    console.print(table)
    for reason, n in report.unlocated_reasons.items():
        console.print(f"  unlocated: {n:,} × {reason}")
    for row in report.rejected_rows[:20]:
        err.print(f"  rejected row {row['row']}: {row['reason']}")
    if report.rejected > 20:
        err.print(f"  … {report.rejected - 20:,} more in rejected_row (batch #{report.batch_id})")


@incidents_app.command("export")
def incidents_export(
    output: Annotated[
        Path, typer.Option("--output", "-o", help="File to write: .csv, .geojson or .parquet.")
    ],
):
    """Write every incident with its assignment columns."""
    from app.db import repo

    with _engine().connect() as conn:
        frame = repo.incidents_frame(conn)
    suffix = output.suffix.lower()
    if suffix == ".csv":
        frame.drop(columns="geometry").to_csv(output, index=False)
    elif suffix in (".geojson", ".json"):
        frame[frame.geometry.notna()].to_file(output, driver="GeoJSON", engine="pyogrio")
    elif suffix in (".parquet", ".geoparquet"):
        frame.to_parquet(output)
    else:
        raise typer.BadParameter("use .csv, .geojson or .parquet", param_hint="--output")
    console.print(f"wrote {len(frame):,} incidents to {output}")


@app.command()
def assign(
    all_: Annotated[bool, typer.Option("--all", help="Re-assign every located incident.")] = False,
    unassigned: Annotated[
        bool,
        typer.Option("--unassigned", help="Only incidents not assigned to the active generation."),
    ] = False,
    tolerance: Annotated[float, typer.Option(help="Snap tolerance in metres.")] = 0.0,
    chunk_size: Annotated[int, typer.Option(help="Incidents per chunk.")] = 250_000,
    engine: Annotated[str, typer.Option(help="local (in this process) or dask.")] = "local",
    scheduler: Annotated[
        str | None,
        typer.Option(help="Dask scheduler address (tcp://host:8786); default a LocalCluster."),
    ] = None,
):
    """Assign stored incidents to the active generation's areas, in bulk."""
    if engine not in ("local", "dask"):
        raise typer.BadParameter("use local or dask", param_hint="--engine")
    from app.services.assignment import assign_stored

    if all_ == unassigned:
        raise typer.BadParameter("give exactly one of --all or --unassigned")
    with Progress(
        TextColumn("assigning"),
        BarColumn(),
        TextColumn("{task.completed:,}/{task.total:,}"),
        TimeElapsedColumn(),
        console=console,
    ) as bar:
        task = bar.add_task("assign", total=None)
        report = assign_stored(
            _engine(),
            only_unassigned=unassigned,
            tolerance=tolerance,
            chunk_size=chunk_size,
            dask=engine == "dask",
            scheduler=scheduler,
            progress=lambda done, total: bar.update(task, completed=done, total=total),
        )
    console.print(
        f"assigned {report.assigned:,} incidents to generation "
        f"{report.generation!r}: "
        + ", ".join(f"{k} {v:,}" for k, v in sorted(report.by_status.items()))
    )


@gen_app.command("activate")
def generations_activate(
    generation: Annotated[str, typer.Argument(help="Label or id.")],
    tolerance: Annotated[float, typer.Option(help="Snap tolerance in metres.")] = 0.0,
):
    """Activate a generation and re-assign every incident (old assignments kept in history)."""
    from app.services.assignment import activate_and_reassign

    with console.status(f"activating {generation} and re-assigning incidents…"):
        report = activate_and_reassign(_engine(), generation, tolerance=tolerance)
    console.print(
        f"generation {report.generation!r} is active; {report.assigned:,} incidents re-assigned"
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
    with _engine().begin() as conn:
        n = repo.store_gazetteer(conn, gazetteer.entries, source=file.name, replace=replace)
    console.print(f"stored {n:,} addresses")


# -- service -------------------------------------------------------------------------
keys_app = typer.Typer(help="API keys with roles (viewer, operator, admin).", no_args_is_help=True)
app.add_typer(keys_app, name="keys")


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 8000,
    workers: Annotated[int, typer.Option(help="Worker processes.")] = 1,
):
    """Serve the HTTP API, the OpenAPI docs (/docs) and the map pages (/map)."""
    import uvicorn

    settings = Settings()
    from app.db.provision import ensure_database

    url = ensure_database(settings)
    settings = settings.model_copy(update={"database_url": url})
    console.print(f"gridmap on http://{host}:{port}/ — docs at /docs, map at /map")
    if workers > 1:
        import os

        os.environ["GRIDMAP_DATABASE_URL"] = url
        uvicorn.run(
            "app.main:create_app",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            log_level="warning",
        )
    else:
        from app.main import create_app

        uvicorn.run(create_app(settings), host=host, port=port, log_level="warning")


@keys_app.command("create")
def keys_create(
    role: Annotated[str, typer.Option(help="viewer, operator or admin.")],
    name: Annotated[str | None, typer.Option(help="Who or what the key is for.")] = None,
):
    """Create an API key; it is printed once and stored hashed."""
    from app.services.security import ROLES, create_api_key

    if role not in ROLES:
        raise typer.BadParameter(f"use one of {', '.join(ROLES)}", param_hint="--role")
    key = create_api_key(_engine(), role=role, name=name)
    console.print(
        f"[bold]{key}[/bold]\nrole {role}; send it as the X-API-Key header. It is "
        "not stored in clear and cannot be shown again."
    )


@keys_app.command("list")
def keys_list():
    """List API keys (never the keys themselves)."""
    from app.services.security import list_api_keys

    table = Table("id", "prefix", "role", "name", "created", "revoked")
    for key in list_api_keys(_engine()):
        table.add_row(
            str(key["id"]),
            key["prefix"],
            key["role"],
            key.get("name") or "",
            f"{key['created_at']:%Y-%m-%d %H:%M}",
            f"{key['revoked_at']:%Y-%m-%d %H:%M}" if key.get("revoked_at") else "",
        )
    console.print(table)


@keys_app.command("revoke")
def keys_revoke(key_id: Annotated[int, typer.Argument(help="Id from `gridmap keys list`.")]):
    """Revoke an API key."""
    from app.services.security import revoke_api_key

    revoke_api_key(_engine(), key_id)
    console.print(f"key {key_id} revoked")


# -- demo ----------------------------------------------------------------------------
@app.command()
def demo(
    seed: Annotated[int, typer.Option(help="Seed of the synthetic district.")] = 411002,
    defects: Annotated[
        bool, typer.Option(help="Plant coverage defects (one gap, one overlap, unstaffed grids).")
    ] = False,
    incidents: Annotated[int, typer.Option(help="Incidents to generate.")] = 50_000,
    reload: Annotated[bool, typer.Option(help="Replace a demo that is already loaded.")] = False,
):
    """Provision PostGIS, migrate, load the demo district (Weidu-like, 411002) and summarise."""
    from app.services.demo import load_demo
    from gis.demo import build_demo

    started = time.perf_counter()
    engine = _engine()
    with console.status("generating the demo district…"):
        district = build_demo(seed=seed, defects=defects, n_incidents=incidents)
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=console,
    ) as bar:
        task = bar.add_task("loading", total=len(LEVELS) + 3)

        def step(what: str, done: int, total: int) -> None:
            bar.update(task, description=f"loading {what}", completed=done - 1, total=total)

        result = load_demo(engine, district, reload=reload, progress=step)
        bar.update(task, completed=len(LEVELS) + 3, description="loaded")
    _print_demo_summary(result, district, time.perf_counter() - started)


def _print_demo_summary(result, district, seconds: float) -> None:
    table = Table(
        title=f"demo district 411002 — generation {result.generation!r}"
        + (" (already loaded)" if result.already_loaded else "")
    )
    table.add_column("what")
    table.add_column("count", justify="right")
    for level in LEVELS:
        table.add_row(level, f"{result.counts.get(level, 0):,}")
    table.add_row("staff", f"{result.staff:,}")
    table.add_row("gazetteer addresses", f"{result.gazetteer:,}")
    table.add_row("incidents stored", f"{result.incidents_stored:,}")
    console.print(table)
    if result.incidents is not None:
        _print_incident_report(result.incidents, "demo incidents")
    console.print(
        f"synthetic content on real coordinates around 113.82 E, 34.03 N; done in {seconds:.1f} s"
    )


def _register_plugins() -> None:
    """Commands that live with their feature (maps, redesign) register themselves here."""
    import importlib

    for module in ("app.cli.maps", "app.cli.redesign"):
        try:
            plugin = importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise
            continue
        plugin.register(app)


_register_plugins()


def main() -> None:
    try:
        app()
    except GridmapError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise SystemExit(2) from exc


if __name__ == "__main__":
    main()
