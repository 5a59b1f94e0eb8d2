"""Settings of the HTTP API, read from the environment with the ``GRIDMAP_`` prefix."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class ApiSettings(BaseSettings):
    """How the API behaves; database settings stay in :class:`app.config.Settings`."""

    model_config = SettingsConfigDict(env_prefix="GRIDMAP_", env_file=".env", extra="ignore")

    public_boundaries: bool = Field(
        default=True,
        description="Serve boundaries, lookups, grids and generations without an API key. "
        "Incidents always need a key.",
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
