"""Shared fixtures: a real PostgreSQL + PostGIS, provisioned by the test session itself.

With ``GRIDMAP_TEST_DATABASE_URL`` set, that (disposable!) database is used;
otherwise the embedded cluster of ``app.db.embedded`` hosts a database
``gridmap_test`` (``GRIDMAP_TEST_DB_NAME``) that is dropped and recreated at the
start of every session, so runs never depend on each other or on the demo database.

Within a session no test may depend on another: each one undoes what it writes
(``clean_db`` puts the test database back as migrated; demo fixtures delete their
own rows).
``pytest -p randomly --randomly-seed=N`` shuffles the order to check that.
Plain helpers are in ``tests/helpers.py``.
"""

from __future__ import annotations

import itertools
import os
import uuid
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from sqlalchemy import Engine, text

from app.config import PROJECT_ROOT, normalise_url
from app.db.session import make_engine, upgrade
from gis.vocabulary import ROLES
from tests import browser as browser_support
from tests.helpers import (
    TEST_DB,
    empty_tables,
    fresh_embedded_database,
    keep_seed,
    make_client,
    row_counts,
)

if TYPE_CHECKING:
    from fastapi.testclient import TestClient

    from tests.terminal import Cli

# Test apps must not start the background map build of `gridmap serve`.
os.environ.setdefault("GRIDMAP_MAP_WARM_ON_STARTUP", "false")
# Nor keep pages on disk: a recreated test database may match an old data version.
os.environ.setdefault("GRIDMAP_MAP_PAGE_STORE", "false")

DEMO_DB = f"{TEST_DB}_demo"
CHICAGO = PROJECT_ROOT.parent / "shared" / "data" / "real" / "chicago"


# -- test order ----------------------------------------------------------------------
_FILE_ORDER = pytest.StashKey[int]()
_collected = itertools.count()


def pytest_itemcollected(item: pytest.Item) -> None:
    item.stash[_FILE_ORDER] = next(_collected)


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Put the tests of an ``in_file_order`` module back in file order, however shuffled.

    Such a module is one scenario whose steps build on each other's state; the order
    of the modules, and of every other module's tests, is left as it is.
    """
    slots: dict[Path, list[int]] = defaultdict(list)
    for slot, item in enumerate(items):
        if item.get_closest_marker("in_file_order"):
            slots[item.path].append(slot)
    for module_slots in slots.values():
        steps = sorted((items[slot] for slot in module_slots), key=lambda i: i.stash[_FILE_ORDER])
        for slot, step in zip(module_slots, steps, strict=True):
            items[slot] = step


# -- databases -----------------------------------------------------------------------


@pytest.fixture(scope="session")
def pg_url() -> str:
    """URL of a migrated, empty PostGIS test database."""
    url = os.environ.get("GRIDMAP_TEST_DATABASE_URL")
    url = normalise_url(url) if url else fresh_embedded_database()
    upgrade(url)
    return url


@pytest.fixture(scope="session")
def pg_engine(pg_url: str) -> Iterator[Engine]:
    """The engine of the test database; every test leaves it as migrated (see ``clean_db``)."""
    engine = make_engine(pg_url)
    migrated = keep_seed(engine)
    yield engine
    left = row_counts(engine)
    engine.dispose()
    changed = {name: rows for name, rows in left.items() if rows != migrated[name]}
    assert not changed, f"tests left rows in the test database (use clean_db): {changed}"


@pytest.fixture
def clean_db(pg_engine: Engine) -> Iterator[Engine]:
    """The engine, its tables put back as migrated after the test (for code that commits)."""
    yield pg_engine
    empty_tables(pg_engine)


@pytest.fixture(scope="session")
def chicago_dir() -> Path:
    if not CHICAGO.exists():
        pytest.skip(f"real Chicago data not found at {CHICAGO}")
    return CHICAGO


@pytest.fixture(scope="session")
def demo():
    """The default demo district (seed 411002, 50,000 incidents), built once."""
    from gis.demo import build_demo

    return build_demo()


@pytest.fixture(scope="session")
def demo_engine(demo) -> Iterator[Engine]:
    """A database of its own holding the loaded demo (never truncated by other tests).

    Tests using it must not write to it, or must undo what they write.
    """
    from app.services.demo import load_demo

    url = os.environ.get("GRIDMAP_TEST_DEMO_DATABASE_URL")
    url = normalise_url(url) if url else fresh_embedded_database(DEMO_DB)
    upgrade(url)
    engine = make_engine(url)
    load_demo(engine, demo)
    loaded = row_counts(engine)
    yield engine
    left = row_counts(engine)
    engine.dispose()
    assert left == loaded, f"tests changed the demo database: {loaded} before, {left} after"


@pytest.fixture(scope="session")
def demo_client(demo_engine: Engine) -> Iterator[TestClient]:
    """The app on the demo database, started once: building its lookup index takes seconds."""
    with make_client(demo_engine) as client:
        yield client


@pytest.fixture(scope="session")
def demo_keys(demo_engine: Engine) -> Iterator[dict[str, dict[str, str]]]:
    """Headers with a key of each role on the demo database (deleted afterwards)."""
    from app.services.security import create_api_key

    names = {role: f"api-test-{role}-{uuid.uuid4().hex[:8]}" for role in ROLES}
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


@pytest.fixture(scope="module")
def cli(request: pytest.FixtureRequest) -> Iterator[Cli]:
    """``gridmap`` as a user runs it (a pseudo-terminal), on a fresh database of the module's."""
    from tests.terminal import terminal_cli

    module = request.module.__name__.rsplit(".", 1)[-1].removeprefix("test_")
    with terminal_cli(f"{TEST_DB}_{module}") as runner:
        yield runner


@pytest.fixture(scope="module")
def server(demo_engine, tmp_path_factory) -> Iterator[str]:
    """`gridmap serve` on a free loopback port over the demo database; its base URL."""
    url = demo_engine.url.render_as_string(hide_password=False)
    with browser_support.serving(url, tmp_path_factory.mktemp("serve") / "serve.log") as base:
        yield base


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    """Debian's Chromium with a fresh profile, driven by Playwright (no downloaded browser)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")),
            executable_path=browser_support.CHROMIUM,
            headless=True,
            args=browser_support.CHROMIUM_ARGS,
            viewport={"width": 1400, "height": 900},
        )
        yield context
        context.close()


@pytest.fixture(scope="module")
def small_demo():
    """A demo district with 3,000 incidents: enough for redesign and statistics tests."""
    from gis.demo import build_demo

    return build_demo(n_incidents=3000)


@pytest.fixture
def loaded(clean_db, small_demo):
    """The small demo loaded into the test database (emptied after the test)."""
    from app.services.demo import load_demo

    load_demo(clean_db, small_demo)
    return clean_db
