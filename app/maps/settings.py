"""Settings of the map pages, read from the environment with the ``GRIDMAP_MAP_`` prefix."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from app.config import PROJECT_ROOT


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
