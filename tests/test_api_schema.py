"""Property-based run of the OpenAPI schema (schemathesis): no 5xx, every response as documented.

Reads run against the demo with a viewer key. Writes (and generation
activation, which re-assigns every incident) run against the small
two-generation database with an admin key, so nothing they create can touch the
demo. Bounded: a fixed number of examples per operation, derandomised.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from app.config import Settings
from app.main import create_app
from app.services.security import create_api_key
from tests.helpers import empty_tables, load_generation, make_client, small_district

pytestmark = [pytest.mark.db, pytest.mark.slow]

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
BOUNDED = settings(
    max_examples=10,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)

# The schema needs no database: create_app opens nothing until its lifespan starts.
SCHEMA = schemathesis.openapi.from_dict(
    create_app(Settings(database_url="postgresql://unused/")).openapi()
)


@pytest.fixture(scope="module")
def write_app(pg_engine, demo) -> Iterator[tuple]:
    load_generation(pg_engine, "g1", small_district(demo, ["411002003001"]))
    load_generation(pg_engine, "g2", small_district(demo, ["411002003002"]))
    key = create_api_key(pg_engine, "admin", "schema-test-admin")
    with make_client(pg_engine) as client:
        yield client, {"X-API-Key": key}
    empty_tables(pg_engine)


def _call_and_validate(case, client, headers: dict) -> None:
    kwargs = case.as_transport_kwargs(base_url="http://testserver", headers=headers)
    data = kwargs.pop("data", None)
    if isinstance(data, bytes | str):
        kwargs["content"] = data  # httpx names raw bodies `content`
    elif data is not None:
        kwargs["data"] = data
    kwargs.pop("verify", None)
    kwargs.pop("cookies", None)  # the API uses none; per-request cookies are deprecated
    response = client.request(**kwargs)
    case.validate_response(response, checks=CHECKS)


@SCHEMA.include(method="GET").parametrize()
@BOUNDED
def test_reads_conform(case, demo_client, demo_keys):
    _call_and_validate(case, demo_client, demo_keys["viewer"])


@SCHEMA.include(method="POST").parametrize()
@BOUNDED
def test_writes_conform(case, write_app):
    client, headers = write_app
    _call_and_validate(case, client, headers)
