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
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from gis import crs as crs_mod
from gis.errors import GridmapError, ValidationError
from gis.tables import EXCEL_SUFFIXES, TableSource, decode_text, read_table
from gis.taxonomy import category_lookup
from gis.times import EARLIEST, latest_report, report_time_problem
from gis.vocabulary import (
    HANDLING_LEVELS,
    INCIDENT_STATUSES,
    KNOWN_SOURCES,
    LOCAL_TZ,
    LOCATION_STATUSES,
    STEP_TIMESTAMP,
)

__all__ = [
    "CLEAN_COLUMNS",
    "HISTORY_COLUMNS",
    "KNOWN_SOURCES",
    "UNKNOWN_CATEGORY_POLICIES",
    "REPORT_COLUMNS",
    "FieldMap",
    "CleanIncidents",
    "field_map_from_table",
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
#: Times of the closed-loop steps after the report, in order (registered_at … closed_at).
STEP_COLUMNS = tuple(STEP_TIMESTAMP[s] for s in INCIDENT_STATUSES[1:])
#: Where a historical ticket got to: its status, handling level and step times.
HISTORY_COLUMNS = ("status", "handling_level", *STEP_COLUMNS)
#: Columns of the cleaned frame, in order.
CLEAN_COLUMNS = [
    "row",
    *REPORT_COLUMNS,
    *HISTORY_COLUMNS,
    "lon",
    "lat",
    "location_status",
    "unlocated_reason",
]
#: What happens to a row whose category is missing or not in the taxonomy.
UNKNOWN_CATEGORY_POLICIES = ("keep", "reject")

_STEP_WORDS = {
    "上报": "reported",
    "发现": "reported",
    "立案": "registered",
    "派遣": "dispatched",
    "处置": "handled",
    "核查": "verified",
    "结案": "closed",
}
#: Status words of Chinese case systems (docs/domain.md: the closed loop), also as
#: archives write them done (已结案), and English.
STATUS_WORDS = {
    **{s: s for s in INCIDENT_STATUSES},
    **_STEP_WORDS,
    **{f"已{word}": status for word, status in _STEP_WORDS.items()},
}
#: Handling-level words: 网格 grid, 社区 community, 街道 street.
LEVEL_WORDS = {
    **{level: level for level in HANDLING_LEVELS},
    "网格": "grid",
    "社区": "community",
    "街道": "street",
}


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
    # A history only when asked for: None means the file's tickets are new reports.
    status: str | None = None
    handling_level: str | None = None
    registered_at: str | None = None
    dispatched_at: str | None = None
    handled_at: str | None = None
    verified_at: str | None = None
    closed_at: str | None = None

    def has_history(self) -> bool:
        return any(getattr(self, name) for name in HISTORY_COLUMNS)


def field_map_from_table(frame: pd.DataFrame, base: FieldMap | None = None) -> FieldMap:
    """A ``--columns`` table (``field,column``: gridmap's name → the file's) over ``base``.

    Raises :class:`ValidationError` listing unknown field names and empty columns.
    """
    known = set(FieldMap.__dataclass_fields__)
    if not {"field", "column"} <= set(frame.columns):
        raise ValidationError(
            f"a columns table needs the columns field,column; it has {', '.join(frame.columns)}"
        )
    problems = []
    names: dict[str, str] = {}
    for row, (name, column) in enumerate(
        zip(frame["field"].str.strip(), frame["column"].str.strip(), strict=True), start=1
    ):
        if name not in known:
            problems.append(
                {"row": row, "reason": f"unknown field {name!r} (use {', '.join(sorted(known))})"}
            )
        elif not column:
            problems.append({"row": row, "reason": f"no column given for {name!r}"})
        else:
            names[name] = column
    if problems:
        raise ValidationError("the columns table is invalid", problems)
    return replace(base or FieldMap(), **names)


@dataclass
class CleanIncidents:
    """Cleaned rows (``frame``) and ``rejected`` rows, each with ``row`` and ``reason``.

    ``location_status`` in ``frame`` is ``located`` (WGS84 lon/lat set),
    ``to_geocode`` (an address but no usable coordinates) or ``unlocated``.
    """

    frame: pd.DataFrame
    rejected: list[dict] = field(default_factory=list)
    rows_in: int = 0
    #: Stored rows without a category, by the value the file gave ("" when none).
    uncategorised: dict[str, int] = field(default_factory=dict)


# -- reading -------------------------------------------------------------------------
def read_incident_file(
    path: str | Path, encoding: str | None = None, sheet: str | int | None = None
) -> tuple[pd.DataFrame, str, TableSource]:
    """Read CSV, XLSX, GeoJSON points or Open311 GeoReport v2 JSON as a frame of text columns.

    Returns the frame, the format found (``csv``, ``xlsx``, ``geojson``, ``open311``) and
    what was read (the encoding detected or given, or the sheet).
    Every value stays text so that cleaning can say exactly what was wrong.
    """
    path = Path(path)
    if not path.exists():
        raise GridmapError(f"file not found: {path}")
    suffix = path.suffix.lower()
    if suffix not in (".json", ".geojson"):
        frame, source = read_table(path, sheet=sheet, encoding=encoding)
        return frame, "xlsx" if suffix in EXCEL_SUFFIXES else "csv", source
    data = path.read_bytes()
    if not data.strip():
        raise GridmapError(f"{path.name} is empty: no header, no rows")
    content, used = decode_text(data, path.name, encoding)
    frame, fmt = _read_json(content, path.name)
    return frame, fmt, TableSource(path, fmt, encoding=used, encoding_detected=encoding is None)


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
    category_map: dict[str, str] | None = None,
    unknown_category: str = "reject",
) -> CleanIncidents:
    """Check every row and convert coordinates to WGS84.

    Parameters
    ----------
    raw : DataFrame
        Text columns as :func:`read_incident_file` returns them.
    fields : FieldMap
        Column names; missing optional columns are treated as empty.
    source : str, optional
        Source of the rows whose ``source`` column is empty or absent (hotline_12345,
        police_110, patrol, resident, …); without it each row needs a source.
    crs : str, optional
        CRS of every row's coordinates; a ``crs`` column overrides it per row.
        Default ``wgs84``.
    categories : DataFrame, optional
        The taxonomy (``code``, ``name_zh``, ``name_en``); categories may be
        given by code or by either name. Without it categories are not checked.
    category_map : dict, optional
        A file's own category words (lower-cased) → taxonomy codes
        (:func:`gis.taxonomy.read_category_map`); tried before the taxonomy's own words.
    unknown_category : {"reject", "keep"}
        A missing or unknown category rejects the row, or keeps it uncategorised
        (counted in ``CleanIncidents.uncategorised``).
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
    frame["category"] = _categories(
        raw, fields, categories, reasons, category_map, unknown_category
    )
    frame["reported_at"] = _times(raw, fields, reasons)
    _history(raw, fields, frame, reasons)
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
    kept = frame.loc[~bad, CLEAN_COLUMNS].reset_index(drop=True)
    given = _column(raw, fields.category)[~bad].reset_index(drop=True)
    uncategorised = given[kept["category"].isna()].value_counts()
    return CleanIncidents(
        kept, rejected, len(raw), {str(k): int(v) for k, v in uncategorised.items()}
    )


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
    """The row's own source where it has one, ``source`` (``--source``) for the others."""
    values = _column(raw, fields.source).str.lower()
    if source is not None:
        values = values.where(values != "", source)
    if (values == "").any():
        if source is None and (values == "").all():
            raise GridmapError(
                "no source: pass --source (hotline_12345, police_110, patrol, "
                "resident, …) or give the file a source column (--source-field)"
            )
        _reject(reasons, values == "", "missing source (pass --source for rows without one)")
    invalid = ~values.str.match(_SOURCE_RE.pattern) & (values != "")
    for i in np.flatnonzero(invalid):
        if reasons.iat[i] is None:
            reasons.iat[i] = f"invalid source {values.iat[i]!r}"
    return values


