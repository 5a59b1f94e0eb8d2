"""Plain helpers of the tests (the fixtures live in ``tests/conftest.py``).

Not a test module: pytest collects nothing here, so importing it runs no test twice.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg import sql
from sqlalchemy import Connection, Engine, text

from app.config import PROJECT_ROOT, ApiSettings, Settings

if TYPE_CHECKING:
    import geopandas as gpd
    from fastapi.testclient import TestClient

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


def gridmap_tables(conn: Connection) -> list[str]:
    """Names of the gridmap tables of the database behind ``conn``."""
    return list(conn.execute(_GRIDMAP_TABLES).scalars())


def row_counts(engine: Engine) -> dict[str, int]:
    """Rows in each gridmap table."""
    with engine.connect() as conn:
        return {
            name: conn.execute(text(f'SELECT count(*) FROM "{name}"')).scalar_one()
            for name in gridmap_tables(conn)
        }


def empty_tables(engine: Engine) -> None:
    """Empty every gridmap table and restart their ids (for tests whose code commits)."""
    with engine.begin() as conn:
        tables = ", ".join(f'"{name}"' for name in gridmap_tables(conn))
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))


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
