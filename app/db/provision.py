"""Provisioning: the one explicit step that installs, starts and migrates the database.

The CLI and the scripts call :func:`ensure_database` before they open the
database; the web app never does (its start-up only reads the URL), so serving
a page can never run apt-get or start PostgreSQL.
"""

from __future__ import annotations

from app.config import Settings
from app.db.embedded import EmbeddedPostgres
from app.db.session import upgrade

__all__ = ["ensure_database"]


def ensure_database(settings: Settings, migrate: bool = True) -> str:
    """Provision the database ``settings`` names (the embedded one when none is) and migrate it.

    Returns the SQLAlchemy URL. With ``GRIDMAP_DATABASE_URL`` set nothing is
    installed or started: that server is only migrated.
    """
    if settings.database_url:
        url = settings.sqlalchemy_url()
    else:
        cluster = EmbeddedPostgres(
            settings.data_dir / "pg", install_packages=settings.install_packages
        )
        url = cluster.ensure(settings.database_name)
    if migrate:
        upgrade(url)
    return url
