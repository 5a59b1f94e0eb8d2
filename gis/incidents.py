"""Reading and cleaning incident reports: every row is kept or rejected with a reason.

Incidents arrive as CSV exports of the 12345 hotline or the 110 system, as
GeoJSON points from patrol apps and as Open311 GeoReport v2 requests. This
module turns any of them into one frame of candidate incidents with WGS84
coordinates, and a list of rejected rows with the reason for each. It decides
nothing about grids (``gis.assign``) or storage (``app/``).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from gis import crs as crs_mod
from gis.errors import GridmapError
from gis.vocabulary import KNOWN_SOURCES, LOCAL_TZ, LOCATION_STATUSES

__all__ = [
    "CLEAN_COLUMNS",
    "KNOWN_SOURCES",
    "REPORT_COLUMNS",
    "FieldMap",
    "CleanIncidents",
    "read_incident_file",
    "clean_incidents",
]

_SOURCE_RE = re.compile(r"^[a-z][a-z0-9_]{1,63}$")

#: What a report says, kept as given (coordinates in their own CRS): the columns an
#: incident row stores beside its location and location status.
REPORT_COLUMNS = (
    "source",
    "external_id",
    "category",
    "description",
    "address",
    "reported_at",
    "raw_lon",
    "raw_lat",
    "raw_crs",
)
#: Columns of the cleaned frame, in order.
CLEAN_COLUMNS = ["row", *REPORT_COLUMNS, "lon", "lat", "location_status", "unlocated_reason"]


@dataclass
class FieldMap:
    """Which input column holds what; ``None`` means the file has no such column."""

    id: str = "id"
    lon: str | None = "lon"
    lat: str | None = "lat"
    time: str | None = "reported_at"
    category: str | None = "category"
    address: str | None = "address"
    description: str | None = "description"
    source: str | None = "source"
    crs: str | None = "crs"


@dataclass
class CleanIncidents:
    """Cleaned rows (``frame``) and ``rejected`` rows, each with ``row`` and ``reason``.

    ``location_status`` in ``frame`` is ``located`` (WGS84 lon/lat set),
    ``to_geocode`` (an address but no usable coordinates) or ``unlocated``.
    """

    frame: pd.DataFrame
    rejected: list[dict] = field(default_factory=list)
    rows_in: int = 0


# -- reading -------------------------------------------------------------------------
def read_incident_file(path: str | Path, encoding: str = "utf-8") -> tuple[pd.DataFrame, str]:
    """Read CSV, GeoJSON points or Open311 GeoReport v2 JSON as a frame of text columns.

    Returns the frame and the format found (``csv``, ``geojson``, ``open311``).
    Every value stays text so that cleaning can say exactly what was wrong.
    """
    path = Path(path)
    if not path.exists():
        raise GridmapError(f"file not found: {path}")
    data = path.read_bytes()
    if not data.strip():
        raise GridmapError(f"{path.name} is empty: no header, no rows")
    try:
        content = data.decode(encoding)
    except UnicodeDecodeError as exc:
        raise GridmapError(
            f"{path.name} is not valid {encoding} (byte 0x{data[exc.start]:02x} at offset "
            f"{exc.start}); if it was exported as GBK/GB18030, pass --encoding gb18030"
        ) from exc
    content = content.lstrip("\ufeff")  # Excel's UTF-8 BOM
    if path.suffix.lower() in (".json", ".geojson"):
        return _read_json(content, path.name)
    return _read_csv(content, path.name), "csv"


def _read_csv(content: str, name: str) -> pd.DataFrame:
    from io import StringIO

    try:
        frame = pd.read_csv(
            StringIO(content), dtype=str, keep_default_na=False, skipinitialspace=True
        )
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise GridmapError(f"{name}: not a readable CSV: {exc}") from exc
    return frame


def _read_json(content: str, name: str) -> tuple[pd.DataFrame, str]:
    try:
        doc = json.loads(content)
    except json.JSONDecodeError as exc:
        raise GridmapError(f"{name}: not valid JSON: {exc}") from exc
    if isinstance(doc, dict) and doc.get("type") == "FeatureCollection":
        return _geojson_rows(doc.get("features") or []), "geojson"
    if isinstance(doc, dict) and "service_requests" in doc:
        doc = doc["service_requests"]
    if isinstance(doc, list):
        return _open311_rows(doc), "open311"
    raise GridmapError(
        f"{name}: expected a GeoJSON FeatureCollection or an Open311 GeoReport v2 request list"
    )


def _geojson_rows(features: list) -> pd.DataFrame:
    rows = []
    for feature in features:
        props = dict((feature or {}).get("properties") or {})
        geom = (feature or {}).get("geometry") or {}
        lon = lat = ""
        if geom.get("type") == "Point" and len(geom.get("coordinates") or []) >= 2:
            lon, lat = geom["coordinates"][:2]
        elif geom:
            props["_geometry_error"] = f"geometry is a {geom.get('type')}, not a Point"
        if "id" not in props and feature and feature.get("id") is not None:
            props["id"] = feature["id"]
        rows.append(
            {**{k: _text(v) for k, v in props.items()}, "lon": _text(lon), "lat": _text(lat)}
        )
    return pd.DataFrame(rows, dtype=str).fillna("")


def _open311_rows(requests: list) -> pd.DataFrame:
    """GeoReport v2 field names mapped onto gridmap's (long → lon, service_code → category)."""
    mapping = {
        "service_request_id": "id",
        "service_code": "category",
        "long": "lon",
        "lat": "lat",
        "requested_datetime": "reported_at",
        "address": "address",
        "description": "description",
    }
    rows = [{mapping.get(k, k): _text(v) for k, v in (r or {}).items()} for r in requests]
    return pd.DataFrame(rows, dtype=str).fillna("")


