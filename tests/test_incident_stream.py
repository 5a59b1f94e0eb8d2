"""Incident CSVs read in chunks: the same text, encodings, errors and duplicates as read whole."""

import hashlib

import numpy as np
import pandas as pd
import pytest

from gis.errors import ValidationError
from gis.incident_stream import CsvChunks, IdLedger
from gis.tables import read_table

ROWS = 'id,address,lon\n1, 魏都区建设路12号,113.8\n2,,\n3,"许昌, 东城区",0101\n4,x,1\n5,y,2\n'


def _whole(chunks: CsvChunks) -> pd.DataFrame:
    parts = []
    for offset, frame in chunks:
        assert offset == sum(len(p) for p in parts)
        parts.append(frame)
    return pd.concat(parts, ignore_index=True)


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gb18030"])
def test_chunks_join_to_what_read_table_reads(tmp_path, encoding):
    path = tmp_path / "calls.csv"
    path.write_bytes(ROWS.encode(encoding))
    chunks = CsvChunks(path, chunk_rows=2)
    expected, source = read_table(path)
    pd.testing.assert_frame_equal(_whole(chunks), expected)
    assert chunks.source == source and chunks.source.encoding == encoding
    assert chunks.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert chunks.rows_hint == 5
    assert list(frame["lon"].iat[0] for _, frame in chunks)[1] == "0101"  # text, never a number


def test_header_only_gives_one_empty_chunk(tmp_path):
    path = tmp_path / "empty_rows.csv"
    path.write_text("id,lon,lat\n", encoding="utf-8")
    (only,) = list(CsvChunks(path))
    assert only[0] == 0 and list(only[1].columns) == ["id", "lon", "lat"] and len(only[1]) == 0


@pytest.mark.parametrize(
    ("content", "encoding"),
    [(b"  \n\n", None), (ROWS.encode("gb18030"), "utf-8"), (ROWS.encode(), "no-such-codec")],
)
def test_errors_are_those_of_a_whole_read(tmp_path, content, encoding):
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    with pytest.raises(ValidationError) as whole:
        read_table(path, encoding=encoding)
    with pytest.raises(ValidationError) as streamed:
        CsvChunks(path, encoding=encoding)
    assert str(streamed.value) == str(whole.value)


def test_a_ragged_row_is_a_readable_error(tmp_path):
    path = tmp_path / "ragged.csv"
    path.write_text("id,lon\n1,2\n3,4,5,6\n", encoding="utf-8")
    with pytest.raises(ValidationError, match="not a readable CSV"):
        list(CsvChunks(path, chunk_rows=1))


def test_the_ledger_finds_every_repeat_and_its_first_line():
    rng = np.random.default_rng(7)
    ids = pd.Series(rng.integers(0, 3_000, 10_000).astype(str))
    ids[rng.random(len(ids)) < 0.05] = ""  # no id: never a duplicate
    lines = np.arange(2, len(ids) + 2)
    first_line = pd.Series(lines, index=ids).groupby(level=0).min()
    expected = np.where(
        ids.duplicated(keep="first") & (ids != ""), first_line.loc[ids].to_numpy(), -1
    )
    ledger = IdLedger()
    found = np.concatenate(
        [
            ledger.first_rows(ids.iloc[s : s + 700].reset_index(drop=True), lines[s : s + 700])
            for s in range(0, len(ids), 700)
        ]
    )
    np.testing.assert_array_equal(found, expected)
    assert (found >= 0).sum() > 5_000  # the check has repeats to find
