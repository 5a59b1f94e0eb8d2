"""The statistics report equals counts computed directly from the stored incidents."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pandas as pd
import pytest
from openpyxl import load_workbook
from sqlalchemy import text

from app.db.taxonomy import store_version
from app.services.stats import TOTAL_CODE, stats_report, write_report
from app.services.taxonomy import current_taxonomy
from gis.taxonomy import load_taxonomy
from gis.vocabulary import LOCAL_TZ, OPEN_STATUSES
from tests.helpers import make_client, run_sql

pytestmark = pytest.mark.db

NOW = datetime(2024, 3, 1, tzinfo=UTC)


@pytest.fixture
def history(loaded):
    """The small demo with a history: handled at every level, on time, late and still open."""
    run_sql(
        loaded,
        "UPDATE incident SET handling_level = (ARRAY['grid', 'grid', 'community', "
        "'street'])[1 + id % 4], status = CASE WHEN id % 5 = 0 THEN 'dispatched' "
        "ELSE 'closed' END, handled_at = CASE WHEN id % 5 = 0 THEN NULL "
        "ELSE reported_at + (id % 300) * interval '1 hour' END",
    )
    return loaded


def stored_incidents(engine) -> pd.DataFrame:
    """An independent read: plain SQL over the tables, no gridmap query code."""
    sql = (
        "SELECT a.street_code, a.community_code, a.grid_code, i.source, i.category, i.status, "
        "i.handling_level, i.reported_at, i.handled_at, i.deadline_at FROM incident i "
        "JOIN incident_assignment a ON a.incident_id = i.id "
        "JOIN generation g ON g.id = a.generation_id AND g.is_active ORDER BY i.id"
    )
    with engine.connect() as conn:  # in id order: reads before and after an UPDATE align
        return pd.DataFrame(conn.execute(text(sql)).mappings().all())


def judged_deadline(incidents: pd.DataFrame, taxonomy: pd.DataFrame) -> pd.Series:
    """The stored deadline; without one, report time plus the category's hours in ``taxonomy``."""
    hours = incidents["category"].map(taxonomy.set_index("code")["deadline_hours"])
    fallback = incidents["reported_at"] + pd.to_timedelta(hours, unit="h")
    return incidents["deadline_at"].fillna(fallback)


def expected(incidents: pd.DataFrame, level: str) -> pd.DataFrame:
    taxonomy = load_taxonomy().set_index("code")
    due = judged_deadline(incidents, load_taxonomy())
    handled = incidents["handled_at"]
    frame = pd.DataFrame(
        {
            "code": incidents[f"{level}_code"],
            "received": 1,
            "handled_grid": incidents["handling_level"].eq("grid"),
            "handled_community": incidents["handling_level"].eq("community"),
            "handled_street": incidents["handling_level"].eq("street"),
            "overdue": (incidents["status"].isin(OPEN_STATUSES) & (due < NOW)) | (handled > due),
            "on_time": handled <= due,
        }
    )
    for source in incidents["source"].unique():
        frame[f"source:{source}"] = incidents["source"].eq(source)
    majors = incidents["category"].map(taxonomy["major_code"])
    for major in majors.dropna().unique():
        frame[f"class:{major}"] = majors.eq(major)
    return frame.dropna(subset=["code"]).groupby("code").sum().astype(int)


@pytest.mark.parametrize("level", ["street", "community", "grid"])
def test_report_equals_counts_from_the_stored_incidents(history, level):
    report = stats_report(history, level, now=NOW)
    table = report.table.set_index("code")
    want = expected(stored_incidents(history), level)
    # the demo exercises every kind of count
    assert (want.sum() > 0).all(), want.sum()
    areas = table.drop(index=TOTAL_CODE)
    got = areas.loc[want.index, list(want.columns)]
    pd.testing.assert_frame_equal(got, want, check_names=False, check_dtype=False)
    # areas without incidents are rows of zeros, and the totals row adds every row up
    assert (areas.drop(index=want.index)["received"] == 0).all()
    totals = table.loc[TOTAL_CODE]
    for column in want.columns:
        assert totals[column] == want[column].sum(), column
    rate = totals["on_time"] / (totals["on_time"] + totals["overdue"])
    assert totals["on_time_rate"] == pytest.approx(rate, abs=1e-4)
    assert (
        totals["received"]
        == totals["handled_grid"]
        + totals["handled_community"]
        + totals["handled_street"]
        + stored_incidents(history)["handling_level"].isna().sum()
    )


