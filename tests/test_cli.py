"""Every command the README shows, run as a user runs it: the installed ``gridmap`` script
in a subprocess, on a pseudo-terminal (so rich draws its live progress bars), against a
database of this module's own.

The demo district is loaded once for the module (~40 s); the tests then run in file
order on it: reads first, then the commands that add generations, activate them and
finally reload the demo with planted defects.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from rich.console import Console
from sqlalchemy import text

from app.cli.common import progress_bar
from app.config import PROJECT_ROOT
from app.db import repo
from tests.terminal import COLUMNS, GRIDMAP, Cli, Run, plain, run_with_input

pytestmark = [pytest.mark.db, pytest.mark.slow, pytest.mark.in_file_order]

BEATS = "chicago_police_beats_277.geojson"
COMMANDS = (
    "assign",
    "serve",
    "demo",
    "coverage",
    "hotspots",
    "map",
    "redesign",
    "redesign-map",
    "audit",
)
GROUPS = {
    "db": ("upgrade", "url"),
    "areas": ("import", "export"),
    "generations": ("list", "activate"),
    "incidents": ("import", "export"),
    "gazetteer": ("import",),
    "keys": ("create", "list", "revoke"),
    "users": ("create", "list", "disable", "enable", "reset-password"),
    "departments": ("import", "list"),  # run on files in tests/test_departments.py
}


@pytest.fixture(scope="module")
def demo_run(cli: Cli) -> Run:
    """``gridmap demo`` on the module's database, once (it provisions and migrates too)."""
    return cli("demo", timeout=600)


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("cli")


def level_counts(cli: Cli, label: str) -> dict[str, int]:
    """Areas per level of the generation ``label``."""
    with cli.engine.connect() as conn:
        gen = repo.get_generation(conn, label)
        assert gen is not None, label
        return repo.counts_by_level(conn, gen.id)


def located_incidents(cli: Cli) -> int:
    return cli.scalar("SELECT count(*) FROM incident WHERE location IS NOT NULL")


def active_assignments(cli: Cli) -> int:
    return cli.scalar(
        "SELECT count(*) FROM incident_assignment a JOIN generation g "
        "ON g.id = a.generation_id WHERE g.is_active"
    )


# -- progress bars ---------------------------------------------------------------------
def test_progress_bars_draw_while_the_total_is_unknown():
    """`gridmap assign` learns its total only after counting: the bar must draw before."""
    screen = Console(file=io.StringIO(), force_terminal=True, width=COLUMNS)
    bar = progress_bar()
    bar.live.console = screen
    with bar:
        task = bar.add_task("assigning", total=None)
        bar.update(task, completed=1234)
        bar.refresh()
        bar.update(task, completed=2000, total=5000)
    drawn = plain(screen.file.getvalue().encode())
    assert "assigning" in drawn and "1,234" in drawn and "2,000/5,000" in drawn


# -- help ------------------------------------------------------------------------------
def test_help_lists_every_command(cli: Cli):
    shown = cli("--help").ok().flat
    for name in (*COMMANDS, *GROUPS):
        assert re.search(rf"│ {re.escape(name)}\s", shown), name


def test_every_command_documents_its_options(cli: Cli):
    commands = [
        *COMMANDS,
        *GROUPS,
        *[f"{group} {sub}" for group, subs in GROUPS.items() for sub in subs],
    ]
    # Side by side: each is a second of start-up, most of it waiting for a core.
    with ThreadPoolExecutor(max_workers=4) as pool:
        runs = list(pool.map(lambda command: cli(*command.split(), "--help"), commands))
    for command, run in zip(commands, runs, strict=True):
        run.ok()
        assert f"Usage: gridmap {command}" in run.flat, run.output
        assert "--help" in run.flat


# -- database --------------------------------------------------------------------------
def test_db_upgrade_migrates_a_fresh_database(cli: Cli):
    assert "schema at head" in cli("db", "upgrade").ok().flat
    assert cli.scalar("SELECT count(*) FROM alembic_version") == 1


def test_db_url_hides_the_password_unless_asked(cli: Cli):
    database = cli.url.rsplit("/", 1)[1]
    masked = cli("db", "url").ok().flat
    assert ":***@" in masked and database in masked
    shown = cli("db", "url", "--show-password").ok().flat
    assert cli.url in shown.replace("\n", "")


