"""Fixtures shared by the tests/test_api_*.py modules (import them from here).

Building the lookup index of the demo takes seconds, so every module shares one
app on the demo database: the session-scoped fixture below is instantiated once
per importing module by pytest, but they all hand out the same TestClient
(reference-counted, closed when the last module's fixture is torn down).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import geopandas as gpd
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from app.api.settings import ApiSettings
from app.config import Settings
from app.main import create_app
from app.services.security import create_api_key

_SHARED: dict[str, list] = {}  # url → [client, references]


def engine_url(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=False)


def make_client(engine: Engine, **api: object) -> TestClient:
    """A TestClient (not yet entered) of a new app on ``engine``'s database."""
    settings = ApiSettings(index_refresh_seconds=0, **api)
    return TestClient(create_app(Settings(database_url=engine_url(engine)), settings))


@pytest.fixture(scope="session")
def demo_client(demo_engine: Engine) -> Iterator[TestClient]:
    """The app on the demo database, lifespan started (index built) once per session."""
    url = engine_url(demo_engine)
    entry = _SHARED.get(url)
    if entry is None:
        client = make_client(demo_engine)
        client.__enter__()
        entry = _SHARED[url] = [client, 0]
    entry[1] += 1
    yield entry[0]
    entry[1] -= 1
    if entry[1] == 0:
        entry[0].__exit__(None, None, None)
        del _SHARED[url]


@pytest.fixture(scope="session")
def demo_keys(demo_engine: Engine) -> Iterator[dict[str, dict[str, str]]]:
    """Headers with a key of each role on the demo database (deleted afterwards)."""
    names = {
        role: f"api-test-{role}-{uuid.uuid4().hex[:8]}" for role in ("viewer", "operator", "admin")
    }
    keys = {
        role: {"X-API-Key": create_api_key(demo_engine, role, name)} for role, name in names.items()
    }
    yield keys
    with demo_engine.begin() as conn:
        conn.execute(
            text("DELETE FROM api_key WHERE name = ANY(:names)"), {"names": list(names.values())}
        )


@pytest.fixture
def incident_source(demo_engine: Engine) -> Iterator[str]:
    """A source name of this test's own; its incidents are deleted afterwards."""
    source = f"apitest_{uuid.uuid4().hex[:12]}"
    yield source
    with demo_engine.begin() as conn:
        conn.execute(text("DELETE FROM incident WHERE source = :s"), {"s": source})


def demo_point(demo, code: str) -> tuple[float, float]:
    """A WGS84 point well inside the demo grid ``code``."""
    grid = demo.grids.set_index("code").loc[code, "geometry"]
    point = grid.representative_point()
    return float(point.x), float(point.y)


def small_district(demo, communities: list[str]) -> dict[str, gpd.GeoDataFrame]:
    """The demo's areas restricted to some communities, with their street and district."""
    streets = {code[:9] for code in communities}
    return {
        "district": demo.district,
        "street": demo.streets[demo.streets["code"].isin(streets)],
        "community": demo.communities[demo.communities["code"].isin(communities)],
        "grid": demo.grids[demo.grids["parent_code"].isin(communities)],
        "micro_grid": demo.micro_grids[demo.micro_grids["code"].str[:12].isin(communities)],
    }


def load_generation(engine: Engine, label: str, frames: dict[str, gpd.GeoDataFrame]) -> None:
    """Store ``frames`` (level → areas) as generation ``label``."""
    from app.services.area_import import import_areas_on

    with engine.begin() as conn:
        for level, frame in frames.items():
            import_areas_on(
                conn,
                frame,
                level,
                source=f"api-test {label}",
                generation=label,
                replace=True,
                code_field="code",
                parent_field="parent_code" if level != "district" else None,
                name_field="name",
                kind_field="kind",
            )


def test_small_district_nests(demo):
    """The helper keeps every level's parents (a sanity check of the fixture itself)."""
    frames = small_district(demo, ["411002001001"])
    assert set(frames["grid"]["parent_code"]) == {"411002001001"}
    assert set(frames["micro_grid"]["parent_code"]) <= set(frames["grid"]["code"])