def _categories(raw, fields, categories, reasons, category_map, unknown) -> pd.Series:
    if unknown not in UNKNOWN_CATEGORY_POLICIES:
        raise GridmapError(
            f"unknown_category must be one of {', '.join(UNKNOWN_CATEGORY_POLICIES)}"
        )
    values = _column(raw, fields.category)
    if categories is None:
        return values.replace("", None)
    keys = values.str.lower()
    codes = keys.map(category_lookup(categories))
    if category_map:
        codes = keys.map(category_map).fillna(codes)
    if unknown == "keep":
        return codes.astype(object).where(codes.notna(), None)
    where = " or the category map" if category_map else ""
    for i in np.flatnonzero(codes.isna()):
        if reasons.iat[i] is None:
            given = values.iat[i]
            reasons.iat[i] = (
                "missing category"
                if not given
                else f"unknown category {given!r} (not in the taxonomy{where})"
            )
    return codes


def _times(raw, fields, reasons) -> pd.Series:
    values = _column(raw, fields.time)
    times, checked = _parse_times(values)
    for i in np.flatnonzero(times.isna()):
        if reasons.iat[i] is None:
            reasons.iat[i] = (
                "missing reported time"
                if values.iat[i] == ""
                else f"unparseable time {values.iat[i]!r}"
            )
    # Out of the accepted range (gis.times): rejected here, so no reader ever meets it.
    for i in np.flatnonzero(times.notna().to_numpy() & ~checked):
        problem = report_time_problem(times.iat[i])
        if problem is not None and reasons.iat[i] is None:
            reasons.iat[i] = problem
    return times