# -- demo ------------------------------------------------------------------------------
def test_demo_loads_the_district_and_reports_what_it_stored(cli: Cli, demo_run: Run):
    demo_run.ok()
    assert "demo district 411002 — generation 'demo'" in demo_run.flat
    counts = {
        level: demo_run.number(rf"│ {level}\s+│\s+([\d,]+) │")
        for level in ("district", "street", "community", "grid", "micro_grid")
    }
    assert counts["district"] == 1 and counts["street"] == 8
    assert counts["community"] == 89 and counts["grid"] == 620
    assert level_counts(cli, "demo") == counts
    stored = demo_run.number(r"incidents stored\s+│\s+([\d,]+)")
    assert stored == cli.scalar("SELECT count(*) FROM incident") > 40_000
    assert demo_run.number(r"│ input\s+│\s+([\d,]+)") == 50_000
    assert "done in" in demo_run.flat


# -- assignment ------------------------------------------------------------------------
def assigned_by_status(run: Run) -> dict[str, int]:
    line = re.search(r"assigned [\d,]+ incidents to generation '\w+': ([^\n]*)", run.output)
    assert line, run.output
    return {
        status: int(n.replace(",", ""))
        for status, n in re.findall(r"(\w+) ([\d,]+)", line.group(1))
    }


@pytest.fixture(scope="module")
def assign_all(cli: Cli, demo_run: Run) -> Run:
    return cli("assign", "--all")


def test_assign_all_reassigns_every_located_incident(cli: Cli, assign_all: Run):
    run = assign_all.ok()
    assigned = run.number(r"assigned ([\d,]+) incidents to generation 'demo'")
    assert assigned == located_incidents(cli) == active_assignments(cli) > 40_000
    assert sum(assigned_by_status(run).values()) == assigned


def test_assign_unassigned_assigns_only_the_missing(cli: Cli, demo_run: Run):
    with cli.engine.begin() as conn:
        conn.execute(
            text(
                "DELETE FROM incident_assignment WHERE incident_id IN "
                "(SELECT id FROM incident WHERE location IS NOT NULL ORDER BY id LIMIT 123) "
                "AND generation_id = (SELECT id FROM generation WHERE is_active)"
            )
        )
    run = cli("assign", "--unassigned").ok()
    assert run.number(r"assigned ([\d,]+) incidents") == 123
    assert active_assignments(cli) == located_incidents(cli)


def test_assign_on_dask_gives_the_same_answer(cli: Cli, assign_all: Run):
    dask = cli("assign", "--all", "--engine", "dask").ok()
    assert assigned_by_status(dask) == assigned_by_status(assign_all.ok())


def test_assign_needs_exactly_one_selection(cli: Cli):
    refused = cli("assign")
    assert refused.code == 2 and "exactly one of --all or --unassigned" in refused.flat


# -- exports ---------------------------------------------------------------------------
def test_areas_export_writes_the_level(cli: Cli, demo_run: Run, files: Path):
    out = files / "grids.geojson"
    run = cli("areas", "export", "--level", "grid", "-o", out).ok()
    assert "wrote 620 grid areas of generation 'demo'" in run.flat
    assert len(json.loads(out.read_text())["features"]) == 620


def test_incidents_export_writes_every_incident(cli: Cli, demo_run: Run, files: Path):
    out = files / "incidents.csv"
    run = cli("incidents", "export", "-o", out).ok()
    stored = cli.scalar("SELECT count(*) FROM incident")
    assert run.number(r"wrote ([\d,]+) incidents") == stored
    with out.open(newline="", encoding="utf-8") as fh:
        assert sum(1 for _ in csv.DictReader(fh)) == stored


# -- imports ---------------------------------------------------------------------------
def test_gazetteer_import_stores_the_addresses(cli: Cli, demo_run: Run, files: Path):
    path = files / "doorplates.csv"
    path.write_text(
        "address,lon,lat\n魏都区测试路1号,113.8200,34.0300\n魏都区测试路3号,113.8210,34.0305\n",
        encoding="utf-8",
    )
    run = cli("gazetteer", "import", path).ok()
    assert "stored 2 addresses" in run.flat