def _text(value) -> str:
    return "" if value is None else str(value)


# -- cleaning ------------------------------------------------------------------------
def clean_incidents(
    raw: pd.DataFrame,
    *,
    fields: FieldMap | None = None,
    source: str | None = None,
    crs: str | None = None,
    categories: pd.DataFrame | None = None,
    expected_bounds: tuple[float, float, float, float] | None = None,
) -> CleanIncidents:
    """Check every row and convert coordinates to WGS84.

    Parameters
    ----------
    raw : DataFrame
        Text columns as :func:`read_incident_file` returns them.
    fields : FieldMap
        Column names; missing optional columns are treated as empty.
    source : str, optional
        Source of every row (hotline_12345, police_110, patrol, resident, …);
        without it each row needs a ``source`` column.
    crs : str, optional
        CRS of every row's coordinates; a ``crs`` column overrides it per row.
        Default ``wgs84``.
    categories : DataFrame, optional
        The taxonomy (``code``, ``name_zh``, ``name_en``); categories may be
        given by code or by either name. Without it categories are not checked.
    expected_bounds : (minx, miny, maxx, maxy), optional
        The jurisdiction in WGS84, to recognise swapped latitude/longitude.

    Returns
    -------
    CleanIncidents
    """
    fields = fields or FieldMap()
    if fields.id not in raw.columns:
        raise GridmapError(
            f"no id column {fields.id!r}; the file has {', '.join(raw.columns)} (use --id-field)"
        )
    if source is not None:
        _check_source(source)
    frame = pd.DataFrame({"row": np.arange(2, len(raw) + 2)})  # CSV line numbers (header = 1)
    reasons = pd.Series([None] * len(raw), dtype=object)

    frame["external_id"] = _column(raw, fields.id)
    _reject(reasons, frame["external_id"] == "", "missing id")
    first = ~frame["external_id"].duplicated(keep="first")
    first_row = frame.loc[first].set_index("external_id")["row"]
    dup = ~first & (frame["external_id"] != "")
    for i in np.flatnonzero(dup & reasons.isna()):
        ext = frame.at[i, "external_id"]
        reasons.iat[i] = f"duplicate id {ext!r} in this file (first at row {first_row[ext]})"

    frame["source"] = _sources(raw, fields, source, reasons)
    frame["category"] = _categories(raw, fields, categories, reasons)
    frame["reported_at"] = _times(raw, fields, reasons)
    for name in ("description", "address"):
        frame[name] = _column(raw, getattr(fields, name)).replace("", None)
    _coordinates(raw, fields, crs, expected_bounds, frame, reasons)
    if "_geometry_error" in raw.columns:
        _reject(
            reasons, raw["_geometry_error"].fillna("") != "", None, values=raw["_geometry_error"]
        )

    bad = reasons.notna().to_numpy()
    rejected = [
        {"row": int(r), "reason": str(why), "raw": _raw_record(raw, i)}
        for i, (r, why) in enumerate(zip(frame["row"], reasons, strict=True))
        if bad[i]
    ]
    return CleanIncidents(frame.loc[~bad, CLEAN_COLUMNS].reset_index(drop=True), rejected, len(raw))


