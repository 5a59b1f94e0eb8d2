"""The console's assessment page (/console/assessment) and its .xlsx: the numbers equal a
count written directly in SQL here, the export equals the page, a street user sees only
its street, and anonymous visitors are sent to sign in.

On the small demo (``loaded``) given a history: handled at every level, closed after a
few hours, late or on time, dispatched to staff of the incident's grid.
"""

from __future__ import annotations

import io
import itertools
import re
import secrets
from datetime import date

import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook
from sqlalchemy import text

from app.api import assessment as assessment_api
from app.api.assessment import last_full_month
from gis.taxonomy import load_taxonomy
from tests.helpers import dispatch_to_grid_staff, make_client, run_sql

pytestmark = pytest.mark.db

PERIOD = {"start": "2023-03-01", "end": "2023-06-30"}
TOTAL = "合计 total"  # the totals row's code
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
_ROW = re.compile(r'<tr data-code="([^"]+)"[^>]*>(.*?)</tr>', re.S)
_CELL = re.compile(r'<td data-key="([a-z_]+)"(?: data-value="([^"]*)")?[^>]*>(.*?)</td>', re.S)
#: The page's figures and the .xlsx headers of the same numbers.
XLSX_HEADERS = {
    "received": "受理总数 / received",
    "handled_grid": "网格内处置 / handled in the grid",
    "passed_up": "上报合计 / passed up",
    "overdue": "超期 / overdue",
    "on_time_rate": "按期办结率 / on-time rate",
    "median_close_hours": "办结用时中位数(小时) / median hours to close",
    "rank": "排名 / rank",
}


@pytest.fixture
def history(loaded):
    """Handled at every level, closed some hours later, 1 in 5 still open; two in three
    dispatched to the first staff member of their grid."""
    run_sql(
        loaded,
        "UPDATE incident SET handling_level = (ARRAY['grid', 'grid', 'community', "
        "'street'])[1 + id % 4], status = CASE WHEN id % 5 = 0 THEN 'dispatched' "
        "ELSE 'closed' END, handled_at = CASE WHEN id % 5 = 0 THEN NULL "
        "ELSE reported_at + (id % 300) * interval '1 hour' END, "
        "closed_at = CASE WHEN id % 5 = 0 THEN NULL "
        "ELSE reported_at + (id % 300 + id % 7) * interval '1 hour' END",
    )
    dispatch_to_grid_staff(loaded)
    return loaded


def direct_counts(engine, level: str, area: str | None = None) -> dict[str, dict]:
    """The figures per row key, by SQL written here (no gridmap query code)."""
    taxonomy = load_taxonomy()
    deadlines = ", ".join(
        f"('{c}', {int(h)})"
        for c, h in zip(taxonomy["code"], taxonomy["deadline_hours"], strict=True)
    )
    key = "i.assignee_staff_id::text" if level == "worker" else f"a.{level}_code"
    roster = (
        "AND i.assignee_staff_id IN (SELECT id FROM staff WHERE generation_id = a.generation_id)"
        if level == "worker"
        else ""
    )
    sql = f"""
        WITH d(code, hours) AS (VALUES {deadlines}),
        x AS (
          SELECT {key} AS k, i.*,
            coalesce(i.deadline_at, i.reported_at + make_interval(hours => d.hours)) AS due
          FROM incident i
          JOIN incident_assignment a ON a.incident_id = i.id
          JOIN generation g ON g.id = a.generation_id AND g.is_active
          LEFT JOIN d ON d.code = i.category
          WHERE i.reported_at >= '2023-03-01T00:00:00+08:00'
            AND i.reported_at < '2023-07-01T00:00:00+08:00'
            AND (CAST(:area AS text) IS NULL OR a.grid_code LIKE :area || '%') {roster}
        )
        SELECT k, count(*) AS received,
          count(*) FILTER (WHERE handling_level = 'grid') AS handled_grid,
          count(*) FILTER (WHERE handling_level IN ('community', 'street')) AS passed_up,
          count(*) FILTER (WHERE (status IN ('reported', 'registered', 'dispatched')
            AND due < now()) OR handled_at > due) AS overdue,
          count(*) FILTER (WHERE handled_at <= due) AS on_time,
          percentile_cont(0.5) WITHIN GROUP (
            ORDER BY extract(epoch FROM closed_at - reported_at) / 3600) AS median
        FROM x WHERE k IS NOT NULL GROUP BY k
    """
    with engine.connect() as conn:
        rows = conn.execute(text(sql), {"area": area}).mappings().all()
    return {r["k"]: dict(r) for r in rows}


