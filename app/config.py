"""Settings, read from the environment (or a ``.env`` file): one :class:`Settings`, built once.

:class:`Settings` holds the database settings and carries the API's
(:class:`ApiSettings`, prefix ``GRIDMAP_``) and the map pages' (:class:`MapSettings`,
prefix ``GRIDMAP_MAP_``). ``create_app`` and the CLI build one and hand down the
part each layer needs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class ApiSettings(BaseSettings):
    """How the HTTP API behaves (``GRIDMAP_`` prefix): limits, CORS, refresh of the index."""

    model_config = SettingsConfigDict(env_prefix="GRIDMAP_", env_file=".env", extra="ignore")

    public_boundaries: bool = Field(
        default=True,
        description="Serve boundaries, lookups, grids and generations without an API key. "
        "Incidents always need a key.",
    )
    public_map: Literal["off", "boundaries"] = Field(
        default="boundaries",
        description="What anonymous visitors get of the map pages: `boundaries` (areas, codes, "
        "names and the published grid information; no incident-derived layer) or `off` "
        "(redirected to /login). Signed-in users and API keys get incidents within their scope.",
    )
    public_staff: Literal["none", "roles", "names"] = Field(
        default="names",
        description="Staff shown to anonymous callers (/lookup, /grids/{code}, map pages): "
        "`names` (name and role: the grid-information notice), `roles` (roles only) or "
        "`none`. Phone numbers only ever go to signed-in users and keys within scope.",
    )
    cors_origins: list[str] = Field(
        default_factory=list,
        description='Origins allowed by CORS, as JSON: ["https://intranet.example"]; '
        "empty: no CORS headers.",
    )
    max_body_bytes: int = Field(
        default=16 * 1024 * 1024,
        ge=1024,
        description="Largest request body accepted (bytes); larger ones get 413.",
    )
    max_lookup_points: int = Field(
        default=100_000, ge=1, description="Most points in one POST /lookup."
    )
    max_tolerance_m: float = Field(
        default=500.0, gt=0, description="Largest snapping tolerance a request may ask for."
    )
    index_refresh_seconds: float = Field(
        default=10.0,
        ge=0,
        description="How often to check whether the active generation or its areas changed "
        "(e.g. by the CLI) and rebuild the in-memory index; 0 disables polling.",
    )
    migrate_on_startup: bool = Field(
        default=False,
        description="Run the Alembic migrations when the app starts (`gridmap serve` "
        "already does so before starting).",
    )
    redesign_jobs_per_key: int = Field(
        default=2,
        ge=1,
        description="Redesign jobs one API key may have queued or running at once; more get 429.",
    )
    redesign_jobs_total: int = Field(
        default=4,
        ge=1,
        description="Redesign jobs queued or running at once over all keys; more get 429.",
    )
    retry_after_seconds: int = Field(
        default=5,
        ge=1,
        description="`Retry-After` of a 503 while the database is unreachable.",
    )
    session_hours: float = Field(
        default=12.0,
        gt=0,
        le=24 * 30,
        description="A sign-in lasts at most this long (checked by the server), then the "
        "user signs in again.",
    )
    session_idle_minutes: float = Field(
        default=60.0,
        gt=0,
        description="A session unused for this long ends (checked by the server).",
    )
    login_max_failures: int = Field(
        default=5,
        ge=1,
        description="Failed sign-ins in a row after which the account is locked.",
    )
    login_lock_minutes: float = Field(
        default=15.0,
        gt=0,
        description="How long an account stays locked after too many failed sign-ins.",
    )


class MapSettings(BaseSettings):
    """How the map pages are built and served.

    The basemap is off by default: an intranet has no tile server until someone
    configures one, and the pages must work without any.
    """

    model_config = SettingsConfigDict(env_prefix="GRIDMAP_MAP_", env_file=".env", extra="ignore")

    basemap: str = Field(
        default="none",
        description="Basemap tiles: `none`, a preset (`osm`, `amap`, `amap-satellite`) or a "
        "URL template with {z}/{x}/{y} (e.g. an intranet tile server).",
    )
    basemap_crs: str | None = Field(
        default=None,
        description="Datum of a basemap given as a URL: `wgs84` or `gcj02` (Amap/Tencent "
        "style tiles; geometries are then converted to GCJ-02). Presets know "
        "their own.",
    )
    basemap_attribution: str | None = Field(
        default=None, description="Attribution shown for a basemap given as a URL."
    )
    basemap_subdomains: str | None = Field(
        default=None, description="Values of {s} in a basemap URL, e.g. `1234`."
    )
    basemap_max_zoom: int = Field(
        default=19, ge=1, le=22, description="Deepest zoom of a basemap given as a URL."
    )
    asset_dir: Path = Field(
        default=PROJECT_ROOT / "var" / "assets",
        description="Where scripts/install_assets.sh installed the front-end packages "
        "(`node_modules` inside it).",
    )
    page_cache: int = Field(
        default=32, ge=0, description="Built pages kept in memory (per parameter set)."
    )
    refresh_seconds: float = Field(
        default=5.0,
        ge=0,
        description="How long a data fingerprint is trusted before the database is asked "
        "again whether areas, staff or incidents changed.",
    )
    warm_on_startup: bool = Field(
        default=True,
        description="Build the default /map in the background when the app starts, so the "
        "first visitor does not wait for the data to load.",
    )
    cluster_points: int = Field(
        default=5000,
        ge=0,
        le=200_000,
        description="Incidents drawn in the clustered layer at most (a seeded random sample "
        "beyond that; the layer name says so).",
    )
    permutations: int = Field(
        default=999,
        ge=0,
        le=99_999,
        description="Gi* permutations of the hot spot layer (0: normal approximation).",
    )
    simplify_m: float = Field(
        default=1.0, ge=0, le=50, description="Display simplification of boundaries, in metres."
    )
    vector_tiles: bool = Field(
        default=True,
        description="Served pages draw levels with more than `tile_threshold` areas from the "
        "app's vector tiles (/tiles) instead of embedding them; false embeds everything "
        "(the pages before tiles, for comparisons).",
    )
    tile_threshold: int = Field(
        default=2000,
        ge=0,
        description="Areas of a level above which a served page draws it from vector tiles "
        "(the demo's 5,490 micro-grids and a city's 3,900 grids; not the demo's 620 grids).",
    )
    page_store: bool = Field(
        default=True,
        description="Keep built map pages on disk (`page_dir`) per database, data version and "
        "parameters, so the first /map after a restart on unchanged data is read, not rebuilt "
        "(a city's analyses take a minute).",
    )
    page_dir: Path = Field(
        default=PROJECT_ROOT / "var" / "cache" / "pages",
        description="Where `page_store` keeps the pages (the newest `page_cache` of them).",
    )
    embed_max_areas: int = Field(
        default=20_000,
        ge=0,
        description="Most areas a standalone page (`gridmap map -o`) embeds; beyond, it "
        "says to serve the map (`gridmap serve`) and draw large levels from tiles.",
    )


class Settings(BaseSettings):
    """Runtime configuration. Nothing is created at import time; pass a Settings around."""

    model_config = SettingsConfigDict(env_prefix="GRIDMAP_", env_file=".env", extra="ignore")

    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL of a PostGIS database. Unset: an embedded private "
        "PostgreSQL + PostGIS cluster is provisioned under `data_dir`.",
    )
    database_name: str = Field(default="gridmap", description="Database of the embedded cluster.")
    data_dir: Path = Field(
        default=PROJECT_ROOT / "var",
        description="Project-local directory for the embedded cluster, its log and password.",
    )
    install_packages: bool = Field(
        default=True,
        description="Install the Debian packages postgresql and postgis when they are missing.",
    )
    api: ApiSettings = Field(
        default_factory=ApiSettings, description="How the HTTP API behaves (`GRIDMAP_*`)."
    )
    maps: MapSettings = Field(
        default_factory=MapSettings,
        description="How the map pages are built and served (`GRIDMAP_MAP_*`).",
    )

    def sqlalchemy_url(self) -> str:
        """The database to use, without side effects: the configured URL, else the embedded one.

        Reading a setting never installs or starts anything: provisioning the
        embedded cluster is the explicit step :func:`app.db.provision.ensure_database`
        (run by the CLI and the scripts). Raises ``ProvisioningError`` when no URL
        is configured and the embedded cluster was never provisioned.
        """
        if self.database_url:
            return normalise_url(self.database_url)
        from app.db.embedded import EmbeddedPostgres

        return EmbeddedPostgres(self.data_dir / "pg").existing_url(self.database_name)


def normalise_url(url: str) -> str:
    """Accept plain ``postgresql://`` URLs (as docker and libpq users write them) for psycopg 3."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url
