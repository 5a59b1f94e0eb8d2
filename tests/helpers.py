"""Plain helpers of the tests (the fixtures live in ``tests/conftest.py``).

Not a test module: pytest collects nothing here, so importing it runs no test twice.
"""

from __future__ import annotations

import functools
import graphlib
import os
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg import sql
from sqlalchemy import Connection, Engine, text

from app.config import PROJECT_ROOT, ApiSettings, Settings

if TYPE_CHECKING:
    import geopandas as gpd
    from fastapi.testclient import TestClient

    from gis.demo import DemoDistrict

# Parallel runs on one machine each set their own name (GRIDMAP_TEST_DB_NAME=gridmap_test_a).
TEST_DB = os.environ.get("GRIDMAP_TEST_DB_NAME", "gridmap_test")

# Every table the migrations create in ``public``, except Alembic's own and those of
# extensions (PostGIS' spatial_ref_sys): read from the catalogue, never listed by hand,
# so a new migration's table is emptied too.
_GRIDMAP_TABLES = text(
    "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
    "WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') "
    "AND c.relname <> 'alembic_version' "
    "AND NOT EXISTS (SELECT 1 FROM pg_depend d "
    "WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e') "
    "ORDER BY c.relname"
)
# Pairs (table, table it references) of the foreign keys in ``public``.
_REFERENCES = text(
    "SELECT child.relname, parent.relname FROM pg_constraint k "
    "JOIN pg_class child ON child.oid = k.conrelid "
    "JOIN pg_class parent ON parent.oid = k.confrelid "
    "WHERE k.contype = 'f' AND k.connamespace = 'public'::regnamespace"
)
# Rows some migrations insert (the taxonomy they seed) are part of an empty database:
# ``keep_seed`` copies them here once, ``empty_tables`` puts them back.
SEED_SCHEMA = "test_seed"
_SEEDED = text(
    "SELECT table_name FROM information_schema.tables WHERE table_schema = :schema"
).bindparams(schema=SEED_SCHEMA)


def gridmap_tables(conn: Connection) -> list[str]:
    """Names of the gridmap tables of the database behind ``conn``."""
    return list(conn.execute(_GRIDMAP_TABLES).scalars())


#: Logs every request may add to (each API write is audited): not counted as left-over rows.
APPEND_ONLY = frozenset({"audit_log"})
#: What the database derives from the rest and keeps for itself: the assessment's monthly
#: rollup, which a read of the statistics fills and any write to the incidents marks
#: stale (migrations 0012, 0013), and the counts per status its triggers keep (0014).
#: Not data a test leaves behind.
DERIVED = frozenset({"assessment_month", "assessment_stale", "incident_count"})


def row_counts(engine: Engine) -> dict[str, int]:
    """Rows in each gridmap table but the append-only logs and the derived tables."""
    with engine.connect() as conn:
        return {
            name: conn.execute(text(f'SELECT count(*) FROM "{name}"')).scalar_one()
            for name in gridmap_tables(conn)
            if name not in APPEND_ONLY | DERIVED
        }


def keep_seed(engine: Engine) -> dict[str, int]:
    """Copy the rows the migrations inserted aside; the row counts of the migrated database."""
    counts = row_counts(engine)
    with engine.begin() as conn:
        conn.execute(text(f"DROP SCHEMA IF EXISTS {SEED_SCHEMA} CASCADE"))
        conn.execute(text(f"CREATE SCHEMA {SEED_SCHEMA}"))
        for name in (name for name, rows in counts.items() if rows):
            conn.execute(text(f'CREATE TABLE {SEED_SCHEMA}."{name}" AS TABLE public."{name}"'))
    return counts


def empty_tables(engine: Engine) -> None:
    """Put every gridmap table back as the migrations left it (for tests whose code commits).

    Every table is emptied and its ids restarted; the rows ``keep_seed`` copied aside go
    back in, referenced tables first, with their id sequences moved past them.
    """
    with engine.begin() as conn:
        tables = ", ".join(f'"{name}"' for name in gridmap_tables(conn))
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
        for name in _parents_first(conn, set(conn.execute(_SEEDED).scalars())):
            conn.execute(
                text(
                    f'INSERT INTO public."{name}" OVERRIDING SYSTEM VALUE '
                    f'SELECT * FROM {SEED_SCHEMA}."{name}"'
                )
            )
            _move_sequences_past_rows(conn, name)


def _parents_first(conn: Connection, names: set[str]) -> list[str]:
    order = graphlib.TopologicalSorter[str]({name: set() for name in names})
    for child, parent in conn.execute(_REFERENCES):
        if child in names and parent in names and child != parent:
            order.add(child, parent)
    return list(order.static_order())


