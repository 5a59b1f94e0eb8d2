"""Bulk writes and reads through PostgreSQL COPY, on the SQLAlchemy connection's transaction.

The fast path of every large write (areas, incidents, assignments, staff,
lineage, rejected rows): one ORM insert per row would cost minutes for the
demo's 50,000 incidents.

Index upkeep, not the COPY, is most of a large load's time: a million rows
into ``incident`` (nine indexes) took 93 s with its indexes in place, 8 s bare
plus 22 s to build them after. :func:`deferred_indexes` does the latter for a
batch at least as large as the table, in the same transaction.

The two largest — a million incidents and their assignments — go as **binary**
COPY (:func:`copy_binary`): the rows are encoded column by column with NumPy
into PostgreSQL's binary tuple format, so the server parses no text (no
timestamps, floats or hex geometries to read) and Python touches no row.
:func:`read_binary` reads fixed-width results (ids and coordinates) the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
from sqlalchemy import Connection, text

__all__ = [
    "copy_binary",
    "copy_frame",
    "copy_rows",
    "deferred_indexes",
    "ewkb_points",
    "read_binary",
    "table_types",
]


def copy_rows(
    conn: Connection, table: str, columns: Sequence[str], rows: Iterable[Sequence]
) -> int:
    """COPY rows into ``table`` on the SQLAlchemy connection's own transaction."""
    raw = conn.connection.driver_connection
    assert raw is not None
    count = 0
    statement = f"COPY {table} ({', '.join(columns)}) FROM STDIN"  # identifiers are ours
    with raw.cursor() as cursor, cursor.copy(statement) as copy:
        for row in rows:
            copy.write_row([_copy_value(v) for v in row])
            count += 1
    return count


def copy_frame(conn: Connection, table: str, frame: pd.DataFrame) -> int:
    """COPY a DataFrame (columns named as in ``table``) as CSV written by Arrow.

    Row-by-row COPY costs ~7 µs a value in Python, pandas' to_csv ~1 µs, Arrow's
    C++ writer a sixth of that: for a million assignments that is the difference
    between minutes and seconds. Nulls become unquoted empty fields (NULL); text
    is quoted, so an empty string stays an empty string.
    """
    if len(frame) == 0:
        return 0
    raw = conn.connection.driver_connection
    assert raw is not None
    table_ = pa.Table.from_pandas(frame, preserve_index=False)
    sink = pa.BufferOutputStream()
    pa_csv.write_csv(table_, sink, write_options=pa_csv.WriteOptions(include_header=False))
    statement = f"COPY {table} ({', '.join(frame.columns)}) FROM STDIN WITH (FORMAT csv)"
    with raw.cursor() as cursor, cursor.copy(statement) as copy:
        copy.write(memoryview(sink.getvalue()))
    return len(frame)


def _copy_value(value: Any) -> Any:
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float) and np.isnan(value):
        return None
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    return value


# -- binary COPY ------------------------------------------------------------------------
_SIGNATURE = b"PGCOPY\n\xff\r\n\x00" + b"\x00" * 8  # signature, flags, no extension
_TRAILER = b"\xff\xff"
#: Microseconds from the Unix epoch to PostgreSQL's (2000-01-01 UTC).
_PG_EPOCH_US = 946_684_800_000_000
#: Type name (``format_type``) → big-endian NumPy type of fixed-width values.
_FIXED = {
    "bigint": ">i8",
    "integer": ">i4",
    "smallint": ">i2",
    "double precision": ">f8",
    "real": ">f4",
    "boolean": "u1",
    "timestamp with time zone": ">i8",
}
_TEXT = ("text", "character varying", "character", "name")
#: Rows encoded at once: bounds the index arrays of one step to ~100 MB.
_CHUNK_ROWS = 100_000


