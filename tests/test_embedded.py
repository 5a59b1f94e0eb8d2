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


def test_the_running_cluster_has_the_settings_gridmap_writes(pg_engine):
    """What ``SERVER_SETTINGS`` says is what the server runs with (a cluster made with
    older settings gets these at its next start)."""
    from sqlalchemy import text

    from app.db.embedded import SERVER_SETTINGS

    if "GRIDMAP_TEST_DATABASE_URL" in os.environ:
        pytest.skip("an external test database is configured")
    with pg_engine.connect() as conn:
        for name in ("shared_buffers", "work_mem", "max_connections"):
            shown = conn.execute(text(f"SHOW {name}")).scalar()
            assert shown == SERVER_SETTINGS[name].strip("'"), name


def test_settings_are_appended_once_and_again_when_they_change(tmp_path, monkeypatch):
    from app.db import embedded

    cluster = EmbeddedPostgres(tmp_path, install_packages=False)
    cluster.data_dir.mkdir(parents=True)
    conf = cluster.data_dir / "postgresql.conf"
    conf.write_text("# initdb's\nshared_buffers = 128MB\n")
    cluster._write_settings()
    cluster._write_settings()
    assert conf.read_text().count(embedded.SETTINGS_HEADER) == 1
    changed = {**embedded.SERVER_SETTINGS, "work_mem": "'32MB'"}
    monkeypatch.setattr(embedded, "SERVER_SETTINGS", changed)
    cluster._write_settings()
    text_now = conf.read_text()
    assert text_now.count(embedded.SETTINGS_HEADER) == 2
    assert text_now.rstrip().endswith("log_min_messages = warning")
    assert text_now.rsplit(embedded.SETTINGS_HEADER, 1)[1].count("work_mem = '32MB'") == 1


@pytest.mark.parametrize(
    ("memory_gb", "shown"), [(0.5, "'128MB'"), (2, "'256MB'"), (8, "'1GB'"), (64, "'1GB'")]
)
def test_shared_buffers_are_an_eighth_of_memory_up_to_1gb(monkeypatch, memory_gb, shown):
    from app.db import embedded

    pages = {"SC_PAGE_SIZE": 4096, "SC_PHYS_PAGES": int(memory_gb * 2**30 / 4096)}
    monkeypatch.setattr(embedded.os, "sysconf", lambda name: pages[name])
    assert embedded._shared_buffers() == shown
