"""The embedded cluster is provisioned once and reused."""

import os

import pytest

from app.config import PROJECT_ROOT, Settings, normalise_url
from app.db.embedded import EmbeddedPostgres
from tests.helpers import TEST_DB

pytestmark = pytest.mark.db


def test_embedded_cluster_is_reused_on_the_same_port(pg_url):
    if "GRIDMAP_TEST_DATABASE_URL" in os.environ:
        pytest.skip("an external test database is configured")
    cluster = EmbeddedPostgres(PROJECT_ROOT / "var" / "pg")
    first = cluster.ensure(TEST_DB)
    second = cluster.ensure(TEST_DB)
    assert first == second == pg_url
    assert (cluster.data_dir / "PG_VERSION").exists()


def test_database_url_setting_wins_and_plain_urls_are_accepted(monkeypatch):
    monkeypatch.setenv("GRIDMAP_DATABASE_URL", "postgresql://u:p@db:5432/gridmap")
    assert Settings().sqlalchemy_url() == "postgresql+psycopg://u:p@db:5432/gridmap"
    assert normalise_url("postgres://a@b/c") == "postgresql+psycopg://a@b/c"
