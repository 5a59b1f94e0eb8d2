"""``gridmap keys``: API keys with roles, stored hashed."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from app.cli.common import console, open_engine
from gis.vocabulary import ROLES

keys_app = typer.Typer(help="API keys with roles (viewer, operator, admin).", no_args_is_help=True)


@keys_app.command("create")
def keys_create(
    role: Annotated[str, typer.Option(help="viewer, operator or admin.")],
    name: Annotated[str | None, typer.Option(help="Who or what the key is for.")] = None,
    area: Annotated[
        str | None,
        typer.Option(
            help="Area scope: a street, community or grid code of the active generation; "
            "the key reads and writes only incidents within it. Default: the whole territory."
        ),
    ] = None,
):
    """Create an API key; it is printed once and stored hashed."""
    from app.services.security import create_api_key

    if role not in ROLES:
        raise typer.BadParameter(f"use one of {', '.join(ROLES)}", param_hint="--role")
    key = create_api_key(open_engine(), role=role, name=name, area=area)
    scope = f", area {area}" if area else ""
    console.print(
        f"[bold]{key}[/bold]\nrole {role}{scope}; send it as the X-API-Key header. It is "
        "not stored in clear and cannot be shown again."
    )


@keys_app.command("list")
def keys_list():
    """List API keys (never the keys themselves)."""
    from app.services.security import list_api_keys

    table = Table("id", "prefix", "role", "area", "name", "created", "revoked")
    for key in list_api_keys(open_engine()):
        table.add_row(
            str(key["id"]),
            key["prefix"],
            key["role"],
            key.get("area") or "",
            key.get("name") or "",
            f"{key['created_at']:%Y-%m-%d %H:%M}",
            f"{key['revoked_at']:%Y-%m-%d %H:%M}" if key.get("revoked_at") else "",
        )
    console.print(table)


@keys_app.command("revoke")
def keys_revoke(key_id: Annotated[int, typer.Argument(help="Id from `gridmap keys list`.")]):
    """Revoke an API key."""
    from app.services.security import revoke_api_key

    revoke_api_key(open_engine(), key_id)
    console.print(f"key {key_id} revoked")
