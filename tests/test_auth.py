"""Users, the sign-in page, sessions, CSRF, lockout and the audit log, through the real app.

Each test signs in through the ``/login`` form as a browser does: it reads the
form's CSRF token from the page and posts it back with the cookie the page set.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from http.cookies import SimpleCookie

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from app.api.signin import safe_next
from app.services import auth
from app.services.audit import AuditFilter, list_entries
from app.services.security import authenticate, create_api_key, revoke_api_key
from gis.errors import InvalidCodeError
from tests.helpers import make_client, run_sql

pytestmark = pytest.mark.db

PASSWORD = "correct horse battery"
MISSING_INCIDENT = "/incidents/987654321"
TRANSITION = f"{MISSING_INCIDENT}/transitions"


@pytest.fixture
def client(clean_db: Engine) -> Iterator[TestClient]:
    with make_client(clean_db, login_max_failures=3, login_lock_minutes=10) as test_client:
        yield test_client


@pytest.fixture
def operator(clean_db: Engine) -> str:
    auth.create_user(clean_db, "wang.li", PASSWORD, "operator", display_name="王丽")
    return "wang.li"


def form_token(page: str) -> str:
    """The CSRF token of the sign-in form."""
    found = re.search(
        r'id="gm-login">\s*<input type="hidden" name="csrf_token" value="([^"]+)"', page
    )
    assert found, "the page has no sign-in form with a CSRF token"
    return found.group(1)


def sign_in(
    client: TestClient, username: str, password: str = PASSWORD, next_: str = "/map", **headers
):
    page = client.get("/login", headers=headers)
    assert page.status_code == 200
    return client.post(
        "/login",
        data={
            "username": username,
            "password": password,
            "csrf_token": form_token(page.text),
            "next": next_,
        },
        headers=headers,
        follow_redirects=False,
    )


def session_cookie_header(response) -> str:
    headers = response.headers.get_list("set-cookie")
    found = [h for h in headers if h.startswith("gridmap_session=")]
    assert len(found) == 1, headers
    return found[0]


def signed_in_csrf(client: TestClient) -> str:
    """The session's CSRF token, from the sign-out form of the signed-in indicator."""
    page = client.get("/login")
    found = re.search(
        r'/logout">\s*<input type="hidden" name="csrf_token" value="([^"]+)"', page.text
    )
    assert "已登录" in page.text and found, "not signed in"
    return found.group(1)


def audit_rows(engine: Engine, action: str | None = None) -> list[dict]:
    return list_entries(engine, AuditFilter(action=action))


# -- users and passwords ---------------------------------------------------------------------
def test_only_an_argon2id_hash_of_the_password_is_stored(clean_db, operator):
    with clean_db.connect() as conn:
        stored = conn.execute(text("SELECT password_hash FROM app_user")).scalar_one()
    assert stored.startswith("$argon2id$")
    assert PASSWORD not in stored
    created = audit_rows(clean_db, "user.create")
    assert [(r["target"], r["actor_kind"]) for r in created] == [("wang.li", "cli")]


@pytest.mark.parametrize(
    ("name", "password", "role", "problem"),
    [
        ("has space", PASSWORD, "viewer", "user name"),
        ("zhao", "short", "viewer", "at least 8"),
        ("zhao", PASSWORD, "root", "role must be"),
    ],
)
def test_bad_users_are_refused_with_the_reason(clean_db, name, password, role, problem):
    with pytest.raises(auth.ValidationError, match=problem):
        auth.create_user(clean_db, name, password, role)


def test_a_name_is_taken_whatever_its_case(clean_db, operator):
    with pytest.raises(auth.ConflictError):
        auth.create_user(clean_db, "WANG.LI", PASSWORD, "viewer")


def test_an_area_scope_must_name_an_area_of_the_active_generation(clean_db):
    with pytest.raises(auth.NotReadyError):
        auth.create_user(clean_db, "li", PASSWORD, "viewer", area="411002001")
    with pytest.raises(InvalidCodeError, match="digits only"):
        create_api_key(clean_db, "viewer", area="41x")


# -- the sign-in form ------------------------------------------------------------------------
def test_sign_in_through_the_form_sets_a_strict_session_cookie(client, operator):
    assert client.get(MISSING_INCIDENT).status_code == 401
    response = sign_in(client, operator, next_="/docs")
    assert response.status_code == 303
    assert response.headers["location"] == "/docs"
    cookie = session_cookie_header(response)
    attributes = {part.strip().split("=")[0].lower() for part in cookie.split(";")}
    assert {"httponly", "path", "samesite", "max-age"} <= attributes
    assert "samesite=lax" in cookie.lower() and "path=/" in cookie.lower()
    assert "secure" not in attributes  # plain HTTP: a Secure cookie would never come back
    # the session now opens what needed a key: a missing incident is a 404, not a 401
    assert client.get(MISSING_INCIDENT).status_code == 404
    page = client.get("/login")
    assert "王丽" in page.text and "已登录" in page.text