def test_incidents_import_accounts_for_every_row(cli: Cli, demo_run: Run, files: Path):
    path = files / "reports.csv"
    path.write_text(
        "id,lon,lat,reported_at,category,address,description\n"
        "cli-1,113.8200,34.0300,2024-05-01 08:00,0101,,manhole cover missing\n"
        "cli-2,34.0300,113.8200,2024-05-01 09:00,0102,,swapped coordinates\n"
        "cli-3,,,2024-05-01 10:00,0103,魏都区测试路1号,street light out\n",
        encoding="utf-8",
    )
    before = cli.scalar("SELECT count(*) FROM incident")
    run = cli("incidents", "import", path, "--source", "patrol").ok()
    rows_in = run.number(r"│ input\s+│\s+([\d,]+)")
    stored = run.number(r"│ stored with a location\s+│\s+([\d,]+)")
    unlocated = run.number(r"│ stored unlocated\s+│\s+([\d,]+)")
    rejected = run.number(r"│ rejected\s+│\s+([\d,]+)")
    assert rows_in == 3 and stored + unlocated + rejected == 3 and stored >= 1
    assert cli.scalar("SELECT count(*) FROM incident") == before + stored + unlocated
    # A bar per step, each ending at its total: rows read, cleaned, sent to the database.
    assert run.number(r"reports\.csv 读取 read\b\D*(\d+)/3\b") == 3
    assert run.number(r"reports\.csv 清洗 cleaned\b\D*(\d+)/3\b") == 3
    assert run.number(r"reports\.csv 入库 stored\b\D*(\d+)/\d+") == stored + unlocated


def test_incidents_import_in_chunks_counts_the_whole_file(cli: Cli, demo_run: Run, files: Path):
    """Two rows at a time: a repeated id three chunks later is still a duplicate."""
    path = files / "chunked.csv"
    rows = [f"chunk-{i},113.8200,34.0300,2024-05-01 08:00,0101" for i in range(7)]
    path.write_text(
        "id,lon,lat,reported_at,category\n" + "\n".join([*rows, rows[0]]) + "\n",
        encoding="utf-8",
    )
    run = cli("incidents", "import", path, "--source", "patrol", "--chunk-rows", "2").ok()
    assert run.number(r"│ input\s+│\s+([\d,]+)") == 8
    assert run.number(r"│ rejected\s+│\s+([\d,]+)") == 1
    assert "rejected row 9: duplicate id 'chunk-0' in this file (first at row 2)" in run.flat
    # the bars move chunk by chunk and end at their totals: rows read, rows stored
    read = re.findall(r"chunked\.csv 读取 read\b\D*?(\d+)/(\d+)\b", run.flat)
    stored = re.findall(r"chunked\.csv 入库 stored\b\D*?(\d+)/(\d+)\b", run.flat)
    assert read[-1] == ("8", "8") and stored[-1] == ("7", "7")
    assert cli.scalar("SELECT count(*) FROM incident WHERE external_id LIKE 'chunk-%'") == 7


def test_incidents_import_lists_the_commonest_unlocated_reasons(
    cli: Cli, demo_run: Run, files: Path
):
    """A city's archive has thousands of unknown addresses: the terminal shows the twenty
    commonest reasons and counts the rest, every row still stored unlocated."""
    path = files / "unknown_places.csv"
    rows = [f"nowhere-{i},,,2024-05-01 08:00,0101,不存在路{i}号" for i in range(24)]
    rows += ["nowhere-24,,,2024-05-01 08:00,0101,不存在路0号"]  # the commonest, listed first
    path.write_text(
        "id,lon,lat,reported_at,category,address\n" + "\n".join(rows) + "\n", encoding="utf-8"
    )
    run = cli("incidents", "import", path, "--source", "patrol").ok()
    listed = re.findall(r"unlocated: (\d+) × no gazetteer entry for '(不存在路\d+号)'", run.flat)
    assert len(listed) == 20 and listed[0] == ("2", "不存在路0号")
    assert "… 4 more reasons for 4 rows" in run.flat
    assert run.number(r"│ stored unlocated\s+│\s+([\d,]+)") == 25
    with cli.engine.begin() as conn:  # the shared demo as the later tests count it
        conn.execute(text("DELETE FROM incident WHERE external_id LIKE 'nowhere-%'"))


def test_areas_import_refuses_chicago_beats_naming_every_problem(
    cli: Cli, demo_run: Run, chicago_dir: Path, files: Path
):
    report = files / "problems.json"
    refused = cli(
        "areas",
        "import",
        chicago_dir / BEATS,
        "--level",
        "grid",
        "--code-field",
        "beat_num",
        "--report",
        report,
    )
    assert refused.code == 1, refused.output
    problems = json.loads(report.read_text())
    assert problems
    assert f"{BEATS}: refused, nothing stored ({len(problems)} problems" in refused.flat
    assert "duplicated codes:" in refused.flat
    assert cli.scalar("SELECT count(*) FROM generation WHERE label <> 'demo'") == 0


