"""A private PostgreSQL + PostGIS cluster in a project-local directory.

The default when no ``GRIDMAP_DATABASE_URL`` is set: the first
run installs the Debian packages if they are missing, runs ``initdb`` into
``var/pg/data``, picks a free loopback port and starts the server; later runs
find the cluster and reuse it (starting it again if the machine was rebooted).

``initdb`` and ``postgres`` refuse to run as root, and CI runs as root, so as
root the cluster belongs to the ``postgres`` system user that the Debian
package creates, and every server command runs through ``runuser``. Root
often clones into its own home (mode 0700), which that user cannot traverse:
then the cluster's files go to ``/var/lib/gridmap/<id>`` (owned by that user,
``id`` derived from the project directory) and only the port and password stay
in the project. Nobody has to chmod their directories.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
from psycopg import sql

from gis.errors import GridmapError

__all__ = ["EmbeddedPostgres", "ProvisioningError"]

SERVER_USER = "postgres"  # created by the Debian postgresql package
SUPERUSER = "gridmap"
#: Where clusters go when the server user cannot reach the project directory.
SERVER_HOME = Path("/var/lib/gridmap")


def _shared_buffers() -> str:
    """An eighth of the machine's memory, from 128 MB up to 1 GB: on 8 GB and more the
    1M-incident city's incidents and assignments (~0.9 GB) mostly stay in PostgreSQL's
    memory (a month of the assessment was counted in 0.55 s instead of 1.4 s with 256 MB),
    and a small machine still starts the server."""
    try:
        total_mb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**20
    except (ValueError, OSError):
        total_mb = 2048
    mb = min(1024, max(128, total_mb // 8))
    return "'1GB'" if mb == 1024 else f"'{mb}MB'"


# Tuned for a developer/demo machine doing bulk loads; durability of the last
# few transactions on power loss matters less here than load speed, and
# synchronous_commit=off never corrupts the cluster.
SERVER_SETTINGS = {
    "listen_addresses": "'127.0.0.1'",
    "unix_socket_directories": "''",
    "max_connections": "60",
    "shared_buffers": _shared_buffers(),
    "work_mem": "'64MB'",
    "maintenance_work_mem": "'256MB'",
    "synchronous_commit": "off",
    "max_wal_size": "'2GB'",
    "checkpoint_timeout": "'15min'",
    "log_min_messages": "warning",
}


#: The line before the settings gridmap writes into a cluster's postgresql.conf.
SETTINGS_HEADER = "# gridmap embedded cluster"


class ProvisioningError(GridmapError, RuntimeError):
    """The embedded cluster could not be installed, created or started."""


class EmbeddedPostgres:
    """A PostgreSQL cluster owned by the project, reachable on 127.0.0.1.

    Parameters
    ----------
    root : Path
        Directory holding ``data/`` (the cluster), ``log/``, ``port`` and ``password``.
    install_packages : bool
        Install ``postgresql`` and ``postgis`` with apt when missing.
    """

    def __init__(self, root: Path, install_packages: bool = True):
        self.root = Path(root).resolve()
        self.install_packages = install_packages
        self._as_server_user = os.geteuid() == 0
        home = self._cluster_home()
        #: Where the ``port`` and ``password`` files are: beside the cluster they describe.
        self.state_dir = home
        self.data_dir = home / "data"
        self.log_file = home / "log" / "server.log"

    # -- public ----------------------------------------------------------------------
    def ensure(self, dbname: str = "gridmap") -> str:
        """Install, initialise and start as needed; return the SQLAlchemy URL of ``dbname``."""
        self.root.mkdir(parents=True, exist_ok=True)
        with self._lock():
            bindir = self._bindir()
            if not (self.data_dir / "PG_VERSION").exists():
                self._initdb(bindir)
            elif not (self.state_dir / "password").exists():
                raise ProvisioningError(
                    f"the cluster in {self.data_dir} has lost its password file "
                    f"{self.state_dir / 'password'}: restore it, or remove {self.data_dir} "
                    "to start a new, empty cluster"
                )
            port = self._start(bindir)
            self._ensure_database(port, dbname)
        return self.url(dbname, port)

    def existing_url(self, dbname: str = "gridmap") -> str:
        """The URL of ``dbname`` in a cluster provisioned before, without starting anything."""
        if not (self.state_dir / "port").exists() or not (self.state_dir / "password").exists():
            raise ProvisioningError(
                f"no database is configured and the embedded cluster under {self.root} "
                "has not been provisioned: run `gridmap db upgrade` (or set GRIDMAP_DATABASE_URL)"
            )
        return self.url(dbname)

    def url(self, dbname: str, port: int | None = None) -> str:
        port = port or int((self.state_dir / "port").read_text())
        password = (self.state_dir / "password").read_text().strip()
        return f"postgresql+psycopg://{SUPERUSER}:{password}@127.0.0.1:{port}/{dbname}"

    def stop(self) -> None:
        """Stop the server if it runs (the data stays)."""
        if (self.data_dir / "postmaster.pid").exists():
            self._run_server_cmd(
                [
                    str(self._bindir() / "pg_ctl"),
                    "-D",
                    str(self.data_dir),
                    "-m",
                    "fast",
                    "-w",
                    "stop",
                ],
                check=False,
            )

    def _cluster_home(self) -> Path:
        """The project directory, or a directory of the server user's when it cannot reach it."""
        if not self._as_server_user or _server_user_reaches(self.root):
            return self.root
        digest = hashlib.sha256(str(self.root).encode()).hexdigest()[:16]
        return SERVER_HOME / digest

    # -- steps -----------------------------------------------------------------------
    @contextlib.contextmanager
    def _lock(self) -> Iterator[None]:
        # Two processes (a test run and the demo) may provision at the same time.
        with open(self.root / ".lock", "w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _bindir(self) -> Path:
        bindir = _find_bindir()
        if bindir is None or not _has_postgis(bindir):
            if not self.install_packages:
                raise ProvisioningError(
                    "PostgreSQL/PostGIS not found; install the Debian packages 'postgresql' and "
                    "'postgis', or set GRIDMAP_DATABASE_URL to an existing PostGIS database"
                )
            _apt_install(["postgresql", "postgis"])
            bindir = _find_bindir()
        if bindir is None or not _has_postgis(bindir):
            raise ProvisioningError(
                "PostgreSQL with PostGIS is still missing after apt-get install"
            )
        return bindir

    def _initdb(self, bindir: Path) -> None:
        _say(f"Creating a private PostgreSQL + PostGIS cluster in {self.data_dir}")
        if self.state_dir != self.root:
            _say(
                f"({SERVER_USER!r} cannot reach {self.root}, so the cluster lives in "
                f"{self.state_dir}, found again by every checkout at this path)"
            )
            SERVER_HOME.mkdir(mode=0o755, parents=True, exist_ok=True)
            self.state_dir.mkdir(mode=0o700, exist_ok=True)
        password = secrets.token_urlsafe(18)
        pwfile = self.state_dir / "password"
        pwfile.write_text(password + "\n")
        pwfile.chmod(0o600)
        if self.data_dir.exists():  # a half-made cluster from an interrupted run
            shutil.rmtree(self.data_dir)
        if self.state_dir != self.root:
            self._give_to_server_user(self.state_dir)
        for path in (self.data_dir, self.log_file.parent):
            path.mkdir(parents=True, exist_ok=True)
            self._give_to_server_user(path)
        # initdb reads the password from a file the server user can read.
        initpw = self.log_file.parent / "initpw"
        initpw.write_text(password + "\n")
        self._give_to_server_user(initpw)
        try:
            self._run_server_cmd(
                [
                    str(bindir / "initdb"),
                    "-D",
                    str(self.data_dir),
                    "-U",
                    SUPERUSER,
                    "--pwfile",
                    str(initpw),
                    "--auth=scram-sha-256",
                    "-E",
                    "UTF8",
                    "--locale=C.UTF-8",
                ]
            )
        finally:
            initpw.unlink(missing_ok=True)
        self._write_settings()

    def _write_settings(self) -> None:
        """Append :data:`SERVER_SETTINGS` to ``postgresql.conf`` unless its last gridmap
        block already says them: a cluster made by an earlier gridmap gets today's
        settings at its next start (the last line naming a setting wins)."""
        conf = "\n".join(f"{key} = {value}" for key, value in SERVER_SETTINGS.items())
        path = self.data_dir / "postgresql.conf"
        written = path.read_text().rsplit(SETTINGS_HEADER, 1)
        if len(written) == 2 and written[1].strip() == conf:
            return
        with open(path, "a") as handle:
            handle.write(f"\n{SETTINGS_HEADER}\n{conf}\n")

    def _start(self, bindir: Path) -> int:
        running = _running_port(self.data_dir)
        if running is not None:
            (self.state_dir / "port").write_text(str(running))
            return running
        self._write_settings()
        port_file = self.state_dir / "port"
        port = int(port_file.read_text()) if port_file.exists() else 0
        if not port or not _port_is_free(port):
            port = _free_port()
        port_file.write_text(str(port))
        _say(f"Starting PostgreSQL on 127.0.0.1:{port}")
        self._run_server_cmd(
            [
                str(bindir / "pg_ctl"),
                "-D",
                str(self.data_dir),
                "-l",
                str(self.log_file),
                "-o",
                f"-p {port}",
                "-w",
                "-t",
                "120",
                "start",
            ]
        )
        return port

    def _ensure_database(self, port: int, dbname: str) -> None:
        url = self.url("postgres", port).replace("postgresql+psycopg", "postgresql")
        for attempt in range(30):  # the server may still be finishing recovery
            try:
                with psycopg.connect(url, autocommit=True) as conn:
                    exists = conn.execute(
                        "SELECT 1 FROM pg_database WHERE datname = %s", (dbname,)
                    ).fetchone()
                    if not exists:
                        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
                break
            except psycopg.OperationalError:
                if attempt == 29:
                    raise
                time.sleep(0.5)
        with psycopg.connect(url.rsplit("/", 1)[0] + f"/{dbname}", autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS postgis")
            conn.execute("CREATE EXTENSION IF NOT EXISTS btree_gist")

    # -- running as the server user ----------------------------------------------------
    def _give_to_server_user(self, path: Path) -> None:
        if not self._as_server_user:
            return
        entry = _server_user()
        os.chown(path, entry.pw_uid, entry.pw_gid)
        path.chmod(0o700 if path.is_dir() else 0o600)
        # The server user must be able to reach the directory through its parents.
        probe = subprocess.run(
            ["runuser", "-u", SERVER_USER, "--", "test", "-w", str(path)], capture_output=True
        )
        if probe.returncode != 0:
            raise ProvisioningError(
                f"user {SERVER_USER!r} cannot reach {path}: make its parent directories "
                "traversable (chmod o+x) or set GRIDMAP_DATA_DIR to a directory it can reach"
            )

    def _run_server_cmd(self, args: list[str], check: bool = True) -> None:
        if self._as_server_user:
            args = ["runuser", "-u", SERVER_USER, "--", *args]
        result = subprocess.run(args, capture_output=True, text=True, cwd="/")
        if check and result.returncode != 0:
            log_tail = self.log_file.read_text()[-2000:] if self.log_file.exists() else ""
            raise ProvisioningError(
                f"{Path(args[-1] if args[-1] != 'start' else 'pg_ctl').name} failed "
                f"({result.returncode}): "
                f"{result.stderr.strip() or result.stdout.strip()}\n{log_tail}"
            )


# -- helpers -------------------------------------------------------------------------
def _say(message: str) -> None:
    print(f"[gridmap] {message}", file=sys.stderr, flush=True)


def _find_bindir() -> Path | None:
    """Newest /usr/lib/postgresql/<major>/bin holding initdb (Debian's layout)."""
    candidates = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
    )
    if candidates:
        return candidates[-1].parent
    initdb = shutil.which("initdb")
    return Path(initdb).resolve().parent if initdb else None


def _has_postgis(bindir: Path) -> bool:
    pg_config = bindir / "pg_config"
    if pg_config.exists():
        share = subprocess.run([str(pg_config), "--sharedir"], capture_output=True, text=True)
        sharedir = Path(share.stdout.strip())
    else:
        sharedir = Path("/usr/share/postgresql") / bindir.parent.name
    return (sharedir / "extension" / "postgis.control").exists()


def _apt_install(packages: list[str]) -> None:
    if shutil.which("apt-get") is None:
        raise ProvisioningError(
            f"cannot install {', '.join(packages)}: no apt-get here; install PostgreSQL and "
            "PostGIS "
            "yourself or set GRIDMAP_DATABASE_URL"
        )
    sudo = [] if os.geteuid() == 0 else ["sudo", "-n"]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    _say(f"Installing Debian packages: {' '.join(packages)} (first run only)")
    install = [*sudo, "apt-get", "install", "-y", "-q", *packages]
    if subprocess.run(install, env=env, capture_output=True).returncode != 0:
        subprocess.run([*sudo, "apt-get", "update", "-q"], env=env, capture_output=True)
        result = subprocess.run(install, env=env, capture_output=True, text=True)
        if result.returncode != 0:
            raise ProvisioningError(
                f"apt-get install {' '.join(packages)} failed:\n{result.stderr}"
            )


def _server_user() -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(SERVER_USER)
    except KeyError as exc:
        raise ProvisioningError(
            f"running as root needs the system user {SERVER_USER!r} (created by the Debian "
            "postgresql package)"
        ) from exc


def _server_user_reaches(path: Path) -> bool:
    """Whether the server user can traverse ``path`` (or its nearest existing ancestor)."""
    while not path.exists():
        path = path.parent
    try:
        _server_user()
    except ProvisioningError:
        return True  # no such user: the error comes, clearer, when it is needed
    probe = subprocess.run(
        ["runuser", "-u", SERVER_USER, "--", "test", "-x", str(path)], capture_output=True
    )
    return probe.returncode == 0


def _running_port(data_dir: Path) -> int | None:
    """Port of the server running on ``data_dir``, read from postmaster.pid, or None."""
    pidfile = data_dir / "postmaster.pid"
    try:
        lines = pidfile.read_text().splitlines()
        pid, port = int(lines[0]), int(lines[3])
    except (OSError, ValueError, IndexError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass  # alive, owned by another user
    return port if not _port_is_free(port) else None


def _port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
