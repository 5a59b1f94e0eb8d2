"""Time the operations console at city scale against the same figures written in SQL.

With the full city loaded (``gridmap demo --city --preset full``: 1,000,000 incidents),
one ``gridmap serve`` on loopback and, in the same run, one psycopg connection:

1. ``GET /console`` (the queue: the first page by deadline, with counts per status),
   signed in as an operator scoped to one street and as an unscoped one, unfiltered and
   with ``?overdue=true``. Target: median ≤ 300 ms.
2. ``GET /console/assessment`` for the last twelve months at the street, community,
   grid and worker level. Target: median ≤ 1 s.

The assessment reads the monthly rollup (migration 0012): the untimed first request of
each level counts whatever months are not stored yet, so the timed ones read stored months
and count the month under way live, as a deployed page does between changes.
``--change incident`` changes one incident of the last full month before each request (as
a transition through the API does): the page counts that incident's grid again and
patches the stored month. ``--change month`` marks that whole month changed (as a bulk
write does): the page counts the month again.

Each page is timed beside its hand-written SQL: the queries that give what the page
shows (the queue: counts per status and overdue, the first 50 incidents by deadline
with their grid and location, the departments; the assessment: the rows' names, then
in one pass grouped by row and month — received, handled per level, overdue, on time,
per source, per major class — added up per row and per month, and the median hours to
close over the closed incidents), run one after the other on one connection. Pages
and SQL alternate, so both see the same machine load. A page's time is the client's:
request sent to response read on a keep-alive loopback connection (the server's whole
work; the loopback adds well under a millisecond).

The users the script signs in as are created with ``gridmap users create`` and deleted
at the end (their sessions with them).

Examples
--------
    GRIDMAP_DATABASE_NAME=gridmap_city .venv/bin/python benchmarks/bench_console.py
    .venv/bin/python benchmarks/bench_console.py --repeats 5 --levels street
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import date, datetime, timedelta
from datetime import time as day_time
from pathlib import Path

import httpx
import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gis.vocabulary import LOCAL_TIMEZONE, LOCAL_TZ, OPEN_STATUSES  # noqa: E402

QUEUE_TARGET_MS, ASSESSMENT_TARGET_MS = 300.0, 1000.0
QUEUE_PAGE = 50
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
OPEN = tuple(OPEN_STATUSES)


# -- the hand-written SQL ----------------------------------------------------------------
def queue_sql(cur: psycopg.Cursor, generation: int, scope: str | None, overdue: bool) -> int:
    """What the queue page shows, in SQL: counts per status (and overdue), the first page
    by deadline with its grid and location, the departments. Returns the rows listed."""
    where, params = ["true"], {"gen": generation, "open": list(OPEN)}
    if scope is not None:  # codes are digits: the scope is a range of codes
        where.append("a.grid_code >= %(lo)s AND a.grid_code < %(hi)s")
        params |= {"lo": scope, "hi": scope + ":"}
    if overdue:
        where.append("i.status = ANY(%(open)s) AND i.deadline_at < now()")
    condition = " AND ".join(where)
    cur.execute(
        "SELECT i.status, count(*), "
        " count(*) FILTER (WHERE i.status = ANY(%(open)s) AND i.deadline_at < now()) "
        "FROM incident i LEFT JOIN incident_assignment a "
        " ON a.incident_id = i.id AND a.generation_id = %(gen)s "
        f"WHERE {condition} GROUP BY i.status",
        params,
    )
    cur.fetchall()
    cur.execute(
        "SELECT i.id, i.source, i.external_id, i.category, i.description, i.address, "
        " i.reported_at, i.status, i.handling_level, i.handled_at, i.closed_at, "
        " i.location_status, i.assignee_name, i.department_code, i.deadline_at, i.version, "
        " a.street_code, a.community_code, a.grid_code, a.assign_status, "
        " ST_X(i.location), ST_Y(i.location) "
        "FROM incident i LEFT JOIN incident_assignment a "
        " ON a.incident_id = i.id AND a.generation_id = %(gen)s "
        f"WHERE {condition} ORDER BY i.deadline_at NULLS LAST, i.id LIMIT {QUEUE_PAGE}",
        params,
    )
    listed = len(cur.fetchall())
    cur.execute("SELECT code, name FROM department ORDER BY code")
    cur.fetchall()
    return listed


def assessment_sql(
    cur: psycopg.Cursor, generation: int, level: str, start: datetime, end: datetime
) -> int:
    """The assessment's figures in SQL for [start, end): per row of ``level`` (received,
    handled per level, overdue, on time, per source, per major class), per month the same,
    and the median hours to close per row, overall and per month. One pass over the
    incidents grouped by (row, month), added up per row and per month; the medians over
    the closed incidents. Returns the number of rows with incidents."""
    if level == "worker":
        key = "s.id::text"
        join = "LEFT JOIN staff s ON s.id = i.assignee_staff_id AND s.generation_id = %(gen)s"
        names = "SELECT id::text, name, area_code FROM staff WHERE generation_id = %(gen)s"
    else:
        key, join = f"a.{level}_code", ""
        names = (
            "SELECT code, name FROM area WHERE level = %(level)s "
            "AND generation_low <= %(gen)s AND generation_high >= %(gen)s"
        )
    params = {"gen": generation, "level": level, "start": start, "end": end, "open": list(OPEN)}
    cur.execute("SET jit = off")  # as gridmap's counts run (JIT cost more than it saved)
    cur.execute(names, params)
    cur.fetchall()
    cur.execute("SELECT DISTINCT source FROM incident")  # the report's source columns
    sources = [s for (s,) in cur.fetchall()]
    cur.execute(
        "SELECT DISTINCT major_code FROM taxonomy_item "
        "WHERE version_id = (SELECT max(id) FROM taxonomy_version)"
    )
    majors = [m for (m,) in cur.fetchall()]
    by_source = "".join(
        f", count(*) FILTER (WHERE i.source = %(s{k})s) AS s{k}" for k in range(len(sources))
    )
    by_class = "".join(
        f", count(*) FILTER (WHERE t.major_code = %(m{k})s) AS m{k}" for k in range(len(majors))
    )
    params |= {f"s{k}": s for k, s in enumerate(sources)}
    params |= {f"m{k}": m for k, m in enumerate(majors)}
    due = "coalesce(i.deadline_at, i.reported_at + make_interval(hours => t.deadline_hours))"
    month = f"to_char(timezone('{LOCAL_TIMEZONE}', i.reported_at), 'YYYY-MM')"
    joined = (
        "FROM incident i JOIN incident_assignment a "
        " ON a.incident_id = i.id AND a.generation_id = %(gen)s "
        "LEFT JOIN taxonomy_item t ON t.code = i.category "
        " AND t.version_id = (SELECT max(id) FROM taxonomy_version) "
        f"{join} WHERE i.reported_at >= %(start)s AND i.reported_at < %(end)s"
    )
    counted = ["n", "g", "c", "st", "late", "ok"] + [f"s{k}" for k in range(len(sources))]
    counted += [f"m{k}" for k in range(len(majors))]
    sums = ", ".join(f"sum({c})" for c in counted)
    cur.execute(
        f"WITH fine AS (SELECT {key} AS k, {month} AS month, count(*) AS n, "
        " count(*) FILTER (WHERE i.handling_level = 'grid') AS g, "
        " count(*) FILTER (WHERE i.handling_level = 'community') AS c, "
        " count(*) FILTER (WHERE i.handling_level = 'street') AS st, "
        f" count(*) FILTER (WHERE (i.status = ANY(%(open)s) AND {due} < now()) "
        f"  OR i.handled_at > {due}) AS late, "
        f" count(*) FILTER (WHERE i.handled_at <= {due}) AS ok"
        f" {by_source}{by_class} {joined} GROUP BY 1, 2) "
        f"SELECT k, NULL, {sums} FROM fine WHERE k IS NOT NULL GROUP BY k "
        f"UNION ALL SELECT NULL, month, {sums} FROM fine GROUP BY month",
        params,
    )
    rows = sum(1 for k, _, *_ in cur.fetchall() if k is not None)
    hours = "extract(epoch FROM i.closed_at - i.reported_at) / 3600"
    cur.execute(
        f"SELECT {key}, {month}, percentile_cont(0.5) WITHIN GROUP (ORDER BY {hours}) "
        f"{joined} AND i.closed_at IS NOT NULL GROUP BY GROUPING SETS (({key}), ({month}), ())",
        params,
    )
    cur.fetchall()
    cur.execute("RESET jit")
    return rows


def changer(cur: psycopg.Cursor, change: str | None, month: date) -> Callable[[], None]:
    """What runs before each assessment request. ``incident``: one closed incident of
    ``month`` moves between handled in the grid and passed up to the community, and back
    (a transition through the API changes as much: the triggers of migration 0012 mark its
    grid). ``month``: the whole month marked changed, as a bulk write marks it."""
    if change == "month":

        def mark() -> None:
            cur.execute("INSERT INTO assessment_stale (month) VALUES (%s)", (month,))

        return mark
    if change != "incident":
        return lambda: None
    start = datetime.combine(month, day_time(), LOCAL_TZ)
    cur.execute(
        "SELECT min(id) FROM incident WHERE status = 'closed' AND handling_level = 'grid' "
        "AND reported_at >= %s AND reported_at < %s",
        (start, start + timedelta(days=28)),
    )
    incident = cur.fetchone()[0]

    def flip() -> None:
        cur.execute(
            "UPDATE incident SET handling_level = CASE handling_level WHEN 'grid' "
            "THEN 'community' ELSE 'grid' END WHERE id = %s",
            (incident,),
        )

    return flip


# -- the server and its users ------------------------------------------------------------
def gridmap_command() -> list[str]:
    gridmap = Path(sys.executable).with_name("gridmap")
    if gridmap.exists():
        return [str(gridmap)]
    return [sys.executable, "-c", "from app.cli import main; main()"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(port: int) -> subprocess.Popen:
    env = {**os.environ, "GRIDMAP_INDEX_REFRESH_SECONDS": "0"}
    command = [*gridmap_command(), "serve", "--host", "127.0.0.1", "--port", str(port)]
    server = subprocess.Popen(command, cwd=ROOT, env=env)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"gridmap serve exited with {server.returncode}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=5).status_code == 200:
                return server
        except httpx.HTTPError:
            time.sleep(0.5)
    server.terminate()
    raise SystemExit("gridmap serve did not come up within 300 s")


def create_user(name: str, password: str, area: str | None) -> None:
    scope = ["--area", area] if area else []
    subprocess.run(
        [*gridmap_command(), "users", "create", name, "--role", "operator", *scope]
        + ["--password-stdin"],
        input=password + "\n",
        text=True,
        check=True,
        cwd=ROOT,
        capture_output=True,
    )


def sign_in(base: str, name: str, password: str) -> httpx.Client:
    client = httpx.Client(base_url=base, follow_redirects=False, timeout=600)
    token = _CSRF.search(client.get("/login").text)
    if token is None:
        raise SystemExit("the sign-in page has no CSRF token")
    done = client.post(
        "/login",
        data={"username": name, "password": password, "csrf_token": token.group(1)},
    )
    if done.status_code != 303:
        raise SystemExit(f"signing in as {name} answered {done.status_code}")
    return client


# -- timing ------------------------------------------------------------------------------
def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def timed(run: Callable[[], object]) -> float:
    begin = time.perf_counter()
    run()
    return (time.perf_counter() - begin) * 1000


def page(client: httpx.Client, path: str) -> Callable[[], None]:
    def get() -> None:
        answer = client.get(path)
        if answer.status_code != 200:
            raise SystemExit(f"GET {path} answered {answer.status_code}: {answer.text[:300]}")

    return get


def compare(
    name: str,
    get: Callable[[], None],
    sql: Callable[[], object],
    repeats: int,
    target: float,
    before: Callable[[], object] = lambda: None,
) -> dict:
    """Median and p95 of the page and of its SQL, alternating; ``before`` runs (untimed)
    before each page request."""
    before(), get(), sql()  # warm: the first request of a kind builds caches, plans, templates
    pages, sqls = [], []
    for k in range(repeats):
        pair = [("page", get), ("sql", sql)]
        for kind, run in pair if k % 2 == 0 else pair[::-1]:
            if kind == "page":
                before()
            (pages if kind == "page" else sqls).append(timed(run))
    row = {
        "name": name,
        "page_median": statistics.median(pages),
        "page_p95": p95(pages),
        "sql_median": statistics.median(sqls),
        "sql_p95": p95(sqls),
        "target": target,
    }
    row["ratio"] = row["page_median"] / row["sql_median"]
    print(
        f"{name:46s} page {row['page_median']:8.1f} / {row['page_p95']:8.1f} ms   "
        f"SQL {row['sql_median']:8.1f} / {row['sql_p95']:8.1f} ms   "
        f"x{row['ratio']:5.2f}   target <= {target:.0f} ms: "
        f"{'ok' if row['page_median'] <= target else 'MISSED'}",
        flush=True,
    )
    return row


# -- the run -----------------------------------------------------------------------------
def database_url() -> str:
    from app.config import Settings
    from app.db.provision import ensure_database

    url = ensure_database(Settings(), migrate=False)
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


def city(cur: psycopg.Cursor) -> tuple[int, str, int]:
    """(active generation, the street with most incidents, incidents stored)."""
    cur.execute("SELECT id FROM generation WHERE is_active")
    found = cur.fetchone()
    if found is None:
        raise SystemExit("no active generation: run `gridmap demo --city --preset full`")
    generation = found[0]
    cur.execute(
        "SELECT street_code FROM incident_assignment WHERE generation_id = %s "
        "AND street_code IS NOT NULL GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1",
        (generation,),
    )
    street = cur.fetchone()[0]
    cur.execute("SELECT count(*) FROM incident")
    return generation, street, cur.fetchone()[0]


def twelve_months(today: date) -> tuple[date, date]:
    """The first day of the month eleven months before ``today``'s, and ``today``."""
    first = today.replace(day=1)
    for _ in range(11):
        first = (first - timedelta(days=1)).replace(day=1)
    return first, today


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=15, help="timed requests per page")
    parser.add_argument(
        "--levels", default="street,community,grid,worker", help="assessment levels"
    )
    parser.add_argument("--skip-queue", action="store_true")
    parser.add_argument("--skip-assessment", action="store_true")
    parser.add_argument(
        "--change",
        choices=["incident", "month"],
        help="before each assessment request, change one incident of the last full month "
        "(the page counts its grid again) or mark that whole month changed, as a bulk "
        "write does (the page counts the month again)",
    )
    args = parser.parse_args()

    url = database_url()
    conn = psycopg.connect(url, autocommit=True)
    cur = conn.cursor()
    generation, street, stored = city(cur)
    print(f"{stored:,} incidents stored; street scope {street}; {args.repeats} repeats")
    tag = secrets.token_hex(3)
    users = {
        "street": (f"bench-console-street-{tag}", secrets.token_urlsafe(16), street),
        "all": (f"bench-console-all-{tag}", secrets.token_urlsafe(16), None),
    }
    for name, password, area in users.values():
        create_user(name, password, area)
    port = free_port()
    server = start_server(port)
    results = []
    try:
        base = f"http://127.0.0.1:{port}"
        browsers = {k: sign_in(base, name, pw) for k, (name, pw, _) in users.items()}
        if not args.skip_queue:
            for who, scope in (("street", street), ("all", None)):
                for query, overdue in (("", False), ("?overdue=true", True)):
                    results.append(
                        compare(
                            f"/console{query} ({who})",
                            page(browsers[who], f"/console{query}"),
                            lambda s=scope, o=overdue: queue_sql(cur, generation, s, o),
                            args.repeats,
                            QUEUE_TARGET_MS,
                        )
                    )
        if not args.skip_assessment:
            first, last = twelve_months(datetime.now(LOCAL_TZ).date())
            start = datetime.combine(first, day_time(), LOCAL_TZ)
            end = datetime.combine(last + timedelta(days=1), day_time(), LOCAL_TZ)
            month = (last.replace(day=1) - timedelta(days=1)).replace(day=1)
            change = changer(cur, args.change, month)
            for level in args.levels.split(","):
                path = f"/console/assessment?start={first}&end={last}&level={level}"
                results.append(
                    compare(
                        f"/console/assessment {level} (all)"
                        + (f" +{args.change} changed" if args.change else ""),
                        page(browsers["all"], path),
                        lambda lv=level: assessment_sql(cur, generation, lv, start, end),
                        args.repeats,
                        ASSESSMENT_TARGET_MS,
                        before=change,
                    )
                )
    finally:
        server.terminate()
        server.wait(timeout=30)
        cur.execute(
            "DELETE FROM app_user WHERE username = ANY(%s)",
            ([name for name, _, _ in users.values()],),
        )
        conn.close()
    print("median / p95 in ms; x = page median / SQL median")


if __name__ == "__main__":
    main()
