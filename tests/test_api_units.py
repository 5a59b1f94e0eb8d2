"""The API's pure parts: closed-loop rules, parameter parsing, error mapping, GeoJSON bytes."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from app.api.deps import EPSG4326, EPSG4490, parse_bbox, parse_interval
from app.api.errors import status_for
from app.api.geojson import feature_collection
from app.errors import (
    AuthenticationError,
    IllegalTransitionError,
    NotFoundError,
    NotReadyError,
    PayloadTooLargeError,
    PermissionDeniedError,
)
from app.services.security import role_allows
from app.services.workflow import plan_transition
from gis.errors import CRSError, GridmapError, InvalidCodeError, ValidationError
from gis.vocabulary import INCIDENT_STATUSES as STEPS
from gis.vocabulary import LOCAL_TZ, ROLES


# -- the closed loop -------------------------------------------------------------------
def test_every_step_moves_one_forward():
    status, level = "reported", None
    for target in STEPS[1:]:
        change = plan_transition(status, level, target)
        assert (change.status, change.kind) == (target, "advance")
        status, level = change.status, change.handling_level
    assert level == "grid"  # dispatched without a level: the grid handles it


@pytest.mark.parametrize(
    ("status", "target"),
    [
        ("reported", "dispatched"),
        ("reported", "closed"),
        ("registered", "handled"),
        ("dispatched", "verified"),
        ("verified", "registered"),
        ("dispatched", "reported"),
    ],
)
def test_skipping_or_going_back_is_refused_with_the_next_step(status, target):
    with pytest.raises(IllegalTransitionError, match="the next step is"):
        plan_transition(status, "grid", target)


def test_closed_is_final():
    with pytest.raises(IllegalTransitionError, match="closed incident is final"):
        plan_transition("closed", "grid", "reported")


def test_failed_verification_reopens_a_handled_incident():
    change = plan_transition("handled", "grid", "dispatched")
    assert change.kind == "reopen" and change.clears == ("handled_at",)


def test_escalation_goes_up_only():
    assert plan_transition("dispatched", "grid", "dispatched", "community").kind == "escalate"
    assert plan_transition("registered", None, "dispatched", "street").handling_level == "street"
    with pytest.raises(IllegalTransitionError, match="cannot lower"):
        plan_transition("dispatched", "street", "dispatched", "grid")
    with pytest.raises(IllegalTransitionError, match="only be set or escalated"):
        plan_transition("handled", "grid", "verified", "street")


def test_no_change_is_refused():
    with pytest.raises(IllegalTransitionError, match="already dispatched"):
        plan_transition("dispatched", "grid", "dispatched")


# -- parameters ------------------------------------------------------------------------
def test_bbox_in_crs84_is_lon_lat():
    box = parse_bbox("113.8,34.0,113.9,34.1")
    assert (box.minx, box.miny, box.maxx, box.maxy) == (113.8, 34.0, 113.9, 34.1)


@pytest.mark.parametrize("crs", [EPSG4326, EPSG4490])
def test_bbox_in_epsg_systems_is_lat_first(crs):
    box = parse_bbox("34.0,113.8,34.1,113.9", crs)
    assert (box.minx, box.miny, box.maxx, box.maxy) == (113.8, 34.0, 113.9, 34.1)


def test_bbox_in_the_wrong_axis_order_says_so():
    with pytest.raises(ValidationError, match="latitude first"):
        parse_bbox("113.8,34.0,113.9,34.1", EPSG4490)


def test_bbox_with_heights_and_across_the_antimeridian():
    box = parse_bbox("170,-10,0,-170,10,100")
    assert (box.minx, box.miny, box.maxx, box.maxy) == (170, -10, -170, 10)


def test_bbox_upside_down_is_refused():
    with pytest.raises(ValidationError, match="lower latitude"):
        parse_bbox("113.8,34.1,113.9,34.0")


def test_intervals():
    window = parse_interval("2023-03-01/2023-03-31")
    assert window.start == datetime(2023, 3, 1, tzinfo=LOCAL_TZ)
    assert window.end == datetime(2023, 4, 1, tzinfo=LOCAL_TZ) - timedelta(microseconds=1)
    assert parse_interval("../2023-03-01T00:00:00Z").start is None
    assert parse_interval("2023-03-01T00:00:00Z/").end is None
    instant = parse_interval("2023-03-01T08:00:00")
    assert instant.start == instant.end == datetime(2023, 3, 1, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    "text", ["yesterday", "2023-13-01", "2023-03-02/2023-03-01", "a/b/c", ".."]
)
def test_bad_intervals_are_validation_errors(text):
    with pytest.raises(ValidationError):
        parse_interval(text)


def test_last_day_of_the_calendar_does_not_overflow():
    assert parse_interval("../9999-12-31").end == datetime(
        9999, 12, 31, 23, 59, 59, 999999, tzinfo=LOCAL_TZ
    )


# -- errors ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("error", "status"),
    [
        (NotFoundError("x"), 404),
        (AuthenticationError("x"), 401),
        (PermissionDeniedError("x"), 403),
        (IllegalTransitionError("x"), 409),
        (NotReadyError("x"), 409),
        (PayloadTooLargeError("x"), 413),
        (ValidationError("x"), 422),
        (InvalidCodeError("x"), 422),
        (CRSError("x"), 422),
        (GridmapError("x"), 400),
        (RuntimeError("x"), 500),
    ],
)
def test_one_table_maps_errors_to_status(error, status):
    assert status_for(error) == status


def test_roles_are_ordered():
    assert ROLES == ("viewer", "operator", "admin")
    assert role_allows("admin", "operator") and not role_allows("viewer", "operator")


# -- GeoJSON ---------------------------------------------------------------------------
def test_feature_collection_bytes_are_valid_geojson():
    features = ['{"type":"Feature","id":1,"geometry":null,"properties":{"a":1}}'] * 2
    doc = json.loads(feature_collection(features, matched=5, links=[{"href": "x", "rel": "self"}]))
    assert doc["type"] == "FeatureCollection" and len(doc["features"]) == 2
    assert (doc["numberMatched"], doc["numberReturned"]) == (5, 2)
    assert json.loads(feature_collection([], matched=0, links=[]))["features"] == []
