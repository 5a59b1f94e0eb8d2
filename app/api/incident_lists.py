"""What the incident lists share: /incidents, /grids/{code}/incidents and the OGC
collection ``incidents`` answer the same filters, and the first two the same page."""

from __future__ import annotations

from fastapi import Request
from sqlalchemy import Connection

from app.api.deps import BBox, IncidentQuery, Page, TimeWindow, resolve_generation
from app.api.geojson import GeoJSONResponse, feature_collection, paging_links
from app.db import queries


def grid_incident_filter(
    conn: Connection,
    f: IncidentQuery,
    window: TimeWindow,
    bbox: BBox | None,
    grid: str | None,
    generation: str | None,
    area: str | None,
) -> queries.IncidentFilter:
    """The property filters, the report time and the bbox; with ``grid``, only that
    grid's incidents, as ``generation`` assigned them (default: the active one);
    ``area`` is the caller's scope (None: every incident)."""
    gen_id = resolve_generation(conn, generation).id if generation is not None else None
    return f.to_filter(
        window,
        bbox,
        generation_id=gen_id,
        area_level="grid" if grid else None,
        area_code=grid,
        area_prefix=area,
    )


def newest_incidents_page(
    request: Request, conn: Connection, filters: queries.IncidentFilter, page: Page
) -> GeoJSONResponse:
    """One page of the incidents ``filters`` selects, newest first, with next/prev links."""
    matched, features = queries.incident_features(
        conn, filters, page.limit, page.offset, newest_first=True
    )
    links = paging_links(request, page.offset, page.limit, len(features), matched)
    return GeoJSONResponse(feature_collection(features, matched=matched, links=links))
