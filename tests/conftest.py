"""Shared fixtures: a real PostgreSQL + PostGIS, provisioned by the test session itself.

With ``GRIDMAP_TEST_DATABASE_URL`` set, that (disposable!) database is used;
otherwise the embedded cluster of ``app.db.embedded`` hosts a database
``gridmap_test`` that is dropped and recreated at the start of every session,
so runs never depend on each other or on the demo database.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from sqlalchemy import Engine, text

from app.config import PROJECT_ROOT, normalise_url
from app.db.session import make_engine, upgrade

# Test apps must not start the background map build of `gridmap serve`.
os.environ.setdefault("GRIDMAP_MAP_WARM_ON_STARTUP", "false")

# Parallel runs on one machine each set their own name (GRIDMAP_TEST_DB_NAME=gridmap_test_a).
TEST_DB = os.environ.get("GRIDMAP_TEST_DB_NAME", "gridmap_test")
DEMO_DB = f"{TEST_DB}_demo"
CHICAGO = PROJECT_ROOT.parent / "shared" / "data" / "real" / "chicago"
TABLES = (
    "api_key",
    "address_point",
    "lineage",
    "incident_assignment",
    "incident",
    "staff",
    "area",
    "rejected_row",
    "import_batch",
    "generation",
)


def _fresh_embedded_database(name: str = TEST_DB) -> str:
    from app.db.embedded import EmbeddedPostgres

    cluster = EmbeddedPostgres(PROJECT_ROOT / "var" / "pg")
    admin = cluster.ensure("postgres").replace("postgresql+psycopg", "postgresql")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
    return cluster.ensure(name)


@pytest.fixture(scope="session")
def pg_url() -> str:
    """URL of a migrated, empty PostGIS test database."""
    url = os.environ.get("GRIDMAP_TEST_DATABASE_URL")
    url = normalise_url(url) if url else _fresh_embedded_database()
    upgrade(url)
    return url


@pytest.fixture(scope="session")
def pg_engine(pg_url: str) -> Iterator[Engine]:
    engine = make_engine(pg_url)
    yield engine
    engine.dispose()


@pytest.fixture
def clean_db(pg_engine: Engine) -> Iterator[Engine]:
    """The engine, with every gridmap table emptied after the test (for code that commits)."""
    yield pg_engine
    with pg_engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE"))


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
    url = normalise_url(url) if url else _fresh_embedded_database(DEMO_DB)
    upgrade(url)
    engine = make_engine(url)
    load_demo(engine, demo)
    yield engine
    engine.dispose()
