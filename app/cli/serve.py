"""``gridmap serve``: the HTTP API, its docs and the map pages."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from app.cli.common import console


def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 8000,
    workers: Annotated[int, typer.Option(help="Worker processes.")] = 1,
):
    """Serve the HTTP API, the OpenAPI docs (/docs) and the map pages (/map)."""
    import uvicorn

    from app.config import Settings
    from app.db.provision import ensure_database

    settings = Settings()
    url = ensure_database(settings)
    console.print(f"gridmap on http://{host}:{port}/ — docs at /docs, map at /map")
    if workers > 1:
        # Worker processes build their own app from the environment.
        os.environ["GRIDMAP_DATABASE_URL"] = url
        uvicorn.run(
            "app.main:create_app",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            log_level="warning",
        )
    else:
        from app.main import create_app

        app = create_app(settings.model_copy(update={"database_url": url}))
        uvicorn.run(app, host=host, port=port, log_level="warning")
