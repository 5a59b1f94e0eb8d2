"""The API documentation pages, /docs (Swagger UI) and /redoc, from the app's own assets.

FastAPI's defaults load Swagger UI and ReDoc from a CDN, which leaves the pages
blank on an intranet. The packages are pinned in ``package.json`` and served by
``/static/vendor/`` like the maps' (:mod:`app.maps.assets`).
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse, Response

from app.api.hygiene import LOCAL_ONLY_POLICY
from app.maps.assets import AssetError, AssetStore

router = APIRouter(include_in_schema=False)


def _store(request: Request) -> AssetStore:
    return request.app.state.gridmap.pages.store


def _page(request: Request, build) -> Response:
    root = request.scope.get("root_path", "")
    try:
        page = build(_store(request), f"{root}/static/vendor/", f"{root}{request.app.openapi_url}")
    except AssetError as exc:
        return JSONResponse({"detail": str(exc)}, status_code=503)
    # No image from elsewhere either: ReDoc's footer would fetch its logo from its CDN.
    page.headers["Content-Security-Policy"] = LOCAL_ONLY_POLICY
    return page


@router.get("/docs", response_class=HTMLResponse)
def swagger_ui(request: Request) -> Response:
    return _page(
        request,
        lambda store, prefix, openapi: get_swagger_ui_html(
            openapi_url=openapi,
            title=f"{request.app.title} – Swagger UI",
            swagger_js_url=store.url("swagger_ui_js", prefix),
            swagger_css_url=store.url("swagger_ui_css", prefix),
            swagger_favicon_url=store.url("swagger_ui_favicon", prefix),
        ),
    )


@router.get("/redoc", response_class=HTMLResponse)
def redoc(request: Request) -> Response:
    return _page(
        request,
        lambda store, prefix, openapi: get_redoc_html(
            openapi_url=openapi,
            title=f"{request.app.title} – ReDoc",
            redoc_js_url=store.url("redoc_js", prefix),
            redoc_favicon_url=store.url("swagger_ui_favicon", prefix),
            with_google_fonts=False,
        ),
    )