#: ISO 8601 local or offset times (``2023-01-01 09:00``, ``…T09:00:00+08:00``, ``…Z``):
#: what exports write, parsed column-wise to what :func:`_parse_time` gives each.
_ISO_TIME = (
    r"^(?P<local>\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?)?)"
    r"(?P<offset>Z|[+-]\d{2}:\d{2})?$"
)


def _parse_times(values: pd.Series) -> tuple[pd.Series, np.ndarray]:
    """Timestamps (or None) of the texts, and where the accepted range was checked already.

    A million distinct times one by one cost seconds: ISO texts are parsed per
    offset as a column, and their range checked the same way; any other text
    (another layout, a DST gap) is parsed on its own, as before.
    """
    times = pd.Series([None] * len(values), dtype=object)
    checked = np.zeros(len(values), dtype=bool)
    parts = pc.extract_regex(pa.array(values.to_numpy(dtype=object), type=pa.string()), _ISO_TIME)
    iso = parts.is_valid().to_numpy(zero_copy_only=False)
    local = parts.field("local").to_numpy(zero_copy_only=False)
    offsets = parts.field("offset").to_numpy(zero_copy_only=False)
    latest = pd.Timestamp(latest_report())
    for suffix in pd.unique(offsets[iso]):
        rows = iso & (offsets == suffix)
        try:
            naive = pd.DatetimeIndex(pd.to_datetime(local[rows], format="ISO8601", errors="coerce"))
            tz = pd.Timestamp(f"2000-01-01T00:00{suffix}").tzinfo if suffix else LOCAL_TZ
            # a summer-time change's hour (1986-1991) is NaT here and parsed on its own below
            moments = naive.tz_localize(tz, ambiguous="NaT", nonexistent="NaT")
        except (ValueError, OverflowError, TypeError):
            continue  # one by one below, with the errors they give
        at, valid = np.flatnonzero(rows), moments.notna()  # not a date: one by one below
        times.iloc[at[valid]] = moments[valid].astype(object)
        checked[at[valid]] = (moments[valid] >= pd.Timestamp(EARLIEST)) & (moments[valid] <= latest)
    rest = np.flatnonzero(times.isna().to_numpy() & (values != "").to_numpy())
    parsed = {text: _parse_time(text) for text in pd.unique(values.iloc[rest])}
    times.iloc[rest] = [parsed[v] for v in values.iloc[rest]]
    return times, checked


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
    if ts.tzinfo is not None:
        return ts
    # China kept summer time in 1986-1991: a wall-clock hour of those autumns happened
    # twice (taken as the first, summer-time one) and one of those springs never did
    # (moved past the gap), rather than failing the whole file on one archived ticket.
    return ts.tz_localize(LOCAL_TZ, ambiguous=True, nonexistent="shift_forward")