def test_cookies_are_secure_over_https_and_behind_an_https_proxy(client, operator):
    proxied = client.get("/login", headers={"X-Forwarded-Proto": "https"})
    assert "secure" in proxied.headers["set-cookie"].lower()
    assert "secure" not in client.get("/login").headers["set-cookie"].lower()
    with TestClient(client.app, base_url="https://testserver") as https:
        response = sign_in(https, operator)
    assert response.status_code == 303
    assert "secure" in session_cookie_header(response).lower()


def test_a_failed_sign_in_does_not_say_which_part_was_wrong(client, operator):
    wrong_password = sign_in(client, operator, "wrong password!")
    unknown_user = sign_in(client, "nobody", PASSWORD)
    assert wrong_password.status_code == unknown_user.status_code == 401
    message = "Sign-in failed: wrong user name or password"
    assert message in wrong_password.text and message in unknown_user.text
    assert "gridmap_session=" not in wrong_password.headers.get("set-cookie", "")
    failures = audit_rows(client.app.state.gridmap.engine, "sign_in")
    assert [(r["target"], r["outcome"], r["detail"]["reason"]) for r in failures] == [
        ("wang.li", "failed", "wrong password"),
        ("nobody", "failed", "unknown user"),
    ]
    assert all(r["address"] == "testclient" for r in failures)


def test_the_sign_in_form_needs_its_csrf_token(client, operator):
    client.get("/login")
    forged = client.post(
        "/login",
        data={"username": operator, "password": PASSWORD, "csrf_token": "x" * 43},
        follow_redirects=False,
    )
    assert forged.status_code == 403
    assert "gridmap_session=" not in forged.headers.get("set-cookie", "")


def test_session_writes_need_the_csrf_token_and_key_writes_do_not(client, clean_db, operator):
    sign_in(client, operator)
    body = {"status": "registered"}
    assert client.post(TRANSITION, json=body).status_code == 403
    csrf = signed_in_csrf(client)
    assert client.post(TRANSITION, json=body, headers={"X-CSRF-Token": "nope"}).status_code == 403
    # the right token passes the check: the incident does not exist
    assert client.post(TRANSITION, json=body, headers={"X-CSRF-Token": csrf}).status_code == 404
    key = create_api_key(clean_db, "operator", "robot")
    fresh = TestClient(client.app)
    assert fresh.post(TRANSITION, json=body, headers={"X-API-Key": key}).status_code == 404


def test_a_new_session_id_at_every_sign_in(client, clean_db, operator):
    client.cookies.set("gridmap_session", "planted-by-an-attacker")
    first = SimpleCookie(session_cookie_header(sign_in(client, operator)))["gridmap_session"].value
    assert first != "planted-by-an-attacker"
    second = SimpleCookie(session_cookie_header(sign_in(client, operator)))["gridmap_session"].value
    assert second != first
    old = TestClient(client.app, cookies={"gridmap_session": first})
    assert old.get(MISSING_INCIDENT).status_code == 401  # the earlier session ended
    with clean_db.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM user_session")).scalar_one() == 1


@pytest.mark.parametrize(
    "expire",
    [
        "UPDATE user_session SET expires_at = now() - interval '1 second'",
        "UPDATE user_session SET last_seen_at = now() - interval '2 hours'",  # idle 60 min
    ],
)
def test_expiry_is_checked_by_the_server(client, clean_db, operator, expire):
    sign_in(client, operator)
    assert client.get(MISSING_INCIDENT).status_code == 404
    run_sql(clean_db, expire)  # the browser still sends the cookie
    assert client.get(MISSING_INCIDENT).status_code == 401


def test_sign_out_needs_the_csrf_token_and_ends_the_session(client, clean_db, operator):
    sign_in(client, operator)
    assert client.post("/logout", data={}, follow_redirects=False).status_code == 403
    csrf = signed_in_csrf(client)
    token = client.cookies.get("gridmap_session")
    out = client.post("/logout", data={"csrf_token": csrf}, follow_redirects=False)
    assert out.status_code == 303 and out.headers["location"] == "/login"
    replay = TestClient(client.app, cookies={"gridmap_session": token})
    assert replay.get(MISSING_INCIDENT).status_code == 401
    assert [r["actor_label"] for r in audit_rows(clean_db, "sign_out")] == ["wang.li"]


