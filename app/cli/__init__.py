"""The ``gridmap`` command line (typer + rich): the root command and its wiring.

Each command group lives in a module of its own; this module only puts them
together, in the order ``gridmap --help`` lists them.
"""

from __future__ import annotations

import typer

from app.cli import maps, redesign
from app.cli.areas import areas_app
from app.cli.assign import assign
from app.cli.audit import audit
from app.cli.common import err
from app.cli.db import db_app
from app.cli.demo import demo
from app.cli.departments import departments_app
from app.cli.gazetteer import gazetteer_app
from app.cli.generations import gen_app
from app.cli.incidents import incidents_app
from app.cli.keys import keys_app
from app.cli.layers import layers_app
from app.cli.serve import serve
from app.cli.staff import staff_app
from app.cli.stats import stats
from app.cli.taxonomy import taxonomy_app
from app.cli.users import users_app
from gis.errors import GridmapError

__all__ = ["app", "main"]

app = typer.Typer(
    help="gridmap: grid governance GIS — grids with unified codes in PostGIS.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
app.command()(assign)
app.command()(serve)
app.command()(demo)
app.command("coverage")(maps.coverage)
app.command("hotspots")(maps.hotspots)
app.command("map")(maps.map_page)
app.command("redesign")(redesign.redesign)
app.command("redesign-map")(redesign.redesign_map)
app.command("stats")(stats)
app.command("audit")(audit)
app.add_typer(db_app, name="db")
app.add_typer(areas_app, name="areas")
app.add_typer(gen_app, name="generations")
app.add_typer(incidents_app, name="incidents")
app.add_typer(gazetteer_app, name="gazetteer")
app.add_typer(keys_app, name="keys")
app.add_typer(layers_app, name="layers")
app.add_typer(staff_app, name="staff")
app.add_typer(departments_app, name="departments")
app.add_typer(taxonomy_app, name="taxonomy")
app.add_typer(users_app, name="users")


def main() -> None:
    try:
        app()
    except GridmapError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise SystemExit(2) from exc


if __name__ == "__main__":
    main()