def test_a_later_taxonomy_changes_no_on_time_or_overdue_count(history):
    """On time and late are judged by the deadline stored with each incident when it was
    written: importing a taxonomy with other deadlines changes no figure of the report.
    Incidents stored without a deadline fall back to the taxonomy in use."""
    figures = ["overdue", "on_time", "on_time_rate"]
    before = stats_report(history, "community", now=NOW).table.set_index("code")[figures]
    incidents = stored_incidents(history)
    assert incidents["deadline_at"].notna().all()
    shorter = load_taxonomy().assign(deadline_hours=1)  # every category due within the hour
    with history.begin() as conn:
        store_version(conn, shorter, "test: shorter deadlines")
        assert set(current_taxonomy(conn)[1]["deadline_hours"]) == {1}
    # the new deadlines would change the counts if the report followed them
    handled = incidents["handled_at"]
    none_stored = incidents.assign(
        deadline_at=incidents["deadline_at"].mask(incidents["deadline_at"].notna())
    )
    by_new = int((handled <= judged_deadline(none_stored, shorter)).sum())
    assert by_new != before.loc[TOTAL_CODE, "on_time"]

    after = stats_report(history, "community", now=NOW).table.set_index("code")[figures]
    pd.testing.assert_frame_equal(after, before)

    # without a stored deadline (rows written before deadlines were kept), the taxonomy in use
    run_sql(history, "UPDATE incident SET deadline_at = NULL WHERE id % 2 = 0")
    incidents = stored_incidents(history)
    # read again with the rows: the UPDATE moved rows, so the first read's order is gone
    handled = incidents["handled_at"]
    due = judged_deadline(incidents, shorter)
    late_open = incidents["status"].isin(OPEN_STATUSES) & (due < NOW)
    totals = stats_report(history, "community", now=NOW).table.set_index("code").loc[TOTAL_CODE]
    assert totals["on_time"] == int((handled <= due).sum())
    assert totals["overdue"] == int((late_open | (handled > due)).sum())
    assert totals["on_time"] != before.loc[TOTAL_CODE, "on_time"]


def test_a_window_counts_only_its_days_in_local_time(history):
    incidents = stored_incidents(history)
    local = incidents["reported_at"].dt.tz_convert(LOCAL_TZ).dt.date
    first, last = date(2023, 3, 1), date(2023, 3, 31)
    report = stats_report(history, "street", start=first, end=last, now=NOW)
    assert report.table.iloc[-1]["received"] == int(local.between(first, last).sum())


def test_xlsx_and_csv_open_with_chinese_headers(history, tmp_path):
    report = stats_report(history, "community", now=NOW)
    xlsx = write_report(report, tmp_path / "stats.xlsx")
    sheet = load_workbook(xlsx).active
    header = [c.value for c in sheet[1]]
    assert header[:3] == ["编码 / code", "名称 / name", "受理总数 / received"]
    assert "网格内处置 / handled in the grid" in header and "按期办结率 / on-time rate" in header
    assert any(h.startswith("来源:12345热线") for h in header)
    assert sheet.max_row == len(report.table) + 1
    assert sheet.cell(sheet.max_row, 1).value == TOTAL_CODE
    csv = write_report(report, tmp_path / "stats.csv").read_bytes()
    assert csv.startswith(b"\xef\xbb\xbf") and "受理总数".encode() in csv


def test_bad_requests_are_refused(history):
    from gis.errors import ValidationError

    with pytest.raises(ValidationError, match="level"):
        stats_report(history, "micro_grid")
    with pytest.raises(ValidationError, match="after"):
        stats_report(history, "grid", start=date(2024, 1, 2), end=date(2024, 1, 1))


def test_the_endpoint_needs_a_viewer_key_and_answers_the_report(history):
    from app.services.security import create_api_key

    key = create_api_key(history, "viewer", "stats-test")
    with make_client(history) as client:
        assert client.get("/stats", params={"level": "street"}).status_code == 401
        headers = {"X-API-Key": key}
        answer = client.get("/stats", params={"level": "street"}, headers=headers)
        assert client.get("/stats", params={"level": "x"}, headers=headers).status_code == 422
        bad = client.get(
            "/stats",
            params={"level": "grid", "start": "2024-02-01", "end": "2024-01-01"},
            headers=headers,
        )
        assert bad.status_code == 422
    assert answer.status_code == 200
    body = answer.json()
    assert body["rows"][-1]["code"] == TOTAL_CODE
    assert body["rows"][-1]["received"] == len(stored_incidents(history))
    assert {"key": "received", "zh": "受理总数", "en": "received"} in body["columns"]