def signed_in(engine, client: TestClient, role: str = "viewer", area: str | None = None):
    from app.services.auth import create_user

    name, password = f"assess-{secrets.token_hex(4)}", secrets.token_urlsafe(12)
    create_user(engine, name, password, role, area=area)
    browser = TestClient(client.app, follow_redirects=False)
    token = _CSRF.search(browser.get("/login").text).group(1)
    done = browser.post(
        "/login",
        data={"username": name, "password": password, "csrf_token": token, "next": "/console"},
    )
    assert done.status_code == 303, done.text
    return browser


def page_rows(html: str) -> dict[str, dict[str, str]]:
    """The figures table: row code → {key: the cell's value (data-value, else its text)}."""
    table = html.split('id="gm-figures"', 1)[1].split("</table>", 1)[0]
    rows = {}
    for code, body in _ROW.findall(table):
        cells = {}
        for key, value, inner in _CELL.findall(body):
            exact = key in ("on_time_rate", "median_close_hours")
            cells[key] = value if exact else re.sub(r"<.*", "", inner, flags=re.S).strip()
        rows[code] = cells
    return rows


def all_page_rows(browser: TestClient, params: dict) -> dict[str, dict[str, str]]:
    """The figures table over every page (the totals row repeats on each)."""
    rows: dict[str, dict[str, str]] = {}
    for page in itertools.count():
        html = browser.get("/console/assessment", params={**params, "page": page}).text
        found = page_rows(html)
        assert not (set(found) - {TOTAL}) & set(rows), "a row on two pages"
        rows.update(found)
        if 'rel="next"' not in html:
            return rows
    raise AssertionError("unreachable")


def test_a_long_table_comes_a_page_at_a_time(history, monkeypatch):
    params = {**PERIOD, "level": "grid"}
    with make_client(history) as client:
        browser = signed_in(history, client, "admin")
        monkeypatch.setattr(assessment_api, "PAGE_ROWS", 100_000)
        whole = browser.get("/console/assessment", params=params).text
        monkeypatch.setattr(assessment_api, "PAGE_ROWS", 3)
        first = browser.get("/console/assessment", params=params).text
        every = all_page_rows(browser, params)
        beyond = browser.get("/console/assessment", params={**params, "page": 10_000})
        bad = browser.get("/console/assessment", params={**params, "page": "x1"})
    assert 'rel="next"' not in whole and len(page_rows(whole)) > 7
    assert len(page_rows(first)) == 3 + 1  # three areas and the totals
    assert every == page_rows(whole)  # the pages together are the whole table, ranks and all
    assert beyond.status_code == 200 and set(page_rows(beyond.text)) == {TOTAL}
    assert bad.status_code == 422


def number(text_value: str) -> float | None:
    return None if text_value in ("", "—") else float(text_value)


@pytest.mark.parametrize("level", ["street", "community", "grid", "worker"])
def test_the_page_equals_a_direct_sql_count(history, level):
    with make_client(history) as client:
        browser = signed_in(history, client, "admin")
        answer = browser.get("/console/assessment", params={**PERIOD, "level": level})
        assert answer.status_code == 200, answer.text
        assert 'id="gm-bars"' in answer.text and 'id="gm-trend"' in answer.text
        rows = all_page_rows(browser, {**PERIOD, "level": level})
    want = direct_counts(history, level)
    assert sum(w["received"] for w in want.values()) > 100  # the data exercise every figure
    assert sum(w["passed_up"] for w in want.values()) > 0
    total = rows.pop(TOTAL)
    for code, w in want.items():
        got = rows[code]
        for key in ("received", "handled_grid", "passed_up", "overdue"):
            assert int(got[key]) == w[key], (code, key)
        decided = w["on_time"] + w["overdue"]
        rate = number(got["on_time_rate"])
        assert rate == (pytest.approx(w["on_time"] / decided, abs=1e-4) if decided else None)
        median = number(got["median_close_hours"])
        want_median = w["median"]
        assert median == (None if want_median is None else pytest.approx(want_median, abs=0.051))
    # rows without incidents are zeros, the totals add up, ranks follow the rate
    assert all(int(r["received"]) == 0 for c, r in rows.items() if c not in want)
    assert int(total["received"]) == sum(w["received"] for w in want.values())
    ranked = sorted(
        (int(r["rank"]), float(r["on_time_rate"])) for r in rows.values() if r["rank"] != "—"
    )
    assert ranked and ranked[0][0] == 1
    assert [rate for _, rate in ranked] == sorted((rate for _, rate in ranked), reverse=True)


