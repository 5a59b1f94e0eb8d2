"""Browser tests' support: Debian's Chromium driven by Playwright, and `gridmap serve`.

Every request that leaves loopback is blocked and recorded (:class:`Visit`): the
pages must work on an intranet without internet. The ``server`` and ``browser``
fixtures of ``conftest.py`` use these helpers.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from app.config import PROJECT_ROOT

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOTS = PROJECT_ROOT / "var" / "screenshots"
LOOPBACK = {"127.0.0.1", "localhost", "[::1]"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def serve_command(port: int) -> list[str]:
    """``gridmap serve`` with this interpreter (the console script may not be on PATH)."""
    cli = "from app.cli import main; main()"
    return [sys.executable, "-c", cli, "serve", "--host", "127.0.0.1", "--port", str(port)]


def wait_for(url: str, process: subprocess.Popen, log: Path, seconds: float = 180) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"gridmap serve exited ({process.returncode}):\n{log.read_text()}")
        try:
            if httpx.get(url, timeout=120).status_code == 200:  # waits for the warm-up
                return
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    pytest.fail(f"{url} not ready after {seconds} s:\n{log.read_text()}")


class Visit:
    """One page, with its console errors and every request that tried to leave loopback."""

    def __init__(self, browser, url: str):
        self.errors: list[str] = []
        self.remote: list[str] = []
        self.page = browser.new_page()
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.route("**/*", self._guard)
        self.page.goto(url)
        self.page.wait_for_selector("html[data-gridmap-ready]", state="attached", timeout=60_000)

    def _guard(self, route) -> None:
        parts = urlsplit(route.request.url)
        if parts.scheme in ("http", "https", "ws", "wss") and parts.hostname not in LOOPBACK:
            self.remote.append(route.request.url)
            route.abort()
        else:
            route.continue_()

    def count(self, pane: str) -> int:
        return self.page.locator(f".leaflet-{pane}-pane path").count()

    def toggle(self, label: str) -> None:
        self.page.locator(".leaflet-control-layers-overlays label", has_text=label).locator(
            "input"
        ).click()
        self.page.wait_for_timeout(300)

    def close(self) -> None:
        assert self.errors == [], self.errors
        assert self.remote == [], self.remote
        self.page.close()


@contextlib.contextmanager
def serving(database_url: str, log: Path) -> Iterator[str]:
    """`gridmap serve` over ``database_url`` on a free loopback port; yields its base URL.

    Skips when Debian's Chromium is missing: only the browser tests start a server.
    """
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM}: apt-get install chromium")
    port = free_port()
    env = {
        **os.environ,
        "GRIDMAP_DATABASE_URL": database_url,
        "GRIDMAP_INDEX_REFRESH_SECONDS": "0",
    }
    with log.open("w") as out:
        process = subprocess.Popen(
            serve_command(port), cwd=PROJECT_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
        )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(f"{base}/map", process, log)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=20)
