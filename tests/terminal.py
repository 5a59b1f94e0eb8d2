"""Running ``gridmap`` the way a user does: the installed script on a pseudo-terminal.

rich draws its live progress bars only on a terminal, so every CLI test runs the
command on a 120×40 pseudo-terminal and reads back what the screen showed. The
``cli`` fixture of ``conftest.py`` gives each test module a database of its own.
"""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import struct
import subprocess
import termios
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from app.config import PROJECT_ROOT
from app.db.session import make_engine
from tests.helpers import fresh_embedded_database

GRIDMAP = PROJECT_ROOT / ".venv" / "bin" / "gridmap"
COLUMNS, LINES = 120, 40
# CSI sequences (colours, cursor moves of the live display) and OSC ones (hyperlinks).
ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[()][A-Z0-9]")


@dataclass
class Run:
    """A finished command: its exit status and what the terminal showed, ANSI removed."""

    args: tuple[str, ...]
    code: int
    output: str

    @property
    def flat(self) -> str:
        """The output with every run of whitespace one space: rich wraps long titles."""
        return " ".join(self.output.split())

    def ok(self) -> Run:
        assert self.code == 0, f"gridmap {' '.join(self.args)} exited {self.code}:\n{self.output}"
        return self

    def number(self, pattern: str) -> int:
        """The integer (thousands separators allowed) that ``pattern``'s group captures."""
        found = re.search(pattern, self.flat)
        assert found, f"{pattern!r} not in the output of gridmap {' '.join(self.args)}:\n" + (
            self.output
        )
        return int(found.group(1).replace(",", ""))


def run_on_terminal(args: list[str], env: dict[str, str], timeout: float) -> tuple[int, str]:
    """Run ``args`` with stdin, stdout and stderr on a new 120×40 pseudo-terminal."""
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", LINES, COLUMNS, 0, 0))
    proc = subprocess.Popen(
        args, stdin=follower, stdout=follower, stderr=follower, env=env, cwd=PROJECT_ROOT
    )
    os.close(follower)
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([leader], [], [], 1.0)
            if not ready:
                continue
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # EIO: every holder of the terminal has closed it
                break
            if not chunk:
                break
            chunks.append(chunk)
        else:
            proc.kill()
            pytest.fail(f"{args} still running after {timeout} s:\n{plain(b''.join(chunks))}")
        code = proc.wait(timeout=30)
    finally:
        os.close(leader)
        if proc.poll() is None:
            proc.kill()
    return code, plain(b"".join(chunks))


def plain(raw: bytes) -> str:
    return ANSI.sub("", raw.decode("utf-8", "replace")).replace("\r\n", "\n")


@dataclass
class Cli:
    """The module's database and a way to run ``gridmap`` on it."""

    url: str
    engine: Engine
    env: dict[str, str]

    def __call__(self, *args: str | Path, timeout: float = 300) -> Run:
        argv = tuple(str(a) for a in args)
        code, output = run_on_terminal([str(GRIDMAP), *argv], self.env, timeout)
        return Run(argv, code, output)

    def scalar(self, sql: str, **params: object) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(text(sql), params).scalar_one())


@contextmanager
def terminal_cli(database: str) -> Iterator[Cli]:
    """``gridmap`` on a fresh database ``database``, on a terminal, progress bars on."""
    if not GRIDMAP.exists():
        pytest.skip(f"no console script at {GRIDMAP}: run ./scripts/setup.sh")
    url = fresh_embedded_database(database)
    env = {
        **os.environ,
        "GRIDMAP_DATABASE_URL": url,
        "TERM": "xterm-256color",
        "COLUMNS": str(COLUMNS),
        "LINES": str(LINES),
        "TTY_COMPATIBLE": "1",
        "GRIDMAP_INDEX_REFRESH_SECONDS": "0",
    }
    env.pop("NO_COLOR", None)
    engine = make_engine(url)
    try:
        yield Cli(url, engine, env)
    finally:
        engine.dispose()


def run_with_input(
    cli: Cli, args: tuple[str, ...], stdin_text: str | None = None, answers: Sequence[str] = ()
) -> Run:
    """Run gridmap with output on a new terminal; stdin a pipe holding ``stdin_text``, or the
    terminal itself (its controlling tty, so hidden prompts work) where ``answers`` are typed
    one per prompt."""
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", LINES, COLUMNS, 0, 0))

    def own_terminal() -> None:  # the child's controlling terminal: getpass reads /dev/tty
        os.setsid()
        fcntl.ioctl(follower, termios.TIOCSCTTY, 0)

    proc = subprocess.Popen(
        [str(GRIDMAP), *args],
        stdin=subprocess.PIPE if stdin_text is not None else follower,
        stdout=follower,
        stderr=follower,
        env=cli.env,
        cwd=PROJECT_ROOT,
        preexec_fn=own_terminal,
    )
    os.close(follower)
    if stdin_text is not None:
        assert proc.stdin is not None
        proc.stdin.write(stdin_text.encode())
        proc.stdin.close()
    chunks: list[bytes] = []
    pending = list(answers)
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([leader], [], [], 0.5)
            if not ready:
                continue
            try:
                chunk = os.read(leader, 65536)
            except OSError:
                break
            if not chunk:
                break
            chunks.append(chunk)
            # getpass writes the prompt's last space after flushing the terminal's input:
            # an answer typed before it would be thrown away.
            if pending and b"".join(chunks).endswith(b": "):
                os.write(leader, pending.pop(0).encode() + b"\n")
        else:
            proc.kill()
            pytest.fail(f"gridmap {args} still running after 120 s:\n{plain(b''.join(chunks))}")
        code = proc.wait(timeout=30)
    finally:
        os.close(leader)
        if proc.poll() is None:
            proc.kill()
    return Run(args, code, plain(b"".join(chunks)))