def table_types(conn: Connection, table: str) -> dict[str, str]:
    """Column → type name (``format_type``, typmods dropped) of a table or temp table."""
    rows = conn.execute(
        text(
            "SELECT attname, format_type(atttypid, NULL) FROM pg_attribute "
            "WHERE attrelid = CAST(:t AS regclass) AND attnum > 0 AND NOT attisdropped"
        ),
        {"t": table},
    ).all()
    return {str(name): str(kind) for name, kind in rows}


def copy_binary(
    conn: Connection,
    table: str,
    frame: pd.DataFrame,
    types: dict[str, str] | None = None,
    progress: Callable[[int], None] | None = None,
) -> int:
    """COPY a DataFrame (columns named as in ``table``) in PostgreSQL's binary format.

    Column types are read from the catalog unless given. Values: numbers (NaN,
    None or pd.NA are NULL), text, timestamps (pandas datetimes or ISO strings),
    and geometries as shapely objects, WKB bytes or hex EWKB strings. A type
    without an encoder here falls back to :func:`copy_frame`'s CSV.
    ``progress(rows)`` is told the rows sent so far after each chunk.
    """
    if len(frame) == 0:
        return 0
    types = types or table_types(conn, table)
    kinds = [types[c] for c in frame.columns]
    if not all(k in _FIXED or k in _TEXT or k == "geometry" for k in kinds):
        return copy_frame(conn, table, frame)
    raw = conn.connection.driver_connection
    assert raw is not None
    statement = f"COPY {table} ({', '.join(frame.columns)}) FROM STDIN WITH (FORMAT binary)"
    with raw.cursor() as cursor, cursor.copy(statement) as copy:
        copy.write(_SIGNATURE)
        for start in range(0, len(frame), _CHUNK_ROWS):
            chunk = frame.iloc[start : start + _CHUNK_ROWS]
            fields = [_field(chunk[c], k) for c, k in zip(chunk, kinds, strict=True)]
            copy.write(encode_tuples(fields))
            if progress is not None:
                progress(start + len(chunk))
        copy.write(_TRAILER)
    return len(frame)


def encode_tuples(fields: list[tuple[np.ndarray, np.ndarray, np.ndarray]]) -> memoryview:
    """Binary COPY tuples from columns given as (payload bytes, offsets, null mask).

    ``payload[offsets[i]:offsets[i + 1]]`` is row i's value; a null row has none.
    Every byte is placed by one vectorised scatter per column: no Python per row.
    """
    n = len(fields[0][2])
    sizes = [np.diff(offsets) for _, offsets, _ in fields]
    row_size = 2 + sum(4 + size for size in sizes)
    row_start = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(row_size, out=row_start[1:])
    out = np.empty(int(row_start[-1]), dtype=np.uint8)
    count = np.frombuffer(np.array(len(fields), dtype=">i2").tobytes(), dtype=np.uint8)
    out[row_start[:-1, None] + np.arange(2)] = count
    at = row_start[:-1] + 2
    for (payload, offsets, null), size in zip(fields, sizes, strict=True):
        length = np.where(null, -1, size).astype(">i4")
        out[at[:, None] + np.arange(4)] = length.view(np.uint8).reshape(n, 4)
        at = at + 4
        total = int(offsets[-1])
        if total:
            shift = np.repeat(at - offsets[:-1], size)
            out[np.arange(total, dtype=np.int64) + shift] = payload[:total]
        at = at + size
    return memoryview(out.data)


