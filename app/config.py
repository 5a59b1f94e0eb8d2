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
        """The database to use: the configured one, else the embedded cluster (started)."""
        if self.database_url:
            return normalise_url(self.database_url)
        from app.db.embedded import EmbeddedPostgres  # local import: provisioning is heavy

        cluster = EmbeddedPostgres(self.data_dir / "pg", install_packages=self.install_packages)
        return cluster.ensure(self.database_name)


def normalise_url(url: str) -> str:
    """Accept plain ``postgresql://`` URLs (as docker and libpq users write them) for psycopg 3."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url
