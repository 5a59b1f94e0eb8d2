"""``gridmap db``: provisioning and schema migrations."""

from __future__ import annotations

from typing import Annotated

import typer

from app.cli.common import console

db_app = typer.Typer(help="Database: provisioning and schema migrations.", no_args_is_help=True)


@db_app.command("upgrade")
def db_upgrade(revision: Annotated[str, typer.Argument(help="Target revision.")] = "head"):
    """Provision the database if needed and migrate the schema to REVISION."""
    from app.config import Settings
    from app.db.provision import ensure_database
    from app.db.session import upgrade

    upgrade(ensure_database(Settings(), migrate=False), revision)
    console.print(f"[green]schema at {revision}[/green]")


@db_app.command("url")
def db_url(show_password: Annotated[bool, typer.Option(help="Print the password too.")] = False):
    """Print the SQLAlchemy URL of the database gridmap uses (starting the embedded one)."""
    from app.config import Settings
    from app.db.provision import ensure_database

    url = ensure_database(Settings(), migrate=False)
    console.print(url if show_password else masked(url), soft_wrap=True)


def masked(url: str) -> str:
    """``url`` with its password replaced by ``***``."""
    if "@" not in url:
        return url
    head, tail = url.split("@", 1)
    return head.rsplit(":", 1)[0] + ":***@" + tail