def _field(values: pd.Series, kind: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(payload, offsets, null) of one column for :func:`encode_tuples`."""
    if kind in _TEXT:
        return _varlen(_text_array(values))
    if kind == "geometry":
        return _geometries(values)
    dtype = np.dtype(_FIXED[kind])
    if kind == "timestamp with time zone":
        moments = pd.to_datetime(values, utc=True, format="ISO8601")
        null = moments.isna().to_numpy()
        micros = moments.to_numpy(dtype="datetime64[us]").astype(np.int64) - _PG_EPOCH_US
        data = np.where(null, 0, micros).astype(dtype)
    elif kind == "boolean":
        flags = values.astype("boolean")
        null = flags.isna().to_numpy()
        data = flags.fillna(False).to_numpy(dtype=bool).astype(dtype)
    else:
        numbers = pd.to_numeric(values, errors="raise")
        null = numbers.isna().to_numpy()
        filled = numbers.to_numpy(dtype=float, na_value=0.0) if dtype.kind == "f" else None
        if filled is None:
            filled = numbers.fillna(0).to_numpy().astype(np.int64)
        data = np.asarray(filled).astype(dtype)
    width = dtype.itemsize
    size = np.where(null, 0, width)
    offsets = np.zeros(len(values) + 1, dtype=np.int64)
    np.cumsum(size, out=offsets[1:])
    payload = data.view(np.uint8).reshape(-1, width)[~null].ravel()
    return payload, offsets, null


def _text_array(values: pd.Series) -> pa.Array:
    """Text as Arrow strings: pandas' Arrow-backed ``str`` columns as they are, others converted.

    Going through Python objects (``astype(object)``) first would make a million
    str objects only for Arrow to copy their bytes again.
    """
    try:
        array = pa.array(values, from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        array = None
    if array is None or not (
        pa.types.is_string(array.type) or pa.types.is_large_string(array.type)
    ):
        array = pa.array(values.astype(object), type=pa.string(), from_pandas=True)
    return array


def _varlen(array: pa.Array) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Arrow's buffers of a string or binary array (32- or 64-bit offsets): no copy per value."""
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    array = pa.concat_arrays([array]) if array.offset else array  # offsets from 0
    wide = pa.types.is_large_string(array.type) or pa.types.is_large_binary(array.type)
    _, offset_buffer, data_buffer = array.buffers()
    offsets = np.frombuffer(offset_buffer, dtype=np.int64 if wide else np.int32)
    offsets = offsets[: len(array) + 1].astype(np.int64)
    payload = (
        np.frombuffer(data_buffer, dtype=np.uint8)
        if data_buffer is not None
        else np.empty(0, dtype=np.uint8)
    )
    null = array.is_null().to_numpy(zero_copy_only=False)
    return payload, offsets, null


def _geometries(values: pd.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """EWKB, which is PostGIS's binary input; from shapely objects, bytes or hex strings."""
    import shapely

    if isinstance(values.dtype, pd.ArrowDtype) and pa.types.is_binary(values.dtype.pyarrow_dtype):
        return _varlen(pa.array(values))  # EWKB already, e.g. from :func:`ewkb_points`
    items = values.to_numpy(dtype=object)
    present = pd.notna(values).to_numpy()
    first = items[present][0] if present.any() else None
    if isinstance(first, str):
        wkb = [bytes.fromhex(v) if p else None for v, p in zip(items, present, strict=True)]
    elif first is None or isinstance(first, bytes | bytearray):
        wkb = [v if p else None for v, p in zip(items, present, strict=True)]
    else:
        wkb = list(shapely.to_wkb(items, include_srid=True))
    return _varlen(pa.array(wkb, type=pa.binary()))


def ewkb_points(lon: np.ndarray, lat: np.ndarray, srid: int, present: np.ndarray) -> pd.Series:
    """Points as EWKB (NULL where not ``present``), built as bytes with NumPy.

    A point's EWKB is 25 fixed bytes — little-endian flag, type 1 with the SRID
    flag, the SRID, x, y — so a million of them are one structured array, not a
    million shapely objects and ``to_wkb`` calls. The column goes to
    :func:`copy_binary` as is.
    """
    n, present = len(lon), np.asarray(present, dtype=bool)
    layout = np.dtype(
        [("order", "u1"), ("kind", "<u4"), ("srid", "<i4"), ("x", "<f8"), ("y", "<f8")]
    )
    records = np.zeros(int(present.sum()), dtype=layout)  # a NULL takes no bytes
    records["order"], records["kind"], records["srid"] = 1, 0x20000001, srid
    records["x"], records["y"] = np.asarray(lon)[present], np.asarray(lat)[present]
    offsets = np.zeros(n + 1, dtype=np.int32)
    np.cumsum(present * layout.itemsize, out=offsets[1:])
    valid = pa.py_buffer(np.packbits(present, bitorder="little").tobytes())
    array = pa.Array.from_buffers(
        pa.binary(), n, [valid, pa.py_buffer(offsets.tobytes()), pa.py_buffer(records.tobytes())]
    )
    return pd.Series(pd.arrays.ArrowExtensionArray(array))


def read_binary(conn: Connection, query: str, dtypes: Sequence[str]) -> np.ndarray:
    """Rows of ``query`` (non-null fixed-width columns only) as a structured NumPy array.

    ``COPY (query) TO STDOUT`` in binary: every tuple has the same layout, so
    the whole result is one ``frombuffer`` away (``dtypes`` big-endian, e.g. ``>i8``).
    """
    raw = conn.connection.driver_connection
    assert raw is not None
    buffer = bytearray()
    with raw.cursor() as cursor, cursor.copy(f"COPY ({query}) TO STDOUT (FORMAT binary)") as copy:
        for block in copy:
            buffer += block
    layout = [("count", ">i2")]
    for i, kind in enumerate(dtypes):
        layout += [(f"len{i}", ">i4"), (f"f{i}", kind)]
    body = memoryview(buffer)[len(_SIGNATURE) : len(buffer) - len(_TRAILER)]
    rows = np.frombuffer(body, dtype=np.dtype(layout))
    for i, kind in enumerate(dtypes):  # a NULL (-1) or another width breaks the fixed layout
        if (rows[f"len{i}"] != np.dtype(kind).itemsize).any():
            raise ValueError(f"column {i} of the COPY is not a non-null {kind}: {query}")
    return rows


# -- index upkeep ------------------------------------------------------------------------
#: Below this many rows, a batch keeps the indexes in place (cheap, and no lock is taken).
DEFER_INDEXES_FROM = 100_000
#: ... and when it is at least this share of the table's rows.
DEFER_INDEXES_SHARE = 0.5


@contextmanager
def deferred_indexes(conn: Connection, tables: Sequence[str], rows: int) -> Iterator[bool]:
    """Drop the plain secondary indexes of ``tables`` for a large load; rebuild them after.

    Only when ``rows`` is at least :data:`DEFER_INDEXES_FROM` and at least half of
    the largest table (``pg_class.reltuples``, :data:`DEFER_INDEXES_SHARE`): then
    one sorted build per index beats a million single inserts into each. Unique
    indexes stay (the primary key, ``ON CONFLICT`` targets). Everything happens
    in the caller's transaction, so a failed load rolls the drops back too;
    meanwhile the tables are locked (``DROP INDEX``), which a load of this size may take.
    Yields whether the indexes were deferred.
    """
    existing = conn.execute(
        text("SELECT coalesce(max(reltuples), 0) FROM pg_class WHERE relname = ANY(:t)"),
        {"t": list(tables)},
    ).scalar_one()
    if rows < DEFER_INDEXES_FROM or rows < DEFER_INDEXES_SHARE * float(existing):
        yield False
        return
    # One deferring load at a time: a second one reading the definitions while the first
    # drops and rebuilds them failed ("cache lookup failed for attribute"); it waits here
    # until the first commits, then finds the rebuilt indexes.
    conn.execute(text("SELECT pg_advisory_xact_lock(hashtext('gridmap.deferred_indexes'))"))
    definitions = conn.execute(
        text(
            "SELECT i.relname, pg_get_indexdef(x.indexrelid) FROM pg_index x "
            "JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid "
            "WHERE t.relname = ANY(:t) AND t.relkind = 'r' AND NOT x.indisunique "
            "AND pg_table_is_visible(t.oid) ORDER BY i.relname"
        ),
        {"t": list(tables)},
    ).all()
    for name, _ in definitions:
        conn.execute(text(f'DROP INDEX "{name}"'))  # names read from the catalog
    yield True
    for _, definition in definitions:
        conn.execute(text(definition))