def _column(raw: pd.DataFrame, name: str | None) -> pd.Series:
    if name is None or name not in raw.columns:
        return pd.Series([""] * len(raw), dtype=object)
    return raw[name].fillna("").astype(str).str.strip().reset_index(drop=True)


def _reject(reasons: pd.Series, mask, reason: str | None, values: pd.Series | None = None):
    """Set ``reason`` on rows in ``mask`` that have no reason yet (first reason wins)."""
    mask = pd.Series(np.asarray(mask, dtype=bool)) & reasons.isna()
    if values is not None:
        reasons[mask] = values.reset_index(drop=True)[mask]
    else:
        reasons[mask] = reason


def _check_source(source: str) -> str:
    if not _SOURCE_RE.match(source):
        raise GridmapError(
            f"source {source!r} must be lower-case letters, digits and _ "
            f"(e.g. {', '.join(KNOWN_SOURCES)})"
        )
    return source


def _sources(raw, fields, source, reasons) -> pd.Series:
    if source is not None:
        return pd.Series([source] * len(raw), dtype=object)
    values = _column(raw, fields.source).str.lower()
    if (values == "").all():
        raise GridmapError(
            "no source: pass --source (hotline_12345, police_110, patrol, "
            "resident, …) or give the file a 'source' column"
        )
    invalid = ~values.str.match(_SOURCE_RE.pattern)
    for i in np.flatnonzero(invalid):
        if reasons.iat[i] is None:
            reasons.iat[i] = f"invalid source {values.iat[i]!r}"
    return values


def _categories(raw, fields, categories, reasons) -> pd.Series:
    values = _column(raw, fields.category)
    if categories is None:
        return values.replace("", None)
    lookup = {str(c): str(c) for c in categories["code"]}
    for column in ("name_zh", "name_en"):
        if column in categories:
            lookup.update(
                {
                    str(n).strip().lower(): str(c)
                    for n, c in zip(categories[column], categories["code"], strict=True)
                }
            )
    codes = values.str.lower().map(lookup)
    for i in np.flatnonzero(codes.isna()):
        if reasons.iat[i] is None:
            given = values.iat[i]
            reasons.iat[i] = (
                "missing category"
                if not given
                else f"unknown category {given!r} (not in the taxonomy)"
            )
    return codes


def _times(raw, fields, reasons) -> pd.Series:
    values = _column(raw, fields.time)
    # Parse each distinct text once: feeds mix offsets ("+08:00", "Z") and naive local times,
    # which a single vectorised to_datetime call refuses.
    parsed = {text: _parse_time(text) for text in pd.unique(values)}
    times = pd.Series([parsed[v] for v in values], dtype=object)
    for i in np.flatnonzero(times.isna()):
        if reasons.iat[i] is None:
            reasons.iat[i] = (
                "missing reported time"
                if values.iat[i] == ""
                else f"unparseable time {values.iat[i]!r}"
            )
    return times


def _parse_time(text: str) -> pd.Timestamp | None:
    """Naive times are local (China Standard Time): that is what hotline exports mean."""
    if not text:
        return None
    try:
        ts = pd.Timestamp(text)
    except (ValueError, TypeError, OverflowError):
        return None
    if pd.isna(ts):
        return None
    return ts.tz_localize(LOCAL_TZ) if ts.tzinfo is None else ts


