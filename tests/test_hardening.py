"""Issue 15: every input checked at the door, writes atomic with their answer, bounded work,
browser hygiene. One test (or case) per finding of the probe; each failed before the fix.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime

import pandas as pd
import pytest
from fastapi import APIRouter
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from app.api.redesign import Job, JobBoard, PlanRequest, job_error
from app.cli.maps import _name_cell
from app.config import ApiSettings, Settings
from app.errors import TooManyRequestsError
from app.main import create_app
from gis.incidents import clean_incidents
from gis.times import report_time_problem, window_time_problem
from tests.helpers import demo_point, engine_url

GRID = "411002003001003"
DB_TEXT = ("psycopg", "UniqueViolation", "integer out of range", "violates", "SQL")


# -- the accepted time range -----------------------------------------------------------
@pytest.mark.parametrize(
    "moment",
    [
        datetime(1, 1, 1, tzinfo=UTC),
        datetime(9999, 12, 31, 15, tzinfo=UTC),
        datetime(1969, 12, 31, 23, 59, tzinfo=UTC),
        pd.Timestamp("0001-01-01", tz="UTC"),
    ],
)
def test_report_times_outside_the_range_are_refused(moment):
    assert "out of range" in str(report_time_problem(moment))


def test_report_times_inside_the_range_pass():
    assert report_time_problem(datetime(2023, 3, 1, tzinfo=UTC)) is None
    assert report_time_problem(pd.Timestamp("2023-03-01T08:00", tz="Asia/Shanghai")) is None
    assert window_time_problem(datetime(9999, 12, 31, 15, tzinfo=UTC)) is None


def test_an_import_keeps_an_out_of_range_time_as_a_rejected_row_with_its_reason():
    raw = pd.DataFrame(
        {
            "id": ["a", "b", "c"],
            "category": ["0401"] * 3,
            "reported_at": ["0001-01-01T00:00:00Z", "9999-12-31T23:00:00+08:00", "2023-03-01"],
            "lon": ["113.8"] * 3,
            "lat": ["34.0"] * 3,
        },
        dtype=str,
    )
    cleaned = clean_incidents(raw, source="patrol")
    assert cleaned.frame["external_id"].tolist() == ["c"]
    assert [r["row"] for r in cleaned.rejected] == [2, 3]
    assert all("out of range" in r["reason"] for r in cleaned.rejected)


@pytest.mark.parametrize("reported_at", ["0001-01-01T00:00:00Z", "9999-12-31T23:00:00+08:00"])
def test_an_incident_out_of_range_is_refused_and_nothing_is_stored(
    demo_client, demo_keys, demo, demo_engine, incident_source, reported_at
):
    lon, lat = demo_point(demo, GRID)
    body = {"source": incident_source, "external_id": "t-1", "category": "0401"}
    body |= {"lon": lon, "lat": lat, "reported_at": reported_at}
    answer = demo_client.post("/incidents", json=body, headers=demo_keys["operator"])
    assert answer.status_code == 422 and "out of range" in answer.json()["detail"]
    with demo_engine.connect() as conn:
        stored = conn.execute(
            text("SELECT count(*) FROM incident WHERE source = :s"), {"s": incident_source}
        ).scalar()
    assert stored == 0


@pytest.mark.parametrize(
    "path",
    [
        "/hotspots?start=0000-01-01",
        "/map?start=-1",
        f"/map/grids/{GRID}?end=9999-12-31T23:59:59-23:59",
        "/incidents?datetime=../9999-12-31T23:59:59-23:59",
        "/incidents?datetime=0001-01-01/..",
        "/collections/incidents/items?datetime=1969-12-31",
        "/open311/v2/requests.json?start_date=0001-01-01",
    ],
)
def test_window_parameters_out_of_range_answer_422(demo_client, demo_keys, path):
    answer = demo_client.get(path, headers=demo_keys["viewer"])
    assert answer.status_code == 422, answer.text
    assert "detail" in answer.json()


def test_an_open_window_end_far_in_the_future_still_answers(demo_client, demo_keys):
    answer = demo_client.get("/hotspots?end=9999-12-31", headers=demo_keys["viewer"])
    assert answer.status_code == 200, answer.text


# -- generation references -------------------------------------------------------------
@pytest.mark.parametrize("ref", ["²", "٣", "３"])
def test_generation_refs_take_ascii_digits_or_labels_only(demo_client, demo_keys, ref):
    for path in (f"/grids/{GRID}?generation={ref}", f"/redesign/plans/{ref}"):
        answer = demo_client.get(path, headers=demo_keys["viewer"])
        assert answer.status_code == 422, (path, answer.text)
    body = {"lon": [113.84], "lat": [34.06], "generation": ref}
    assert demo_client.post("/lookup", json=body).status_code == 422


# -- numbers are numbers ---------------------------------------------------------------
@pytest.mark.parametrize(
    "body",
    [
        '{"lon": [NaN], "lat": [34.06]}',
        '{"lon": [Infinity], "lat": [34.06]}',
        '{"lon": ["113.8"], "lat": [34.06]}',
        '{"lon": [true], "lat": [34.06]}',
        '{"lon": [113.8], "lat": [34.06], "tolerance": false}',
        '{"lon": [113.8], "lat": [34.06], "tolerance": "5"}',
    ],
)
def test_lookup_refuses_anything_but_finite_numbers(demo_client, body):
    answer = demo_client.post("/lookup", content=body, headers={"Content-Type": "application/json"})
    assert answer.status_code == 422, answer.text


def test_lookup_still_takes_integers_and_nulls(demo_client):
    answer = demo_client.post("/lookup", json={"lon": [113, None], "lat": [34, None]})
    assert answer.status_code == 200 and answer.json()["count"] == 2


def test_incident_coordinates_are_not_coerced(demo_client, demo_keys, incident_source):
    body = {"source": incident_source, "external_id": "s", "category": "0401"}
    for lon in ("113.84", True):
        answer = demo_client.post(
            "/incidents", json=body | {"lon": lon, "lat": 34.06}, headers=demo_keys["operator"]
        )
        assert answer.status_code == 422, answer.text


# -- text and paths --------------------------------------------------------------------
def test_a_lone_surrogate_is_refused_not_a_server_error(demo_client, demo_keys, incident_source):
    body = (
        f'{{"source": "{incident_source}", "external_id": "u", "category": "0401", '
        '"lon": 113.84, "lat": 34.06, "description": "\\ud800"}'
    )
    answer = demo_client.post(
        "/incidents",
        content=body,
        headers={**demo_keys["operator"], "Content-Type": "application/json"},
    )
    assert answer.status_code == 422, answer.text


def test_a_nul_in_an_asset_path_is_not_found(demo_client):
    answer = demo_client.get("/static/vendor/leaflet@1.9.4/dist/leaflet%00.js")
    assert answer.status_code == 404


# -- writes and their answers ----------------------------------------------------------
def test_a_repost_with_a_different_payload_is_a_conflict_naming_the_fields(
    demo_client, demo_keys, demo, incident_source
):
    lon, lat = demo_point(demo, GRID)
    body = {"source": incident_source, "external_id": "d-1", "category": "0401"}
    body |= {"lon": lon, "lat": lat, "description": "A", "reported_at": "2024-05-01T09:30:00"}
    headers = demo_keys["operator"]
    first = demo_client.post("/incidents", json=body, headers=headers)
    assert first.status_code == 201
    same = demo_client.post("/incidents", json=body, headers=headers)
    assert same.status_code == 200 and same.json()["id"] == first.json()["id"]
    other = demo_client.post("/incidents", json=body | {"description": "B"}, headers=headers)
    assert other.status_code == 409
    assert "description" in other.json()["detail"] and "raw_lon" not in other.json()["detail"]


def test_open311_returns_the_existing_request_for_a_repeated_external_id(
    demo_client, demo_keys, demo, demo_engine
):
    lon, lat = demo_point(demo, GRID)
    form = {"service_code": "0401", "lat": str(lat), "long": str(lon)}
    form["external_id"] = f"o311-{datetime.now(UTC).timestamp()}"
    try:
        first = demo_client.post(
            "/open311/v2/requests.json", data=form, headers=demo_keys["operator"]
        )
        again = demo_client.post(
            "/open311/v2/requests.json", data=form, headers=demo_keys["operator"]
        )
        assert first.status_code == 201 and again.status_code == 200
        assert again.json()[0]["service_request_id"] == first.json()[0]["service_request_id"]
    finally:
        with demo_engine.begin() as conn:
            conn.execute(
                text("DELETE FROM incident WHERE source = 'open311' AND external_id = :e"),
                {"e": form["external_id"]},
            )


# -- bounded work ----------------------------------------------------------------------
def _job(job_id: str, status: str = "running") -> Job:
    return Job.model_validate(
        {
            "id": job_id,
            "status": status,
            "progress": "",
            "submitted_at": datetime.now(UTC),
            "request": PlanRequest.model_validate({"target": 10}),
        }
    )


def test_redesign_jobs_are_bounded_per_key_and_in_total():
    board = JobBoard()
    board.admit(_job("a"), owner=1, per_key=1, total=2)
    with pytest.raises(TooManyRequestsError, match="this key"):
        board.admit(_job("b"), owner=1, per_key=1, total=2)
    board.admit(_job("c"), owner=2, per_key=1, total=2)
    with pytest.raises(TooManyRequestsError, match="the server"):
        board.admit(_job("d"), owner=3, per_key=1, total=2)
    board.update("a", status="done")
    board.admit(_job("e"), owner=1, per_key=1, total=2)  # a finished job frees its slot


def test_a_redesign_job_beyond_the_bound_answers_429(demo_engine, demo_keys):
    settings = Settings(
        database_url=engine_url(demo_engine),
        api=ApiSettings(index_refresh_seconds=0, redesign_jobs_per_key=1),
    )
    with TestClient(create_app(settings)) as client:
        board = JobBoard()
        client.app.state.redesign_jobs = board  # type: ignore[attr-defined]
        operator = demo_keys["operator"]
        key_id = client.get("/incidents?limit=1", headers=operator).status_code  # key works
        assert key_id == 200
        # one unfinished job of this key already (queued, so nothing is computed)
        from app.services.security import authenticate

        principal = authenticate(demo_engine, operator["X-API-Key"])
        assert principal is not None
        board.admit(_job("x", "queued"), principal.caller, 1, 10)
        answer = client.post("/redesign/plans", json={"target": 10}, headers=operator)
        assert answer.status_code == 429 and "redesign jobs" in answer.json()["detail"]


def test_job_errors_never_carry_database_text():
    orig = Exception(
        'duplicate key value violates unique constraint "generation_label_key"\n'
        "DETAIL: Key (label)=(x) already exists."
    )
    message = job_error(IntegrityError("INSERT INTO generation …", {}, orig))
    assert "label" in message and not any(t in message for t in DB_TEXT)


def test_database_text_never_reaches_a_client(demo_client, demo_keys):
    # An id beyond the column's integer type: the database refuses it.
    answer = demo_client.get(
        "/open311/v2/requests.json?service_request_id=999999999999999999",
        headers=demo_keys["viewer"],
    )
    assert answer.status_code in (200, 404, 422)
    assert not any(t in answer.text for t in DB_TEXT), answer.text


def test_unknown_query_parameters_do_not_make_new_map_pages(demo_client):
    first = demo_client.get("/map")
    assert first.status_code == 200
    pages = demo_client.app.state.gridmap.pages  # type: ignore[attr-defined]
    cached = len(pages._pages)
    for junk in ("x=1", "utm_source=mail", "start=&cachebust=7"):
        again = demo_client.get(f"/map?{junk}")
        assert again.status_code == 200 and again.headers["etag"] == first.headers["etag"], junk
    assert len(pages._pages) == cached


# -- browser hygiene -------------------------------------------------------------------
def test_html_pages_carry_security_headers(demo_client):
    for path in ("/map", "/docs", "/redoc"):
        answer = demo_client.get(path)
        assert answer.status_code == 200, path
        csp = answer.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in csp and "default-src 'self'" in csp
        assert answer.headers["x-frame-options"] == "DENY"
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert answer.headers["referrer-policy"]


def test_every_response_says_nosniff(demo_client):
    for path in ("/health", "/lookup?lon=113.84&lat=34.06", "/nope"):
        assert demo_client.get(path).headers["x-content-type-options"] == "nosniff"


def test_options_answers_with_the_methods_of_the_path(demo_client):
    answer = demo_client.options("/incidents")
    assert answer.status_code == 204
    assert answer.headers["allow"] == "GET, OPTIONS, POST"
    assert demo_client.options("/health").headers["allow"] == "GET, OPTIONS"
    assert demo_client.options("/no/such/path").status_code == 404


def test_docs_load_swagger_ui_and_redoc_from_this_server(demo_client):
    for path, asset in (("/docs", "swagger-ui-dist@"), ("/redoc", "redoc@")):
        page = demo_client.get(path).text
        assert f"/static/vendor/{asset}" in page and "cdn.jsdelivr" not in page
        assert "fonts.googleapis" not in page
    docs = demo_client.get("/docs").text
    script = docs.split('<script src="', 1)[1].split('"', 1)[0]
    assert demo_client.get(script).status_code == 200


# -- errors and probes -----------------------------------------------------------------
def test_a_real_500_closes_the_connection_cleanly(demo_engine):
    broken = APIRouter()

    @broken.get("/broken")
    def fail() -> None:
        raise RuntimeError("a bug")

    app = create_app(
        Settings(database_url=engine_url(demo_engine), api=ApiSettings(index_refresh_seconds=0)),
        extra_routers=[broken],
    )
    with TestClient(app, raise_server_exceptions=False) as client:
        answer = client.get("/broken")
    assert answer.status_code == 500
    assert answer.headers["connection"] == "close"
    assert "a bug" not in answer.text


def test_ready_names_each_check(demo_client):
    answer = demo_client.get("/ready")
    assert answer.status_code == 200
    assert answer.json() == {
        "status": "ready",
        "checks": {"database": "ok", "generation": "ok", "assets": "ok"},
    }


def test_hotspots_table_shows_a_dash_for_a_grid_without_name():
    assert _name_cell(math.nan) == "—" and _name_cell(None) == "—" and _name_cell(pd.NA) == "—"
    assert _name_cell("一网格") == "一网格"
