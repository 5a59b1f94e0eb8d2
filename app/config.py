"""Settings, read from the environment with the ``GRIDMAP_`` prefix (or a ``.env`` file)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent


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