def test_areas_import_loads_chicago_beats_with_generated_codes(
    cli: Cli, demo_run: Run, chicago_dir: Path
):
    run = cli(
        "areas",
        "import",
        chicago_dir / BEATS,
        "--level",
        "grid",
        "--generation",
        "chicago",
        "--parent-code",
        "999999001001",
    ).ok()
    assert "stored 277 grid areas" in run.flat
    assert "into generation 'chicago' (new generation)" in run.flat
    assert level_counts(cli, "chicago") == {"grid": 277}


# -- analysis and maps -----------------------------------------------------------------
def test_coverage_of_the_clean_demo_finds_no_defects(cli: Cli, demo_run: Run):
    run = cli("coverage", "--strict").ok()
    assert "coverage of generation 'demo'" in run.flat
    assert "no defects: full coverage" in run.flat


def test_hotspots_counts_the_selected_incidents(cli: Cli, demo_run: Run, files: Path):
    out = files / "hotspots.geojson"
    run = cli("hotspots", "--permutations", "99", "-o", out).ok()
    selected = run.number(r": ([\d,]+) incidents, [\d,]+ outside every grid")
    assert selected == cli.scalar("SELECT count(*) FROM incident WHERE location IS NOT NULL")
    assert "confidence bins" in run.flat and "wrote 620 grids" in run.flat
    assert len(json.loads(out.read_text())["features"]) == 620


def test_map_writes_a_standalone_page(cli: Cli, demo_run: Run, files: Path):
    out = files / "map.html"
    run = cli("map", "-o", out).ok()
    assert "it loads nothing from any network" in run.flat
    page = out.read_text(encoding="utf-8")
    assert "leaflet" in page.lower() and "<html" in page.lower()


# -- keys ------------------------------------------------------------------------------
def test_keys_are_created_listed_and_revoked(cli: Cli, demo_run: Run):
    created = cli("keys", "create", "--role", "admin", "--name", "cli test").ok()
    key = re.search(r"\b(gm_\S+)", created.flat)
    assert key and "role admin" in created.flat
    key_id = cli.scalar("SELECT max(id) FROM api_key")
    listed = cli("keys", "list").ok().flat
    assert key.group(1)[:9] in listed and "admin" in listed and "cli test" in listed
    assert f"key {key_id} revoked" in cli("keys", "revoke", str(key_id)).ok().flat
    assert cli.scalar("SELECT count(*) FROM api_key WHERE revoked_at IS NOT NULL") == 1


def test_keys_refuse_an_unknown_role(cli: Cli):
    refused = cli("keys", "create", "--role", "root")
    assert refused.code == 2 and "viewer, operator, admin" in refused.flat


def test_keys_and_users_carry_an_area_scope(cli: Cli, demo_run: Run):
    """The README's `keys create --role R --area CODE` and `users create NAME --role R --area`;
    the other user commands are run in tests/test_users_cli.py."""
    with cli.engine.connect() as conn:
        street = conn.execute(text("SELECT min(code) FROM area WHERE level = 'street'")).scalar()
    created = cli("keys", "create", "--role", "viewer", "--area", street, "--name", "street").ok()
    assert f"role viewer, area {street}" in created.flat
    assert street in cli("keys", "list").ok().flat
    unknown = cli("keys", "create", "--role", "viewer", "--area", f"{street}999")
    assert unknown.code == 2 and "no area" in unknown.flat
    args = ("users", "create", "zhao.lei", "--role", "operator", "--area", street)
    user = run_with_input(cli, (*args, "--password-stdin"), stdin_text="street password\n")
    assert f"user zhao.lei created: role operator, area {street}" in user.ok().flat
    listed = cli("users", "list").ok().flat
    assert "zhao.lei" in listed and street in listed
    assert "key.create" in cli("audit", "--since", "2026-01-01", "--action", "key.create").ok().flat
    scoped = "SELECT count(*) FROM audit_log WHERE action = 'key.create' AND detail->>'area' = :a"
    assert cli.scalar(scoped, a=street) == 1


# -- redesign and generations ----------------------------------------------------------
@pytest.fixture(scope="module")
def plan(cli: Cli, demo_run: Run) -> str:
    """``gridmap redesign --target 539`` on the demo: the label of the stored plan."""
    run = cli("redesign", "--target", "539").ok()
    assert "merge plan, 620 → 539 grids" in run.flat
    found = re.search(r"stored as inactive generation (\S+) with ([\d,]+) lineage rows", run.flat)
    assert found, run.output
    return found.group(1)