def _history(raw, fields, frame, reasons) -> None:
    """Status, handling level and step times of historical tickets, checked as the loop rules.

    Without any history field every row is a new report. A row whose history the
    closed loop forbids is rejected with the reason (docs/domain.md). The rules are
    :func:`_ticket`'s, applied a column at a time (a city's archive is millions of
    rows); the rare row with a time beyond what nanoseconds hold goes through
    :func:`_ticket` itself.
    """
    frame["status"] = "reported"
    frame["handling_level"] = None
    for column in STEP_COLUMNS:
        frame[column] = None
    if not fields.has_history():
        return
    checked = _HistoryCheck(raw, fields, frame["reported_at"])
    problems = checked.problems()
    ok = pd.isna(problems)
    for i in np.flatnonzero(~ok):
        _reject_row(reasons, int(i), problems[i])
    # object columns, None for no level, as for rows without a history
    frame["status"] = pd.Series(np.where(ok, checked.status, "reported"), dtype=object)
    frame["handling_level"] = pd.Series(np.where(ok, checked.level, _NONE), dtype=object)
    for k, column in enumerate(STEP_COLUMNS):
        moments = np.where(ok, checked.steps[k], _NAT)
        frame[column] = (
            pd.DatetimeIndex(moments.view("datetime64[ns]"), tz="UTC")
            .tz_convert(LOCAL_TZ)
            .as_unit("us")
        )
    for row, record in checked.tickets.items():  # the rows checked one by one
        if record is None:
            continue
        for column, value in record.items():
            # microseconds, as the column holds (and the database keeps) them
            frame.at[row, column] = value.floor("us") if isinstance(value, pd.Timestamp) else value


#: NaT as int64 nanoseconds; bounds of what nanoseconds since 1970 hold.
_NAT = np.iinfo(np.int64).min
_NONE = np.array(None, dtype=object)
_NS_RANGE = (pd.Timestamp.min.tz_localize("UTC"), pd.Timestamp.max.tz_localize("UTC"))


class _HistoryCheck:
    """:func:`_ticket` of every row, a column at a time.

    ``problems()`` gives each row's reason or None, the first one :func:`_ticket`
    would meet; ``status``, ``level`` and ``steps`` (UTC nanoseconds per step
    column, :data:`_NAT` where none) are the history of the rows without one.
    Rows holding a time beyond nanoseconds are checked by :func:`_ticket` itself
    (``tickets``: row → its record, None when rejected).
    """

    def __init__(self, raw: pd.DataFrame, fields: FieldMap, reported_at: pd.Series) -> None:
        n = len(raw)
        self.reported_at = reported_at
        self.texts = [_column(raw, getattr(fields, c)) for c in STEP_COLUMNS]
        parsed = [_instants(t) for t in self.texts]
        self.steps = np.array([p[0] for p in parsed]).reshape(len(STEP_COLUMNS), n)
        self.unparseable = [p[1] for p in parsed]
        beyond = np.logical_or.reduce([p[2] for p in parsed])
        self.reported, _, reported_beyond = _instants(_column(raw, fields.time))
        self.present = self.steps != _NAT
        self.status_text = _column(raw, fields.status)
        self.level_text = _column(raw, fields.handling_level)
        furthest = np.asarray(INCIDENT_STATUSES, dtype=object)[_reached_steps(self.present)]
        self.status = _words(self.status_text, STATUS_WORDS)
        self.status = np.where((self.status_text == "").to_numpy(), furthest, self.status)
        self.level = _words(self.level_text, LEVEL_WORDS)
        self.tickets: dict[int, dict | None] = {}
        self._one_by_one = np.flatnonzero(beyond | reported_beyond)
        self._raw, self._fields = raw, fields

    def problems(self) -> np.ndarray:
        n = len(self.status)
        problems = np.full(n, None, dtype=object)

        def first(mask: np.ndarray, reason) -> None:
            """``reason`` (text, or row → text) where ``mask`` and no problem yet."""
            for i in np.flatnonzero(mask & pd.isna(problems)):
                problems[i] = reason(i) if callable(reason) else reason

        for column, texts, bad in zip(STEP_COLUMNS, self.texts, self.unparseable, strict=True):
            first(bad, lambda i, c=column, t=texts: f"unparseable {c} {t.iat[i]!r}")
        statuses = ", ".join(STATUS_WORDS)
        first(
            pd.isna(self.status),
            lambda i: f"unknown status {self.status_text.iat[i]!r} (use {statuses})",
        )
        levels = ", ".join(LEVEL_WORDS)
        first(
            (self.level_text != "").to_numpy() & pd.isna(self.level),
            lambda i: f"unknown handling level {self.level_text.iat[i]!r} (use {levels})",
        )
        known = pd.isna(problems)
        reached = np.zeros(n, dtype=np.int64)
        reached[known] = pd.Index(INCIDENT_STATUSES).get_indexer(self.status[known])
        for k, column in enumerate(STEP_COLUMNS, start=1):
            first(
                (k > reached) & self.present[k - 1],
                lambda i, c=column: f"{c} is given but the status is only {self.status[i]}",
            )
        first(
            pd.notna(self.level) & (reached < INCIDENT_STATUSES.index("registered")),
            "a handling level is set before the ticket was registered (立案)",
        )
        self._order(problems, first)
        for i in self._one_by_one:  # beyond nanoseconds: the row rules themselves
            record, problem = _ticket(self._raw, self._fields, int(i), self.reported_at.iat[i])
            problems[i] = problem
            self.tickets[int(i)] = None if problem is not None else record
        return problems

    def _order(self, problems: np.ndarray, first) -> None:
        """Each given step time no earlier than the last given one before it."""
        previous = self.reported  # the last given time so far, and which step gave it
        by = np.full(len(previous), -1)
        for k, column in enumerate(STEP_COLUMNS):
            moment = self.steps[k]
            given = moment != _NAT
            first(
                given & (previous != _NAT) & (moment < previous),
                lambda i, k=k, c=column, by=by: (
                    f"{c} {self._moment(k, i).isoformat()} is before "
                    f"{self._name(by[i])} {self._moment(by[i], i).isoformat()}"
                ),
            )
            previous = np.where(given, moment, previous)
            by = np.where(given, k, by)

    def _name(self, k: int) -> str:
        return "reported_at" if k < 0 else STEP_COLUMNS[k]

    def _moment(self, k: int, i: int):
        """The time of step ``k`` (-1: the report) of row ``i`` as :func:`_ticket` holds it."""
        return self.reported_at.iat[i] if k < 0 else _parse_time(self.texts[k].iat[i])


