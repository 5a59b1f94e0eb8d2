"""Incident CSVs read in chunks, with what a whole-file read would have said about each row.

A city's year of hotline tickets is millions of rows: read at once, as text
columns in pandas, a 10-million-row export would need tens of gigabytes before
a single row is cleaned. :class:`CsvChunks` reads it ``chunk_rows`` at a time
with the same parser options as :func:`gis.tables.read_table`, after one pass
over the bytes that checks the encoding (detected or given, the same errors)
and computes the file's SHA-256. :class:`IdLedger` remembers every id seen so
far, so that a repeated id is refused as a duplicate even when its first
occurrence was in an earlier chunk — exactly what the whole-file cleaning says.
"""

from __future__ import annotations

import codecs
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from gis.errors import GridmapError, ValidationError
from gis.tables import CSV_SUFFIXES, TableSource, decode_text

__all__ = ["DEFAULT_CHUNK_ROWS", "CsvChunks", "IdLedger", "duplicate_reason", "is_streamable"]

#: Rows read, cleaned and stored at a time: ~100 MB of text columns and their results.
DEFAULT_CHUNK_ROWS = 200_000
_BLOCK = 1 << 22  # bytes per read of the encoding and checksum pass


def is_streamable(path: str | Path) -> bool:
    """Delimited text (CSV, TSV): the formats read in chunks; workbooks and JSON are not."""
    return Path(path).suffix.lower() in CSV_SUFFIXES


@dataclass
class CsvChunks:
    """A delimited incident file, read ``chunk_rows`` rows at a time as text columns.

    Opening checks the file as :func:`gis.tables.read_table` would (missing,
    empty, wrong or undetectable encoding: the same errors) in one pass that
    also hashes it; iterating yields ``(first_row, frame)``, ``first_row`` being
    the 0-based offset of the frame's first data row in the file.
    """

    path: Path
    encoding: str | None = None
    chunk_rows: int = DEFAULT_CHUNK_ROWS
    source: TableSource = field(init=False)
    sha256: str = field(init=False)
    #: Lines after the header: the data rows unless quoted cells span lines.
    rows_hint: int = field(init=False)

    def __post_init__(self) -> None:
        self.path = Path(self.path)
        if not self.path.exists():
            raise GridmapError(f"file not found: {self.path}")
        if not self.path.is_file():
            raise ValidationError(f"文件不存在 file not found: {self.path}")
        used, self.sha256, lines = _check_bytes(self.path, self.encoding)
        self.rows_hint = max(lines - 1, 0)
        self.source = TableSource(
            self.path, "csv", encoding=used, encoding_detected=self.encoding is None
        )

    def __iter__(self) -> Iterator[tuple[int, pd.DataFrame]]:
        options = {
            "sep": CSV_SUFFIXES[self.path.suffix.lower()],
            "dtype": str,
            "keep_default_na": False,
            "skipinitialspace": True,
            "encoding": self.source.encoding,
        }
        offset = 0
        try:
            with pd.read_csv(self.path, chunksize=self.chunk_rows, **options) as reader:
                for frame in reader:
                    frame.columns = [str(c).strip().lstrip("\ufeff") for c in frame.columns]
                    yield offset, frame.reset_index(drop=True)
                    offset += len(frame)
        except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
            raise ValidationError(f"{self.path.name}: 无法读取 not a readable CSV: {exc}") from exc


