"""The embedded cluster works when the checkout sits in a directory its server user cannot reach.

Root usually clones into its home (mode 0700); the ``postgres`` user that must own the
cluster cannot traverse it. gridmap then keeps the cluster in a directory of that user's
instead of asking anyone to chmod their home.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import psycopg
import pytest

from app.db.embedded import SERVER_HOME, EmbeddedPostgres

pytestmark = [
    pytest.mark.db,
    pytest.mark.skipif(os.geteuid() != 0, reason="only root hands the cluster to postgres"),
]


@pytest.fixture
def private_dir(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    home.chmod(0o700)  # whatever the umask says
    return home


def test_cluster_in_a_private_directory_runs(private_dir: Path):
    cluster = EmbeddedPostgres(private_dir / "checkout" / "var" / "pg")
    assert not cluster.data_dir.is_relative_to(private_dir)
    assert cluster.data_dir.is_relative_to(SERVER_HOME)
    try:
        url = cluster.ensure("gridmap_private").replace("postgresql+psycopg", "postgresql")
        with psycopg.connect(url) as conn:
            version = conn.execute("SELECT postgis_lib_version()").fetchone()
        assert version is not None and version[0]
        # Nothing of the cluster lives in the private checkout, not even its password.
        assert [p.name for p in cluster.root.iterdir() if not p.name.startswith(".")] == []
        # A fresh clone at the same path finds the same running cluster.
        shutil.rmtree(private_dir / "checkout")
        again = EmbeddedPostgres(private_dir / "checkout" / "var" / "pg")
        assert again.data_dir == cluster.data_dir
        assert again.ensure("gridmap_private") == cluster.url("gridmap_private")
    finally:
        cluster.stop()
        shutil.rmtree(cluster.state_dir, ignore_errors=True)


def test_reachable_directory_keeps_the_cluster_inside():
    shared = Path(tempfile.mkdtemp(dir="/tmp"))  # /tmp is traversable by everyone
    try:
        shared.chmod(0o755)
        cluster = EmbeddedPostgres(shared / "pg")
        assert cluster.data_dir == (shared / "pg" / "data").resolve()
    finally:
        shutil.rmtree(shared)