def _nanoseconds(moment: pd.Timestamp | None) -> int | None:
    """UTC nanoseconds of ``moment`` (:data:`_NAT` for none), None when they overflow."""
    if moment is None:
        return _NAT
    try:
        return int(moment.tz_convert("UTC").as_unit("ns").value)
    except (ValueError, OverflowError):
        return None


def _words(texts: pd.Series, words: dict[str, str]) -> np.ndarray:
    """Each text's meaning in ``words`` (lower-cased as Python does), None for "" or unknown."""
    meaning = {t: words.get(t.lower()) for t in pd.unique(texts) if t}
    found = texts.map(meaning).to_numpy(dtype=object)
    return np.where(pd.isna(found), _NONE, found)


def _reached_steps(present: np.ndarray) -> np.ndarray:
    """Per row (``present``: steps × rows), the status index of the furthest step given:
    1 + the last step column given, 0 when none is."""
    later = present[::-1].argmax(axis=0)
    return np.where(present.any(axis=0), len(present) - later, 0)


def _instants(texts: pd.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(UTC nanoseconds or :data:`_NAT`, given but unparseable, parsed but beyond
    nanoseconds) of time texts, each as :func:`_parse_time` reads it: ISO 8601 texts
    a column per offset (in Arrow, no Python string per row), any other text one
    distinct value at a time."""
    n = len(texts)
    out = np.full(n, _NAT, dtype=np.int64)
    beyond = np.zeros(n, dtype=bool)
    done = np.zeros(n, dtype=bool)
    column = pa.array(texts, type=pa.large_string(), from_pandas=True)
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    given = pc.not_equal(column, "").to_numpy(zero_copy_only=False)
    parts = pc.extract_regex(column, _ISO_TIME)
    iso = parts.is_valid()
    offsets = pc.fill_null(parts.field("offset"), "")
    for suffix in pc.unique(offsets.filter(iso)).to_pylist():
        rows = pc.and_(iso, pc.equal(offsets, suffix))
        local = parts.field("local").filter(rows).to_numpy(zero_copy_only=False)
        try:
            naive = pd.DatetimeIndex(pd.to_datetime(local, format="ISO8601", errors="coerce"))
            tz = pd.Timestamp(f"2000-01-01T00:00{suffix}").tzinfo if suffix else LOCAL_TZ
            moments = naive.tz_localize(tz).tz_convert("UTC")
        except (ValueError, OverflowError, TypeError):
            continue  # one by one below
        at = np.flatnonzero(rows.to_numpy(zero_copy_only=False))
        fits = moments.notna() & (moments >= _NS_RANGE[0]) & (moments <= _NS_RANGE[1])
        out[at[fits]] = moments[fits].as_unit("ns").asi8
        done[at[fits]] = True
    rest = np.flatnonzero(~done & given)
    if len(rest):
        others = pd.Series(texts.to_numpy(dtype=object)[rest], dtype=object)
        nanos = {text: _nanoseconds(_parse_time(text)) for text in pd.unique(others)}
        found = others.map({t: _NAT if v is None else v for t, v in nanos.items()})
        out[rest] = found.to_numpy(dtype=np.int64)
        beyond[rest] = others.map({t: v is None for t, v in nanos.items()}).to_numpy(dtype=bool)
    unparseable = given & (out == _NAT) & ~beyond
    return out, unparseable, beyond


def _reject_row(reasons: pd.Series, i: int, reason: str) -> None:
    if reasons.iat[i] is None:
        reasons.iat[i] = reason


def _ticket(raw, fields, i, reported_at) -> tuple[dict, str | None]:
    """One row's history, or the reason it is impossible."""
    record: dict = {}
    for column in STEP_COLUMNS:
        text = _cell(raw, getattr(fields, column), i)
        record[column] = _parse_time(text)
        if text and record[column] is None:
            return record, f"unparseable {column} {text!r}"
    status_text = _cell(raw, fields.status, i)
    status = STATUS_WORDS.get(status_text.lower()) if status_text else _furthest_step(record)
    if status is None:
        return record, f"unknown status {status_text!r} (use {', '.join(STATUS_WORDS)})"
    level_text = _cell(raw, fields.handling_level, i)
    level = LEVEL_WORDS.get(level_text.lower()) if level_text else None
    if level_text and level is None:
        return record, f"unknown handling level {level_text!r} (use {', '.join(LEVEL_WORDS)})"
    record.update(status=status, handling_level=level)
    return record, _impossible(record, reported_at)


def _furthest_step(record: dict) -> str:
    steps = [s for s in INCIDENT_STATUSES[1:] if record[STEP_TIMESTAMP[s]] is not None]
    return steps[-1] if steps else "reported"


def _impossible(record: dict, reported_at) -> str | None:
    """Why the closed loop forbids this history, or None."""
    status = record["status"]
    reached = INCIDENT_STATUSES.index(status)
    for later in INCIDENT_STATUSES[reached + 1 :]:
        if record[STEP_TIMESTAMP[later]] is not None:
            return f"{STEP_TIMESTAMP[later]} is given but the status is only {status}"
    if record["handling_level"] is not None and reached < INCIDENT_STATUSES.index("registered"):
        return "a handling level is set before the ticket was registered (立案)"
    previous = ("reported_at", reported_at)
    for column in STEP_COLUMNS:
        moment = record[column]
        if moment is None:
            continue
        if previous[1] is not None and moment < previous[1]:
            return (
                f"{column} {moment.isoformat()} is before {previous[0]} {previous[1].isoformat()}"
            )
        previous = (column, moment)
    return None


def _cell(raw: pd.DataFrame, name: str | None, i: int) -> str:
    if name is None or name not in raw.columns:
        return ""
    value = raw[name].iat[i]
    return (
        ""
        if value is None or (isinstance(value, float) and np.isnan(value))
        else str(value).strip()
    )


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
        values=_messages("latitude and longitude look swapped", swapped, lon, lat),
    )
    out_of_range = ~missing & ((np.abs(lon) > 180) | (np.abs(lat) > 90))
    _reject(
        reasons,
        out_of_range,
        None,
        values=_messages("coordinates out of range", out_of_range, lon, lat),
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


def _messages(what: str, where: np.ndarray, lon: np.ndarray, lat: np.ndarray) -> pd.Series:
    """``what (lon=…, lat=…)`` on the rows ``where`` (None elsewhere): only those are formatted."""
    messages = np.full(len(lon), None, dtype=object)
    for i in np.flatnonzero(where):
        messages[i] = f"{what} (lon={lon[i]}, lat={lat[i]})"
    return pd.Series(messages)


def _crs_per_row(raw, fields, crs, reasons) -> np.ndarray:
    default = crs_mod.normalize_crs_name(crs) if crs else "wgs84"
    given = _column(raw, fields.crs)
    names = np.array([default] * len(raw), dtype=object)
    present = (given != "").to_numpy()
    values = given.to_numpy(dtype=object)
    # a file names a handful of systems: normalise each once, not once per row
    for value in pd.unique(values[present]):
        rows = np.flatnonzero(present & (values == value))
        try:
            names[rows] = crs_mod.normalize_crs_name(value)
        except GridmapError:
            unknown = f"unknown crs {value!r} (use one of {', '.join(crs_mod.CRS_NAMES)})"
            for i in rows:
                if reasons.iat[i] is None:
                    reasons.iat[i] = unknown
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