def test_redesign_stores_an_inactive_plan(cli: Cli, plan: str):
    assert level_counts(cli, plan)["grid"] == 539
    with cli.engine.connect() as conn:
        stored = repo.get_generation(conn, plan)
    assert stored is not None and not stored.is_active


def test_redesign_map_writes_before_and_after(cli: Cli, plan: str, files: Path):
    out = files / "plan.html"
    run = cli("redesign-map", plan, "-o", out).ok()
    assert "assets inlined: works offline" in run.flat
    assert "changed grids" in out.read_text(encoding="utf-8")


def test_generations_list_shows_every_generation(cli: Cli, plan: str):
    listed = cli("generations", "list").ok()
    with cli.engine.connect() as conn:
        stored = [gen.label for gen in repo.list_generations(conn)]
    assert {"demo", plan} <= set(stored)  # and "chicago" when the real data was there
    for label in stored:
        assert label in listed.flat
    assert re.search(r"│\s*\d+\s*│ demo\s*│ ✔", listed.flat), listed.output
    # A redesign plan's note is summarised: its mode and the generation it redesigns.
    assert re.search(rf"│ {re.escape(plan)}\s*│[^\n]*│ merge", listed.output), listed.output


def test_generations_activate_reassigns_every_incident(cli: Cli, plan: str):
    run = cli("generations", "activate", plan).ok()
    assert run.number(rf"generation '{re.escape(plan)}' is active; ([\d,]+) incidents") == (
        located_incidents(cli)
    )
    assert active_assignments(cli) == located_incidents(cli)


# -- serving ---------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def get(url: str, timeout: float = 120) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def wait_until_up(url: str, proc: subprocess.Popen, log: Path, seconds: float = 240) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"exited {proc.returncode} before answering:\n{log.read_text()}")
        try:
            if get(url, timeout=5)[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.5)
    pytest.fail(f"{url} did not answer in {seconds} s:\n{log.read_text()}")


def stop(proc: subprocess.Popen) -> None:
    """Stop the process group the way Ctrl-C does, then harder if it lingers."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@pytest.fixture
def launch(files: Path) -> Iterator:
    started: list[subprocess.Popen] = []

    def start(args: list[str], env: dict[str, str], name: str) -> tuple[subprocess.Popen, Path]:
        log = files / f"{name}.log"
        proc = subprocess.Popen(
            args,
            env=env,
            cwd=PROJECT_ROOT,
            stdin=subprocess.DEVNULL,
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        started.append(proc)
        return proc, log

    yield start
    for proc in started:
        stop(proc)


def test_serve_answers_health_and_map(cli: Cli, demo_run: Run, launch):
    port = free_port()
    proc, log = launch([str(GRIDMAP), "serve", "--port", str(port)], cli.env, "serve")
    base = f"http://127.0.0.1:{port}"
    wait_until_up(f"{base}/health", proc, log)
    status, page = get(f"{base}/map")
    assert status == 200 and b"leaflet" in page.lower()
    stop(proc)
    assert f"gridmap on {base}/" in plain(log.read_bytes())


def test_demo_script_loads_and_serves_the_map(cli: Cli, demo_run: Run, launch):
    """``./scripts/demo.sh`` with the README's ``--seed 411002`` (the default) for ``gridmap demo``:
    the demo is found loaded (and made the active generation again), then served."""
    port = free_port()
    env = {**cli.env, "GRIDMAP_PORT": str(port)}
    script = str(PROJECT_ROOT / "scripts" / "demo.sh")
    proc, log = launch([script, "--seed", "411002"], env, "demo_sh")
    wait_until_up(f"http://127.0.0.1:{port}/map", proc, log, seconds=400)
    stop(proc)
    assert "generation 'demo' (already loaded)" in " ".join(plain(log.read_bytes()).split())


# -- last: replace the demo with one that has defects ----------------------------------
def test_demo_reload_with_defects_fails_the_strict_coverage(cli: Cli, demo_run: Run):
    reloaded = cli("demo", "--reload", "--defects", "--incidents", "1000", timeout=600).ok()
    assert "(already loaded)" not in reloaded.flat
    assert reloaded.number(r"│ input\s+│\s+([\d,]+)") == 1_000
    assert cli.scalar("SELECT count(*) FROM incident") == reloaded.number(
        r"incidents stored\s+│\s+([\d,]+)"
    )
    strict = cli("coverage", "--strict")
    assert strict.code == 1, strict.output
    assert "gap" in strict.flat and "overlap" in strict.flat
