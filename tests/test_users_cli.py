"""``gridmap users`` and ``gridmap audit`` as an administrator runs them: the installed script
in a subprocess on a pseudo-terminal, on this module's own database.

Passwords go in through the hidden prompt (typed on the terminal, twice) or through
``--password-stdin`` (a pipe, as a script would); the terminal shows neither.
"""

from __future__ import annotations

import csv

import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook

from tests.helpers import make_client
from tests.terminal import Cli, Run, run_with_input

pytestmark = [pytest.mark.db, pytest.mark.slow, pytest.mark.in_file_order]

PASSWORD = "tian an men 42"


def piped(cli: Cli, *args: str, stdin_text: str) -> Run:
    return run_with_input(cli, args, stdin_text=stdin_text)


def typed(cli: Cli, *args: str, answers: list[str]) -> Run:
    return run_with_input(cli, args, answers=answers)


def sign_in_status(cli: Cli, username: str, password: str) -> int:
    """The status of a sign-in through the /login form of an app on this module's database."""
    import re

    with make_client(cli.engine) as client:
        page = client.get("/login").text
        token = re.search(
            r'id="gm-login">\s*<input type="hidden" name="csrf_token" value="([^"]+)"', page
        )
        assert token
        response: TestClient = client.post(
            "/login",
            data={"username": username, "password": password, "csrf_token": token.group(1)},
            follow_redirects=False,
        )
        return response.status_code


def test_users_create_reads_a_hidden_prompt_twice(cli: Cli):
    assert "schema at head" in cli("db", "upgrade").ok().flat
    run = typed(
        cli,
        "users",
        "create",
        "zhang.wei",
        "--role",
        "operator",
        "--display-name",
        "张伟",
        answers=[PASSWORD, PASSWORD],
    ).ok()
    assert "user zhang.wei created: role operator, the whole territory" in run.flat
    assert PASSWORD not in run.output  # hidden input is not echoed
    stored = cli.scalar(
        "SELECT count(*) FROM app_user WHERE username = 'zhang.wei' "
        "AND password_hash LIKE '$argon2id$%'"
    )
    assert stored == 1
    assert sign_in_status(cli, "zhang.wei", PASSWORD) == 303


def test_users_create_reads_the_password_from_stdin(cli: Cli):
    run = piped(
        cli,
        "users",
        "create",
        "li.na",
        "--role",
        "viewer",
        "--department",
        "urban_mgmt",
        "--password-stdin",
        stdin_text=f"{PASSWORD}\n",
    ).ok()
    assert "user li.na created: role viewer" in run.flat
    assert sign_in_status(cli, "li.na", PASSWORD) == 303


def test_users_create_refuses_bad_input_clearly(cli: Cli):
    taken = piped(
        cli,
        "users",
        "create",
        "LI.NA",
        "--role",
        "viewer",
        "--password-stdin",
        stdin_text=f"{PASSWORD}\n",
    )
    assert taken.code == 2 and "exists already" in taken.flat
    short = piped(
        cli, "users", "create", "wu", "--role", "viewer", "--password-stdin", stdin_text="short\n"
    )
    assert short.code == 2 and "at least 8 characters" in short.flat
    role = cli("users", "create", "wu", "--role", "root")
    assert role.code == 2 and "viewer, operator, admin" in role.flat
    no_area = piped(
        cli,
        "users",
        "create",
        "wu",
        "--role",
        "viewer",
        "--area",
        "411002001",
        "--password-stdin",
        stdin_text=f"{PASSWORD}\n",
    )
    assert no_area.code == 2 and "no active generation" in no_area.flat
    assert cli.scalar("SELECT count(*) FROM app_user WHERE username = 'wu'") == 0


def test_users_list_shows_every_user_without_passwords(cli: Cli):
    listed = cli("users", "list").ok()
    assert "用户名" in listed.flat and "角色" in listed.flat
    assert "zhang.wei" in listed.flat and "张伟" in listed.flat and "urban_mgmt" in listed.flat
    assert "argon2" not in listed.output and PASSWORD not in listed.output


def test_users_disable_and_enable(cli: Cli):
    assert "user li.na disabled" in cli("users", "disable", "li.na").ok().flat
    assert "停用 disabled" in cli("users", "list").ok().flat
    assert sign_in_status(cli, "li.na", PASSWORD) == 401
    assert "user li.na enabled" in cli("users", "enable", "li.na").ok().flat
    assert sign_in_status(cli, "li.na", PASSWORD) == 303
    missing = cli("users", "disable", "nobody")
    assert missing.code == 2 and "no user 'nobody'" in missing.flat


def test_users_reset_password(cli: Cli):
    new = "a brand new one"
    run = piped(cli, "users", "reset-password", "li.na", "--password-stdin", stdin_text=new + "\n")
    assert "password of li.na reset" in run.ok().flat
    assert sign_in_status(cli, "li.na", PASSWORD) == 401
    assert sign_in_status(cli, "li.na", new) == 303
    typed_run = typed(cli, "users", "reset-password", "li.na", answers=[PASSWORD, PASSWORD])
    assert "password of li.na reset" in typed_run.ok().flat


def test_audit_lists_a_failed_sign_in_with_its_address(cli: Cli, tmp_path):
    assert sign_in_status(cli, "zhang.wei", "not the password") == 401
    run = cli("audit", "--since", "2026-01-01", "--action", "sign_in").ok()
    assert "审计日志" in run.flat
    failed = [line for line in run.output.splitlines() if "failed" in line]
    assert any("zhang.wei" in line and "testclient" in line for line in failed), run.output
    everything = tmp_path / "audit.csv"
    assert "audit rows" in cli("audit", "--since", "2026-01-01", "-o", everything).ok().flat
    with everything.open(encoding="utf-8-sig") as f:
        actions = {row["操作 action"] for row in csv.DictReader(f)}
    assert {"user.create", "user.disable", "user.enable", "user.reset_password"} <= actions
    out = tmp_path / "audit.xlsx"
    cli("audit", "--since", "2026-01-01", "--actor", "zhang.wei", "-o", out).ok()
    sheet = load_workbook(out).active
    assert sheet is not None
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0][:4] == ("时间 time", "类型 kind", "操作者 actor", "操作 action")
    assert {row[3] for row in rows[1:]} == {"sign_in"}
    bad = cli("audit", "--since", "yesterday")
    assert bad.code == 2 and "--since" in bad.flat


def test_audit_until_excludes_later_rows(cli: Cli):
    run = cli("audit", "--since", "2020-01-01", "--until", "2020-12-31").ok()
    assert "0 rows" in run.flat
