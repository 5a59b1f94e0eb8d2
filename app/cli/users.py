"""``gridmap users``: the accounts that sign in through ``/login``.

Passwords are read from a hidden prompt (typed twice) or, for scripts, from the
first line of standard input with ``--password-stdin``; never from an option,
which would leave them in the shell history and the process list.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from rich.table import Table

from app.cli.common import console, err, open_engine
from gis.vocabulary import ROLES

users_app = typer.Typer(
    help="Sign-in accounts (用户): create, list, disable, enable, reset-password.",
    no_args_is_help=True,
)

NameArg = Annotated[str, typer.Argument(help="User name (letters, digits, . _ @ -).")]
PasswordStdin = Annotated[
    bool,
    typer.Option(
        "--password-stdin",
        help="Read the password from the first line of standard input instead of a prompt.",
    ),
]


def read_password(from_stdin: bool) -> str:
    """The new password: stdin's first line, or a hidden prompt typed twice."""
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            err.print("[red]no password on standard input[/red]")
            raise typer.Exit(2)
        return password
    return typer.prompt(
        "密码 Password",
        hide_input=True,
        confirmation_prompt="再次输入 Repeat the password",
    )


@users_app.command("create")
def users_create(
    name: NameArg,
    role: Annotated[str, typer.Option(help="viewer, operator or admin.")],
    area: Annotated[
        str | None,
        typer.Option(
            help="Area scope: a street, community or grid code of the active generation; "
            "the user sees the incidents within it. Default: the whole territory."
        ),
    ] = None,
    department: Annotated[
        str | None, typer.Option(help="Department code (e.g. police, urban_mgmt).")
    ] = None,
    display_name: Annotated[
        str | None, typer.Option("--display-name", help="Full name shown on the pages (e.g. 王丽).")
    ] = None,
    password_stdin: PasswordStdin = False,
):
    """Create a user who signs in at /login; the password is stored as an argon2id hash."""
    from app.services.auth import create_user

    if role not in ROLES:
        raise typer.BadParameter(f"use one of {', '.join(ROLES)}", param_hint="--role")
    password = read_password(password_stdin)
    create_user(
        open_engine(),
        name,
        password,
        role,
        area=area,
        department=department,
        display_name=display_name,
    )
    scope = f"area {area}" if area else "the whole territory"
    console.print(f"用户已创建 user {name} created: role {role}, {scope}")


@users_app.command("list")
def users_list():
    """List the users (never their passwords)."""
    from app.services.auth import list_users

    table = Table(
        "用户名 name",
        "姓名 display name",
        "角色 role",
        "范围 area",
        "部门 department",
        "状态 state",
        "创建 created",
    )
    for user in list_users(open_engine()):
        table.add_row(
            user["username"],
            user["display_name"] or "",
            user["role"],
            user["area"] or "全部 all",
            user["department"] or "",
            _state(user),
            f"{user['created_at']:%Y-%m-%d %H:%M}",
        )
    console.print(table)


def _state(user: dict) -> str:
    if user["disabled_at"] is not None:
        return f"停用 disabled {user['disabled_at']:%Y-%m-%d}"
    if user["failed_attempts"]:
        return f"启用 active ({user['failed_attempts']} failed sign-ins)"
    return "启用 active"


@users_app.command("disable")
def users_disable(name: NameArg):
    """Disable a user: the sign-in is refused and open sessions end at once."""
    from app.services.auth import set_disabled

    set_disabled(open_engine(), name, True)
    console.print(f"用户已停用 user {name} disabled; its sessions have ended")


@users_app.command("enable")
def users_enable(name: NameArg):
    """Enable a disabled user again."""
    from app.services.auth import set_disabled

    set_disabled(open_engine(), name, False)
    console.print(f"用户已启用 user {name} enabled")


@users_app.command("reset-password")
def users_reset_password(name: NameArg, password_stdin: PasswordStdin = False):
    """Set a new password; the user's sessions end and any lock is lifted."""
    from app.services.auth import reset_password

    password = read_password(password_stdin)
    reset_password(open_engine(), name, password)
    console.print(f"密码已重置 password of {name} reset; its sessions have ended")
