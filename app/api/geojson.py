"""Responses serialised with orjson, and GeoJSON FeatureCollections assembled as bytes.

PostGIS writes each feature as GeoJSON text (``ST_AsGeoJSON``); the collection
is the features joined with commas between a head and a tail. Nothing parses
and re-serialises the geometries: ``jsonable_encoder`` over 10,000 polygons
would take seconds.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import orjson
from fastapi import Request
from starlette.responses import JSONResponse

GEOJSON = "application/geo+json"
JSON = "application/json"
_ORJSON_OPTIONS = orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY


def dumps(content: Any) -> bytes:
    """JSON bytes; NaN and infinities become null (orjson's rule, valid JSON)."""
    return orjson.dumps(content, option=_ORJSON_OPTIONS)


class JSONBytesResponse(JSONResponse):
    """JSON rendered by orjson; returned as-is, so FastAPI does not re-validate it.

    A JSONResponse subclass so that FastAPI documents the route's response model.
    """

    media_type = JSON

    def render(self, content: Any) -> bytes:
        return content if isinstance(content, bytes) else dumps(content)


class GeoJSONResponse(JSONBytesResponse):
    media_type = GEOJSON


def link(href: str, rel: str, media_type: str = JSON, title: str | None = None) -> dict:
    """An OGC API link object."""
    out = {"href": href, "rel": rel, "type": media_type}
    if title:
        out["title"] = title
    return out


def paging_links(
    request: Request,
    offset: int,
    limit: int,
    returned: int,
    matched: int,
    media_type: str = GEOJSON,
) -> list[dict]:
    """self, and next/prev when there are more features after or before this page."""
    links = [link(str(request.url), "self", media_type, "this page")]
    if offset + returned < matched:
        url = request.url.include_query_params(offset=offset + limit, limit=limit)
        links.append(link(str(url), "next", media_type, "next page"))
    if offset > 0:
        url = request.url.include_query_params(offset=max(0, offset - limit), limit=limit)
        links.append(link(str(url), "prev", media_type, "previous page"))
    return links


def feature_collection(
    features: Sequence[str], *, matched: int | None, links: list[dict], extra: dict | None = None
) -> bytes:
    """A FeatureCollection from features already serialised by PostGIS."""
    tail: dict[str, Any] = {}
    if matched is not None:
        tail["numberMatched"] = matched
    tail["numberReturned"] = len(features)
    tail["timeStamp"] = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    tail["links"] = links
    tail.update(extra or {})
    body = ",".join(features).encode("utf-8")
    # b'{"numberMatched":…}' becomes b',"numberMatched":…}' after the feature array.
    return b'{"type":"FeatureCollection","features":[' + body + b"]," + dumps(tail)[1:]