@pytest.mark.parametrize("level", ["street", "worker"])
def test_the_demos_own_history_fills_every_figure(loaded, level):
    """Nothing written here: the demo's incidents come with their history (handled at every
    level, most in time, dispatched to a grid worker of their grid), and the page shows it."""
    with make_client(loaded) as client:
        browser = signed_in(loaded, client, "admin")
        rows = all_page_rows(browser, {**PERIOD, "level": level})
    total = rows.pop(TOTAL)
    want = direct_counts(loaded, level)
    received = sum(w["received"] for w in want.values())
    assert int(total["received"]) == received > 500
    for code, w in want.items():
        for key in ("received", "handled_grid", "passed_up", "overdue"):
            assert int(rows[code][key]) == w[key], (code, key)
    handled_grid = sum(w["handled_grid"] for w in want.values())
    passed_up = sum(w["passed_up"] for w in want.values())
    assert handled_grid + passed_up == received  # all handled by the end of June
    assert handled_grid / received == pytest.approx(0.8, abs=0.05)
    rate = number(total["on_time_rate"])
    assert rate is not None and 0.8 <= rate <= 0.95  # about one in ten handled late
    median = number(total["median_close_hours"])
    assert median is not None and 1 < median < 72
    if level == "worker":  # every located incident of the period went to a grid worker
        with loaded.connect() as conn:
            located = conn.execute(
                text(
                    "SELECT count(*) FROM incident WHERE location_status <> 'unlocated'"
                    " AND reported_at >= '2023-03-01T00:00:00+08:00'"
                    " AND reported_at < '2023-07-01T00:00:00+08:00'"
                )
            ).scalar_one()
        assert len(want) > 20 and received == located


def test_the_monthly_trend_counts_each_month(history):
    with make_client(history) as client:
        browser = signed_in(history, client)
        html = browser.get("/console/assessment", params={**PERIOD, "level": "street"}).text
    months = dict(re.findall(r'<tr data-month="(\d{4}-\d{2})"><td>[^<]*</td><td>(\d+)</td>', html))
    assert list(months)[-1] == "2023-06" and len(months) == 12  # a year to the period's end
    sql = (
        "SELECT to_char(i.reported_at AT TIME ZONE 'Asia/Shanghai', 'YYYY-MM') m, count(*) "
        "FROM incident i JOIN incident_assignment a ON a.incident_id = i.id "
        "JOIN generation g ON g.id = a.generation_id AND g.is_active "
        "WHERE a.street_code IS NOT NULL GROUP BY 1"
    )
    with history.connect() as conn:
        want = dict(conn.execute(text(sql)).all())
    assert {m: int(n) for m, n in months.items()} == {m: want.get(m, 0) for m in months}
    assert sum(want.get(m, 0) for m in months) > 0