def _coordinates(raw, fields, crs, expected_bounds, frame, reasons) -> None:
    lon_text, lat_text = _column(raw, fields.lon), _column(raw, fields.lat)
    lon = pd.to_numeric(lon_text.replace("", None), errors="coerce").to_numpy(float)
    lat = pd.to_numeric(lat_text.replace("", None), errors="coerce").to_numpy(float)
    not_numeric = ((lon_text != "") & np.isnan(lon)) | ((lat_text != "") & np.isnan(lat))
    _reject(
        reasons,
        not_numeric,
        None,
        values="coordinates are not numbers: lon=" + lon_text + ", lat=" + lat_text,
    )
    crs_names = _crs_per_row(raw, fields, crs, reasons)
    frame["raw_lon"], frame["raw_lat"], frame["raw_crs"] = lon, lat, crs_names

    missing = np.isnan(lon) | np.isnan(lat)
    null_island = (lon == 0) & (lat == 0)
    swapped = _looks_swapped(lon, lat, expected_bounds) & ~missing
    _reject(
        reasons,
        swapped,
        None,
        values=pd.Series(
            [
                f"latitude and longitude look swapped (lon={a}, lat={b})"
                for a, b in zip(lon, lat, strict=True)
            ]
        ),
    )
    out_of_range = ~missing & ((np.abs(lon) > 180) | (np.abs(lat) > 90))
    _reject(
        reasons,
        out_of_range,
        None,
        values=pd.Series(
            [f"coordinates out of range (lon={a}, lat={b})" for a, b in zip(lon, lat, strict=True)]
        ),
    )

    wgs_lon, wgs_lat = np.full(len(lon), np.nan), np.full(len(lon), np.nan)
    usable = ~missing & ~null_island & reasons.isna().to_numpy()
    for name in pd.unique(crs_names[usable]):
        sel = usable & (crs_names == name)
        wgs_lon[sel], wgs_lat[sel] = crs_mod.to_wgs84(lon[sel], lat[sel], name)
    frame["lon"], frame["lat"] = wgs_lon, wgs_lat

    has_address = (_column(raw, fields.address) != "").to_numpy()
    located, _, unlocated = LOCATION_STATUSES
    # "to_geocode" is not stored: the importer geocodes those rows before saving them.
    status = np.where(usable, located, np.where(has_address, "to_geocode", unlocated))
    why = np.where(
        null_island, "coordinates (0, 0) are a device placeholder", "no coordinates and no address"
    )
    frame["location_status"] = status
    frame["unlocated_reason"] = np.where(status == unlocated, why, np.array(None, dtype=object))


def _crs_per_row(raw, fields, crs, reasons) -> np.ndarray:
    default = crs_mod.normalize_crs_name(crs) if crs else "wgs84"
    given = _column(raw, fields.crs)
    names = np.array([default] * len(raw), dtype=object)
    for i in np.flatnonzero((given != "").to_numpy()):
        try:
            names[i] = crs_mod.normalize_crs_name(given.iat[i])
        except GridmapError:
            if reasons.iat[i] is None:
                reasons.iat[i] = (
                    f"unknown crs {given.iat[i]!r} (use one of {', '.join(crs_mod.CRS_NAMES)})"
                )
    return names


def _looks_swapped(lon, lat, bounds) -> np.ndarray:
    """True where (lat, lon) would be valid or inside the jurisdiction but (lon, lat) is not."""
    with np.errstate(invalid="ignore"):
        impossible = (np.abs(lat) > 90) & (np.abs(lon) <= 90)
        if bounds is None:
            return impossible
        minx, miny, maxx, maxy = bounds
        inside = (lon >= minx) & (lon <= maxx) & (lat >= miny) & (lat <= maxy)
        inside_swapped = (lat >= minx) & (lat <= maxx) & (lon >= miny) & (lon <= maxy)
        return impossible | (~inside & inside_swapped)


def _raw_record(raw: pd.DataFrame, i: int) -> dict:
    record = raw.iloc[i].to_dict()
    return {str(k): v for k, v in record.items() if not str(k).startswith("_")}
