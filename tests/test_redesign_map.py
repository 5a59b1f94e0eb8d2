"""The before/after page of a redesign plan, served and exported."""

from __future__ import annotations

import re

import pytest
from typer.testing import CliRunner

from app.services.redesign import compare_plan, plan_redesign
from tests.helpers import engine_url, load_generation, make_client, small_district

pytestmark = pytest.mark.db

COMMUNITIES = ["411002003001", "411002003002", "411002003003"]


@pytest.fixture
def plan(clean_db, demo):
    load_generation(clean_db, "g1", small_district(demo, COMMUNITIES))
    grids = int(demo.grids["parent_code"].isin(COMMUNITIES).sum())
    result = plan_redesign(clean_db, grids - 4, mode="merge", label="plan-m")
    return clean_db, result, grids


def test_comparison_puts_both_layers_on_one_scale_and_flags_changes(plan):
    engine, result, grids = plan
    comparison = compare_plan(engine, "plan-m")
    assert len(comparison.before) == grids and len(comparison.after) == grids - 4
    assert comparison.before["workload"].mean() == pytest.approx(1.0, abs=1e-9)
    # Merging 4 times changes at least 1 and at most 8 new grids' worth of old ones.
    assert 1 <= comparison.after["changed"].sum() <= 4
    assert comparison.metrics["k"] == grids - 4 and comparison.baseline["k"] == grids


def test_page_is_served_offline_and_exported(plan, tmp_path, monkeypatch):
    engine, result, grids = plan
    from app.services.security import create_api_key

    key = {"X-API-Key": create_api_key(engine, "viewer", "redesign-map-test")}
    with make_client(engine) as client:
        # workload is weighed from incidents: anonymous visitors are sent to sign in
        anonymous = client.get("/map/redesign/plan-m", follow_redirects=False)
        assert anonymous.status_code == 303
        assert anonymous.headers["location"] == "/login?next=%2Fmap%2Fredesign%2Fplan-m"
        page = client.get("/map/redesign/plan-m", headers=key)
        assert client.get("/map/redesign/nope", headers=key).status_code == 404
    assert page.status_code == 200
    html = page.text
    for text in (
        "after: new grids by workload",
        "before: old grid boundaries",
        "changed grids",
        "workload CV",
        "incidents weighed",
        f"{grids} ",
        "/static/vendor/",
    ):
        assert text in html
    sources = re.findall(r'<(?:script|link)[^>]+(?:src|href)="([^"]+)"', html)
    assert sources and not [s for s in sources if s.startswith(("http:", "https:", "//"))]

    from app.cli import app

    monkeypatch.setenv("GRIDMAP_DATABASE_URL", engine_url(engine))
    out = tmp_path / "plan.html"
    exported = CliRunner().invoke(app, ["redesign-map", "plan-m", "-o", str(out)])
    assert exported.exit_code == 0, exported.output
    standalone = out.read_text(encoding="utf-8")
    assert "changed grids" in standalone and "/static/vendor/" not in standalone
