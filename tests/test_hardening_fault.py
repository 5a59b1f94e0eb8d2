"""Issue 15, outages: the database of a running `gridmap serve` stops and comes back.

The test has its own throwaway PostgreSQL cluster (never the shared one under var/pg,
which other sessions use): a small area layer is loaded, the server started, the
cluster stopped. DB-backed endpoints then answer 503 with ``Retry-After``, ``/ready``
says the database is down, ``/health`` stays 200; once the cluster is back everything
answers 200 again without a restart, and the log holds one line for the outage instead
of a traceback per request.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from app.config import PROJECT_ROOT
from app.db.embedded import EmbeddedPostgres
from app.db.session import make_engine, upgrade
from app.services.security import create_api_key
from tests.browser import free_port, serve_command
from tests.helpers import load_generation, small_district

pytestmark = [pytest.mark.db, pytest.mark.slow]

DB = "gridmap_fault"
COMMUNITY = "411002003001"


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[EmbeddedPostgres]:
    own = EmbeddedPostgres(tmp_path / "pg")
    try:
        yield own
    finally:
        own.stop()
        if not own.data_dir.is_relative_to(tmp_path):  # relocated (root, 0700 tmp)
            shutil.rmtree(own.data_dir.parent, ignore_errors=True)


def _wait(url: str, process: subprocess.Popen, log: Path, want: int, seconds: float = 120):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"gridmap serve exited ({process.returncode}):\n{log.read_text()}")
        try:
            answer = httpx.get(url, timeout=30)
            if answer.status_code == want:
                return answer
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    pytest.fail(f"{url} never answered {want} in {seconds} s:\n{log.read_text()}")


def test_a_database_outage_answers_503_and_recovers_without_restart(cluster, demo, tmp_path):
    url = cluster.ensure(DB)
    upgrade(url)
    engine = make_engine(url)
    try:
        load_generation(engine, "fault", small_district(demo, [COMMUNITY]))
        key = create_api_key(engine, "viewer", "fault-test")
    finally:
        engine.dispose()
    grid = f"{COMMUNITY}001"
    port = free_port()
    log = tmp_path / "serve.log"
    env = {
        **os.environ,
        "GRIDMAP_DATABASE_URL": url,
        "GRIDMAP_INDEX_REFRESH_SECONDS": "1",
        "GRIDMAP_MAP_WARM_ON_STARTUP": "false",
        "GRIDMAP_RETRY_AFTER_SECONDS": "7",
    }
    with log.open("w") as out:
        process = subprocess.Popen(
            serve_command(port), cwd=PROJECT_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
        )
    base = f"http://127.0.0.1:{port}"
    headers = {"X-API-Key": key}
    backed = [f"{base}/generations", f"{base}/grids/{grid}", f"{base}/incidents?limit=1"]
    try:
        _wait(f"{base}/ready", process, log, 200)
        for path in backed:
            assert httpx.get(path, headers=headers).status_code == 200, path

        cluster.stop()
        with httpx.Client(headers=headers, timeout=30) as client:  # keep-alive kept throughout
            for _ in range(5):
                for path in backed:
                    answer = client.get(path)
                    assert answer.status_code == 503, (path, answer.text)
                    assert answer.headers["retry-after"] == "7"
                    assert "database" in answer.json()["detail"]
            ready = client.get(f"{base}/ready")
            assert ready.status_code == 503
            assert ready.json()["checks"]["database"].startswith("down")
            assert client.get(f"{base}/health").status_code == 200

        cluster.ensure(DB)
        _wait(f"{base}/ready", process, log, 200)
        for path in backed:
            assert httpx.get(path, headers=headers).status_code == 200, path
    finally:
        process.terminate()
        process.wait(timeout=30)
    text = log.read_text()
    assert text.count("database down since") == 1, text
    assert text.count("database back after") == 1, text
    assert "Traceback" not in text, text
