"""Photos through the API: attached with ``POST /incidents/{id}/photos``, listed in the
incident, served by ``GET /incidents/{id}/photos/{name}`` and shown to Open311 clients as
``media_url`` — to keys and signed-in users within scope only (TestClient on the demo).

Keys and accounts are made with the services `gridmap keys create` and `gridmap users
create` call and deleted afterwards; each incident belongs to a source of the test's own
and its photo folder goes with it.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import shutil
import uuid
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from app.services import photos
from tests.helpers import PNG_1X1 as PNG
from tests.helpers import demo_point

pytestmark = pytest.mark.db

GRID = "411002003001003"  # street 411002003
STREET = GRID[:9]
OTHER_STREET = "411002001"
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def jpeg(tag: str) -> bytes:
    """A distinct file that is a JPEG by its signature (what the check reads)."""
    return b"\xff\xd8\xff\xe0" + tag.encode() + b"\x00" * 16


def stored_name(data: bytes, kind: str) -> str:
    return f"{hashlib.sha256(data).hexdigest()[:24]}.{kind}"


@pytest.fixture(scope="module")
def keys(demo_engine) -> Iterator[dict[str, dict[str, str]]]:
    """Headers with keys by the part they play (scoped to the incident's street or not)."""
    from app.services.security import create_api_key

    tag = uuid.uuid4().hex[:8]
    made = {
        "operator": ("operator", STREET),
        "viewer": ("viewer", STREET),
        "outsider": ("operator", OTHER_STREET),
        "outside_viewer": ("viewer", OTHER_STREET),
    }
    names = {part: f"photo-test-{part}-{tag}" for part in made}
    headers = {
        part: {"X-API-Key": create_api_key(demo_engine, role, names[part], area=area)}
        for part, (role, area) in made.items()
    }
    yield headers
    with demo_engine.begin() as conn:
        conn.execute(text("DELETE FROM api_key WHERE name = ANY(:n)"), {"n": list(names.values())})


@pytest.fixture
def incident(demo_client, demo_engine, demo, keys) -> Iterator[int]:
    """An incident in GRID reported through the API; it and its photos go afterwards."""
    source = f"phototest_{uuid.uuid4().hex[:10]}"
    lon, lat = demo_point(demo, GRID)
    made = demo_client.post(
        "/incidents",
        json={"source": source, "external_id": "p-1", "category": "0401", "lon": lon, "lat": lat},
        headers=keys["operator"],
    )
    assert made.status_code == 201, made.text
    incident_id = made.json()["id"]
    assert made.json()["photos"] == []
    yield incident_id
    with demo_engine.begin() as conn:
        conn.execute(text("DELETE FROM incident WHERE source = :s"), {"s": source})
    data_dir = demo_client.app.state.gridmap.settings.data_dir
    shutil.rmtree(data_dir / "photos" / str(incident_id), ignore_errors=True)


def upload(client: TestClient, incident_id: int, headers: dict, *files: tuple[str, bytes]):
    sent = [("photos", (name, data, "image/jpeg")) for name, data in files]
    return client.post(f"/incidents/{incident_id}/photos", files=sent, headers=headers)


def listed(client: TestClient, incident_id: int, headers: dict) -> list[str]:
    answer = client.get(f"/incidents/{incident_id}", headers=headers)
    assert answer.status_code == 200, answer.text
    return answer.json()["photos"]


# -- attach, list, serve ---------------------------------------------------------------------
def test_an_uploaded_photo_is_listed_and_served_within_scope(demo_client, keys, incident):
    sent = upload(demo_client, incident, keys["operator"], ("site.jpg", PNG))
    assert sent.status_code == 201, sent.text
    (url,) = sent.json()["stored"]
    # absolute, named by the content (not the file name sent), on the API's photo route
    assert url == f"http://testserver/incidents/{incident}/photos/{stored_name(PNG, 'png')}"
    assert sent.json()["photos"] == [url]
    assert listed(demo_client, incident, keys["viewer"]) == [url]

    served = demo_client.get(url, headers=keys["viewer"])
    assert served.status_code == 200 and served.content == PNG
    assert served.headers["content-type"] == "image/png"
    assert served.headers["cache-control"] == "private"
    refused = demo_client.get(url, headers=keys["outside_viewer"])
    assert refused.status_code == 403 and f"incident {incident}" in refused.json()["detail"]
    assert demo_client.get(url).status_code == 401  # anonymous
    bearer = {"Authorization": f"Bearer {keys['viewer']['X-API-Key']}"}
    assert demo_client.get(url, headers=bearer).content == PNG
    other = f"/incidents/{incident}/photos/{stored_name(b'other', 'png')}"
    assert demo_client.get(other, headers=keys["viewer"]).status_code == 404
    walk = demo_client.get(f"/incidents/{incident}/photos/..%2F..%2Fpg", headers=keys["viewer"])
    assert walk.status_code == 404


def test_the_same_photo_is_kept_once_and_order_is_the_upload_order(demo_client, keys, incident):
    first, second = sorted([jpeg("a"), jpeg("b")], key=lambda d: stored_name(d, "jpg"))[::-1]
    # the first sent has the larger content-hash name: the order cannot come from the names
    assert upload(demo_client, incident, keys["operator"], ("1.jpg", first)).status_code == 201
    again = upload(demo_client, incident, keys["operator"], ("2.jpg", second), ("3.jpg", first))
    assert again.status_code == 201
    urls = listed(demo_client, incident, keys["viewer"])
    assert [u.rsplit("/", 1)[1] for u in urls] == [
        stored_name(first, "jpg"),
        stored_name(second, "jpg"),
    ]
    assert [demo_client.get(u, headers=keys["viewer"]).content for u in urls] == [first, second]


def test_a_signed_in_user_in_scope_gets_the_photo_and_may_attach_with_the_csrf_token(
    demo_client, demo_engine, keys, incident
):
    from app.services.auth import create_user

    name, password = f"photo-user-{uuid.uuid4().hex[:8]}", secrets.token_urlsafe(12)
    create_user(demo_engine, name, password, "operator", area=STREET)
    try:
        browser = TestClient(demo_client.app, follow_redirects=False)
        token = _CSRF.search(browser.get("/login").text).group(1)
        signed = browser.post(
            "/login", data={"username": name, "password": password, "csrf_token": token}
        )
        assert signed.status_code == 303
        no_token = upload(browser, incident, {}, ("site.png", PNG))
        assert no_token.status_code == 403 and "CSRF" in no_token.json()["detail"]
        csrf = _CSRF.search(browser.get(f"/console/incidents/{incident}").text).group(1)
        sent = upload(browser, incident, {"X-CSRF-Token": csrf}, ("site.png", PNG))
        assert sent.status_code == 201, sent.text
        (url,) = sent.json()["stored"]
        assert browser.get(url).content == PNG
    finally:
        with demo_engine.begin() as conn:
            conn.execute(text("DELETE FROM app_user WHERE username = :u"), {"u": name})


# -- who may attach ---------------------------------------------------------------------------
def test_attaching_needs_an_operator_in_scope_and_a_known_incident(demo_client, keys, incident):
    anonymous = upload(demo_client, incident, {}, ("site.png", PNG))
    assert anonymous.status_code == 401
    viewer = upload(demo_client, incident, keys["viewer"], ("site.png", PNG))
    assert viewer.status_code == 403 and "operator" in viewer.json()["detail"]
    outsider = upload(demo_client, incident, keys["outsider"], ("site.png", PNG))
    assert outsider.status_code == 403 and f"incident {incident}" in outsider.json()["detail"]
    unknown = upload(demo_client, 2**62, keys["operator"], ("site.png", PNG))
    assert unknown.status_code == 404
    assert listed(demo_client, incident, keys["viewer"]) == []  # nothing was stored


# -- what is refused -----------------------------------------------------------------------------
def test_a_file_that_is_not_an_image_refuses_the_whole_batch(demo_client, keys, incident):
    script = upload(
        demo_client,
        incident,
        keys["operator"],
        ("site.png", PNG),
        ("photo.jpg", b"<script>alert(1)</script>"),
    )
    assert script.status_code == 422
    assert "'photo.jpg' is not a JPEG, PNG or WebP image" in script.json()["detail"]
    assert listed(demo_client, incident, keys["viewer"]) == []
    empty = demo_client.post(f"/incidents/{incident}/photos", headers=keys["operator"])
    assert empty.status_code == 422
    many = [(f"{i}.jpg", jpeg(str(i))) for i in range(photos.MAX_PHOTOS + 1)]
    too_many = upload(demo_client, incident, keys["operator"], *many)
    assert too_many.status_code == 422 and "at most" in too_many.json()["detail"]
    assert listed(demo_client, incident, keys["viewer"]) == []


def test_a_photo_over_the_limit_is_413_and_one_at_the_limit_is_kept(demo_client, keys, incident):
    at_limit = PNG + b"\x00" * (photos.MAX_PHOTO_BYTES - len(PNG))
    over = upload(demo_client, incident, keys["operator"], ("big.png", at_limit + b"\x00"))
    assert over.status_code == 413 and "big.png" in over.json()["detail"]
    assert listed(demo_client, incident, keys["viewer"]) == []
    kept = upload(demo_client, incident, keys["operator"], ("big.png", at_limit))
    assert kept.status_code == 201, kept.text
    (url,) = listed(demo_client, incident, keys["viewer"])
    assert len(demo_client.get(url, headers=keys["viewer"]).content) == photos.MAX_PHOTO_BYTES


def test_an_incident_keeps_a_bounded_number_of_photos(demo_client, keys, incident):
    batches = [
        [(f"{b}-{i}.jpg", jpeg(f"{b}-{i}")) for i in range(photos.MAX_PHOTOS)]
        for b in range(photos.MAX_INCIDENT_PHOTOS // photos.MAX_PHOTOS)
    ]
    for batch in batches:
        assert upload(demo_client, incident, keys["operator"], *batch).status_code == 201
    full = upload(demo_client, incident, keys["operator"], ("more.jpg", jpeg("more")))
    assert full.status_code == 409 and "at most" in full.json()["detail"]
    repeated = upload(demo_client, incident, keys["operator"], batches[0][0])
    assert repeated.status_code == 201  # a photo it already has does not count twice
    assert len(listed(demo_client, incident, keys["viewer"])) == photos.MAX_INCIDENT_PHOTOS


# -- Open311 media_url --------------------------------------------------------------------------
def open311(client: TestClient, path: str, headers: dict, **params) -> object:
    return client.get(f"/open311/v2/{path}", headers=headers, params=params)


def test_open311_media_url_is_the_first_photo_for_callers_in_scope(demo_client, keys, incident):
    one = open311(demo_client, f"requests/{incident}.json", keys["viewer"])
    assert one.status_code == 200 and one.json()[0]["media_url"] is None  # no photo yet
    first, second = sorted([jpeg("x"), jpeg("y")], key=lambda d: stored_name(d, "jpg"))[::-1]
    for data in (first, second):
        assert upload(demo_client, incident, keys["operator"], ("p.jpg", data)).status_code == 201

    (request,) = open311(demo_client, f"requests/{incident}.json", keys["viewer"]).json()
    media_url = request["media_url"]
    assert media_url == f"http://testserver/incidents/{incident}/photos/{stored_name(first, 'jpg')}"
    assert demo_client.get(media_url, headers=keys["viewer"]).content == first
    # GeoReport clients send the key as api_key: the request's answer is the same
    by_param = open311(
        demo_client, f"requests/{incident}.json", {}, api_key=keys["viewer"]["X-API-Key"]
    )
    assert by_param.json()[0]["media_url"] == media_url
    (in_list,) = open311(
        demo_client, "requests.json", keys["viewer"], service_request_id=str(incident)
    ).json()
    assert in_list["media_url"] == media_url


def test_open311_withholds_photos_from_callers_who_cannot_see_the_request(
    demo_client, keys, incident
):
    assert upload(demo_client, incident, keys["operator"], ("p.png", PNG)).status_code == 201
    outside = keys["outside_viewer"]
    assert open311(demo_client, f"requests/{incident}.json", outside).status_code == 403
    filtered = open311(demo_client, "requests.json", outside, service_request_id=str(incident))
    assert filtered.status_code == 200 and filtered.json() == []  # not listed at all
    assert open311(demo_client, f"requests/{incident}.json", {}).status_code == 401
    assert open311(demo_client, "requests.json", {}).status_code == 401
    (mine,) = open311(
        demo_client, "requests.json", keys["viewer"], service_request_id=str(incident)
    ).json()
    assert demo_client.get(mine["media_url"], headers=outside).status_code == 403


def test_open311_post_accepts_a_media_url_but_never_fetches_or_stores_it(
    demo_client, demo_engine, demo, keys
):
    lon, lat = demo_point(demo, GRID)
    external = f"o311-photo-{uuid.uuid4().hex[:8]}"
    form = {
        "service_code": "0401",
        "lat": str(lat),
        "long": str(lon),
        "external_id": external,
        "media_url": "http://169.254.169.254/latest/meta-data/",
    }
    created = demo_client.post("/open311/v2/requests.json", data=form, headers=keys["operator"])
    try:
        assert created.status_code == 201, created.text
        request_id = created.json()[0]["service_request_id"]
        (request,) = open311(demo_client, f"requests/{request_id}.json", keys["viewer"]).json()
        assert request["media_url"] is None
    finally:
        with demo_engine.begin() as conn:
            conn.execute(
                text("DELETE FROM incident WHERE source = 'open311' AND external_id = :e"),
                {"e": external},
            )


def test_the_photo_routes_are_documented(demo_client):
    paths = demo_client.get("/openapi.json").json()["paths"]
    attach = paths["/incidents/{incident_id}/photos"]["post"]
    assert "multipart/form-data" in attach["requestBody"]["content"]
    assert {"201", "403", "404", "413", "422"} <= set(attach["responses"])
    served = paths["/incidents/{incident_id}/photos/{name}"]["get"]
    assert set(served["responses"]["200"]["content"]) == set(photos.MEDIA_TYPES.values())