def test_the_xlsx_has_the_numbers_of_the_page_and_of_gridmap_stats(history):
    from app.services.stats import stats_report

    params = {**PERIOD, "level": "community"}
    with make_client(history) as client:
        browser = signed_in(history, client)
        rows = page_rows(browser.get("/console/assessment", params=params).text)
        export = browser.get("/console/assessment.xlsx", params=params)
    assert export.status_code == 200
    assert export.headers["content-type"].startswith("application/vnd.openxmlformats")
    assert "attachment" in export.headers["content-disposition"]
    sheet = load_workbook(io.BytesIO(export.content)).active
    header = [c.value for c in sheet[1]]
    book = {r[0]: dict(zip(header, r, strict=True)) for r in sheet.iter_rows(2, values_only=True)}
    assert set(book) == set(rows)
    for code, page in rows.items():
        for key, title in XLSX_HEADERS.items():
            assert number(page[key]) == book[code][title], (code, key)
    # the same report gridmap stats writes
    report = stats_report(
        history, "community", start=date(2023, 3, 1), end=date(2023, 6, 30)
    ).labelled()
    assert header == list(report.columns)
    assert [r[:5] for r in sheet.iter_rows(2, values_only=True)] == [
        tuple(v) for v in report.iloc[:, :5].itertuples(index=False, name=None)
    ]


def test_a_street_user_sees_only_its_street(history):
    with history.connect() as conn:
        streets = [
            c
            for (c,) in conn.execute(
                text("SELECT code FROM area WHERE level = 'street' ORDER BY code")
            )
        ]
    mine, other = streets[0], streets[1]
    with make_client(history) as client:
        browser = signed_in(history, client, "viewer", area=mine)
        by_street = page_rows(
            browser.get("/console/assessment", params={**PERIOD, "level": "street"}).text
        )
        by_community = page_rows(
            browser.get("/console/assessment", params={**PERIOD, "level": "community"}).text
        )
        book = load_workbook(
            io.BytesIO(
                browser.get("/console/assessment.xlsx", params={**PERIOD, "level": "grid"}).content
            )
        ).active
    assert set(by_street) == {mine, "合计 total"}
    communities = set(by_community) - {"合计 total"}
    assert communities and all(c.startswith(mine) for c in communities)
    assert not any(c.startswith(other) for c in by_community)
    grids = [r[0] for r in book.iter_rows(2, values_only=True)][:-1]
    assert grids and all(g.startswith(mine) for g in grids)
    want = direct_counts(history, "street", area=mine)
    assert int(by_street["合计 total"]["received"]) == want[mine]["received"]


def test_anonymous_visitors_are_sent_to_sign_in_and_bad_input_is_a_422_page(history):
    with make_client(history) as client:
        anonymous = TestClient(client.app, follow_redirects=False)
        for path in ("/console/assessment?level=grid", "/console/assessment.xlsx"):
            answer = anonymous.get(path)
            assert answer.status_code == 303
            assert answer.headers["location"].startswith("/login?next=/console/assessment")
        browser = signed_in(history, client)
        for params in (
            {"start": "2023-13-01"},
            {"start": "yesterday"},
            {"level": "district"},
            {"start": "2023-05-01", "end": "2023-04-01"},
        ):
            for path in ("/console/assessment", "/console/assessment.xlsx"):
                answer = browser.get(path, params=params)
                assert answer.status_code == 422, (path, params, answer.text[:200])
        default = browser.get("/console/assessment")
    assert default.status_code == 200
    first, last = last_full_month(date.today())
    assert f'value="{first.isoformat()}"' in default.text
    assert f'value="{last.isoformat()}"' in default.text


def test_the_last_full_month():
    assert last_full_month(date(2024, 3, 15)) == (date(2024, 2, 1), date(2024, 2, 29))
    assert last_full_month(date(2024, 1, 1)) == (date(2023, 12, 1), date(2023, 12, 31))


def test_stats_api_gives_the_new_figures_but_no_worker_rows(history):
    from app.services.security import create_api_key

    key = {"X-API-Key": create_api_key(history, "viewer", "assess-test")}
    with make_client(history) as client:
        workers = client.get("/stats", params={"level": "worker"}, headers=key)
        grids = client.get("/stats", params={**PERIOD, "level": "grid"}, headers=key)
        browser = signed_in(history, client)
        rows = all_page_rows(browser, {**PERIOD, "level": "grid"})
    assert workers.status_code == 422  # rosters are personal data: never through the API
    assert grids.status_code == 200
    api = {r["code"]: r for r in grids.json()["rows"]}
    assert set(api) == set(rows)
    for code, page in rows.items():
        for key_name in ("received", "passed_up", "on_time_rate", "median_close_hours", "rank"):
            assert number(page[key_name]) == api[code][key_name], (code, key_name)