def _move_sequences_past_rows(conn: Connection, name: str) -> None:
    columns = conn.execute(
        text(
            "SELECT column_name, pg_get_serial_sequence(:qualified, column_name) "
            "FROM information_schema.columns WHERE table_schema = 'public' AND table_name = :t"
        ),
        {"qualified": f'public."{name}"', "t": name},
    ).all()
    for column, sequence in columns:
        if sequence:
            conn.execute(
                text(f'SELECT setval(:s, COALESCE(max("{column}"), 0) + 1, false) FROM "{name}"'),
                {"s": sequence},
            )


def fresh_embedded_database(name: str = TEST_DB) -> str:
    """URL of database ``name`` of the embedded cluster, dropped and created anew."""
    from app.db.embedded import EmbeddedPostgres

    cluster = EmbeddedPostgres(PROJECT_ROOT / "var" / "pg")
    admin = cluster.ensure("postgres").replace("postgresql+psycopg", "postgresql")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
    return cluster.ensure(name)


def engine_url(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=False)


def make_client(engine: Engine, **api: Any) -> TestClient:
    """A TestClient (not yet entered) of a new app on ``engine``'s database.

    The lookup index is built at startup and never polled (``index_refresh_seconds=0``),
    so no background thread runs beside the test.
    """
    # Imported here: conftest imports these helpers in every session, pure ones too.
    from fastapi.testclient import TestClient

    from app.main import create_app

    api_settings = ApiSettings(index_refresh_seconds=0, **api)
    return TestClient(create_app(Settings(database_url=engine_url(engine), api=api_settings)))


def demo_point(demo, code: str) -> tuple[float, float]:
    """A WGS84 point well inside the demo grid ``code``."""
    grid = demo.grids.set_index("code").loc[code, "geometry"]
    point = grid.representative_point()
    return float(point.x), float(point.y)


def small_district(demo, communities: list[str]) -> dict[str, gpd.GeoDataFrame]:
    """The demo's areas restricted to some communities, with their street and district."""
    streets = {code[:9] for code in communities}
    return {
        "district": demo.district,
        "street": demo.streets[demo.streets["code"].isin(streets)],
        "community": demo.communities[demo.communities["code"].isin(communities)],
        "grid": demo.grids[demo.grids["parent_code"].isin(communities)],
        "micro_grid": demo.micro_grids[demo.micro_grids["code"].str[:12].isin(communities)],
    }


def load_generation(engine: Engine, label: str, frames: dict[str, gpd.GeoDataFrame]) -> None:
    """Store ``frames`` (level → areas) as generation ``label``."""
    from app.services.area_import import import_areas_on

    with engine.begin() as conn:
        for level, frame in frames.items():
            import_areas_on(
                conn,
                frame,
                level,
                source=f"api-test {label}",
                generation=label,
                replace=True,
                code_field="code",
                parent_field="parent_code" if level != "district" else None,
                name_field="name",
                kind_field="kind",
            )


#: The smallest PNG (1×1 pixel): a photo for upload tests.
PNG_1X1 = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x02\x00\x00\x00"
    b"\x90wS\xde\x00\x00\x00\x0cIDATx\x9cc8\x11 \x02\x00\x03\x10\x01-t\xfdg\xa7\x00\x00\x00\x00"
    b"IEND\xaeB`\x82"
)


def run_sql(engine: Engine, sql: str) -> None:
    """Run one statement of a test's own in a transaction (fixture set-up, not app code)."""
    with engine.begin() as conn:
        conn.execute(text(sql))


def dispatch_to_grid_staff(engine: Engine) -> None:
    """Two in three incidents (by id) dispatched to the first staff member of their grid
    under the active generation: the assessment's worker rows."""
    run_sql(
        engine,
        "UPDATE incident i SET assignee_staff_id = s.id, assignee_name = s.name FROM ("
        " SELECT DISTINCT ON (a.incident_id) a.incident_id, st.id, st.name"
        " FROM incident_assignment a JOIN generation g ON g.id = a.generation_id AND g.is_active"
        " JOIN staff st ON st.generation_id = a.generation_id"
        "  AND left(st.area_code, length(a.grid_code)) = a.grid_code"
        " ORDER BY a.incident_id, st.id) s WHERE s.incident_id = i.id AND i.id % 3 <> 0",
    )


@functools.cache
def demo_district(defects: bool = False) -> DemoDistrict:
    """The demo, built once per test session (the coverage and hot-spot tests share it).

    A build takes 5-15 s; the cache keeps it to one per variant. Tests only
    read it. The flawed variant has no incidents: its checks need none.
    """
    from gis.demo import build_demo

    return build_demo(defects=defects, n_incidents=0 if defects else 50_000)