def test_repeated_failures_lock_the_account(client, clean_db, operator):
    for _ in range(3):  # login_max_failures=3 in this app
        assert sign_in(client, operator, "wrong password!").status_code == 401
    assert sign_in(client, operator).status_code == 401  # locked: even the right password
    reasons = [r["detail"]["reason"] for r in audit_rows(clean_db, "sign_in")]
    assert reasons == ["wrong password"] * 3 + ["locked"]
    run_sql(clean_db, "UPDATE app_user SET locked_until = now() - interval '1 second'")
    assert sign_in(client, operator).status_code == 303  # the lock has passed


def test_a_disabled_user_stops_at_once_and_can_come_back(client, clean_db, operator):
    sign_in(client, operator)
    assert client.get(MISSING_INCIDENT).status_code == 404
    auth.set_disabled(clean_db, operator, True)
    assert client.get(MISSING_INCIDENT).status_code == 401
    assert sign_in(client, operator).status_code == 401
    auth.set_disabled(clean_db, operator, False)
    assert sign_in(client, operator).status_code == 303


def test_a_password_reset_ends_the_sessions(client, clean_db, operator):
    sign_in(client, operator)
    auth.reset_password(clean_db, operator, "a new password 2")
    assert client.get(MISSING_INCIDENT).status_code == 401
    assert sign_in(client, operator).status_code == 401
    assert sign_in(client, operator, "a new password 2").status_code == 303


def test_a_revoked_key_stops_at_once(client, clean_db):
    key = create_api_key(clean_db, "viewer", "robot")
    assert client.get(MISSING_INCIDENT, headers={"X-API-Key": key}).status_code == 404
    key_id = authenticate(clean_db, key).key_id
    revoke_api_key(clean_db, key_id)
    assert client.get(MISSING_INCIDENT, headers={"X-API-Key": key}).status_code == 401
    actions = [r["action"] for r in audit_rows(clean_db) if r["action"].startswith("key.")]
    assert actions == ["key.create", "key.revoke"]


@pytest.mark.parametrize(
    "target",
    [
        "//evil.example/x",
        "https://evil.example/",
        "/\\evil.example",
        "\\\\evil.example",
        "javascript:alert(1)",
        "/map\r\nSet-Cookie: x=1",
        "evil.example",
    ],
)
def test_next_never_leaves_the_site(client, operator, target):
    assert safe_next(target) == "/map"
    response = sign_in(client, operator, next_=target)
    assert response.headers["location"] == "/map"


def test_next_keeps_local_paths():
    assert safe_next("/map/grids/411002001001001?x=1") == "/map/grids/411002001001001?x=1"


# -- the audit of API writes -----------------------------------------------------------------
def test_every_write_is_audited_refused_ones_too(client, clean_db, operator):
    body = {"status": "registered"}
    assert client.post(TRANSITION, json=body).status_code == 401
    assert (
        client.post(TRANSITION, json=body, headers={"X-API-Key": "gm_unknownkey"}).status_code
        == 401
    )
    viewer = create_api_key(clean_db, "viewer", "reader")
    assert client.post(TRANSITION, json=body, headers={"X-API-Key": viewer}).status_code == 403
    sign_in(client, operator)
    csrf = signed_in_csrf(client)
    assert client.post(TRANSITION, json=body, headers={"X-CSRF-Token": csrf}).status_code == 404
    writes = audit_rows(clean_db, "api POST")
    assert [(r["actor_kind"], r["actor_label"], r["status"], r["outcome"]) for r in writes] == [
        ("anonymous", None, 401, "denied"),
        ("anonymous", "gm_unknow…", 401, "denied"),
        ("key", viewer[:9], 403, "denied"),
        ("user", "wang.li", 404, "failed"),
    ]
    assert {r["target"] for r in writes} == {TRANSITION}
    assert {r["address"] for r in writes} == {"testclient"}


def test_a_write_that_cannot_be_audited_never_runs(client, clean_db, monkeypatch):
    from sqlalchemy.exc import OperationalError

    from app.services import audit

    def database_down(*args, **kwargs):
        raise OperationalError("INSERT INTO audit_log", {}, Exception("connection refused"))

    key = create_api_key(clean_db, "operator", "robot")
    monkeypatch.setattr(audit, "start", database_down)
    response = client.post(TRANSITION, json={"status": "registered"}, headers={"X-API-Key": key})
    assert response.status_code == 503  # not the route's 404: it never ran
    assert "audit log" in response.json()["detail"] and response.headers["retry-after"]
    assert (
        client.get(MISSING_INCIDENT, headers={"X-API-Key": key}).status_code == 404
    )  # reads go on