def _check_bytes(path: Path, encoding: str | None) -> tuple[str, str, int]:
    """(encoding used, SHA-256, lines) in one pass; the whole-file errors of ``decode_text``.

    UTF-8 (with or without a BOM) or a given encoding is checked block by block
    with an incremental decoder. Only a file that is not UTF-8 and has no
    encoding given is read whole, for charset detection — GBK exports from an
    office's Excel, not the city's millions of rows — and so is a file that
    fails its check, for the error message to name the byte exactly as before.
    """
    digest, lines, blank, last = hashlib.sha256(), 0, True, b"\n"
    with path.open("rb") as stream:
        first = stream.read(_BLOCK)
        used = encoding or ("utf-8-sig" if first.startswith(codecs.BOM_UTF8) else "utf-8")
        try:
            decoder = codecs.getincrementaldecoder(used)(errors="strict")
        except LookupError:
            decoder = None
        block = first
        while block:
            digest.update(block)
            lines += block.count(b"\n")
            last = block[-1:]
            blank = blank and not block.strip()
            if decoder is not None:
                try:
                    decoder.decode(block)
                except UnicodeDecodeError:
                    decoder = None
            block = stream.read(_BLOCK)
        if decoder is not None:
            try:
                decoder.decode(b"", final=True)
            except UnicodeDecodeError:
                decoder = None
    if blank:
        raise ValidationError(f"{path.name} 是空文件 is empty: no header, no rows")
    if decoder is None:  # not what was tried: detect, or fail, exactly as a whole read does
        _, used = decode_text(path.read_bytes(), path.name, encoding)
    return used, digest.hexdigest(), lines + (last != b"\n")


def duplicate_reason(external_id: str, first_row: int) -> str:
    """The reason :func:`gis.incidents.clean_incidents` gives a repeated id (CSV line numbers)."""
    return f"duplicate id {external_id!r} in this file (first at row {first_row})"


@dataclass
class IdLedger:
    """Every non-empty id of a file so far, with the CSV line it first appeared on.

    Kept as two independent 64-bit hashes per id (24 bytes with the line, so
    ~240 MB for 10 million ids instead of gigabytes of Python strings): two ids
    are taken as equal only when both hashes agree, a chance of about 10⁻²⁵ for
    ten million distinct ids. Sorted runs, merged as they grow, keep each
    look-up a binary search.
    """

    _runs: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = field(default_factory=list)

    def first_rows(self, ids: pd.Series, rows: np.ndarray) -> np.ndarray:
        """For each id: the CSV line where it appeared first (-1: this is its first time).

        ``ids`` are a chunk's ids in file order (``""`` for none, never a duplicate),
        ``rows`` their CSV lines; the chunk's own ids are remembered afterwards.
        """
        values = ids.to_numpy(dtype=object)
        key, check = _hashes(values)
        first = np.full(len(values), -1, dtype=np.int64)
        for run_key, run_check, run_rows in self._runs:
            left = np.searchsorted(run_key, key)
            for at in (left, left + 1):  # the next one too: two ids may share the first hash
                at = np.minimum(at, len(run_key) - 1)
                hit = (run_key[at] == key) & (run_check[at] == check) & (first < 0)
                first[hit] = run_rows[at[hit]]
        # repeats inside the chunk point to their first occurrence in it
        present = values != ""
        local = pd.Series(values).duplicated(keep="first").to_numpy() & present & (first < 0)
        if local.any():
            first_of = pd.Series(rows, index=values)[~pd.Index(values).duplicated(keep="first")]
            first[local] = first_of.loc[values[local]].to_numpy()
        new = present & (first < 0)
        self._add(key[new], check[new], np.asarray(rows, dtype=np.int64)[new])
        return first

    def _add(self, key: np.ndarray, check: np.ndarray, rows: np.ndarray) -> None:
        order = np.argsort(key, kind="stable")
        self._runs.append((key[order], check[order], rows[order]))
        while len(self._runs) > 1 and len(self._runs[-2][0]) <= 2 * len(self._runs[-1][0]):
            (k1, c1, r1), (k2, c2, r2) = self._runs.pop(-2), self._runs.pop(-1)
            keys = np.concatenate([k1, k2])
            order = np.argsort(keys, kind="stable")  # two sorted runs: a linear merge
            self._runs.append(
                (keys[order], np.concatenate([c1, c2])[order], np.concatenate([r1, r2])[order])
            )


def _hashes(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two 64-bit hashes of each text, under different keys."""
    key = pd.util.hash_array(values, hash_key="gridmap-ids-0001", categorize=False)
    check = pd.util.hash_array(values, hash_key="gridmap-ids-0002", categorize=False)
    return key, check
