"""Office tables in and out: CSV in UTF-8 or GB18030/GBK, and Excel workbooks.

Chinese offices exchange ``.xlsx`` files and CSVs saved by Excel, which are
GBK on a Chinese Windows and UTF-8 with a BOM elsewhere. Every reader of a
table goes through :func:`read_table`, which detects the encoding (or takes
the one given), reads every cell as text — a phone number or a code like
``0101`` must never become a float or a date — and returns a
:class:`TableSource` saying what it used, so a command can tell the user.
:func:`write_table` writes what Excel opens without mojibake: CSV with a
UTF-8 BOM, or ``.xlsx`` with a frozen header row.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from io import StringIO
from pathlib import Path

import pandas as pd

from gis.errors import ValidationError

__all__ = [
    "CSV_SUFFIXES",
    "EXCEL_SUFFIXES",
    "TABLE_SUFFIXES",
    "TableSource",
    "cell_text",
    "decode_text",
    "detect_encoding",
    "header_key",
    "named_columns",
    "raw_row",
    "read_table",
    "write_table",
]

#: Delimited text tables, and the separator each uses.
CSV_SUFFIXES = {".csv": ",", ".txt": ",", ".tsv": "\t"}
#: Workbooks python-calamine reads (only ``.xlsx`` is written).
EXCEL_SUFFIXES = (".xlsx", ".xlsm", ".xls", ".ods")
TABLE_SUFFIXES = (*CSV_SUFFIXES, *EXCEL_SUFFIXES)

#: Encodings detection chooses between: GB18030 is a superset of GBK and GB2312,
#: so one decoder reads all three without loss.
_CANDIDATES = ("utf_8", "gb18030")
_MAX_WIDTH = 60


@dataclass(frozen=True)
class TableSource:
    """Where a table came from: the file, its format and the encoding or sheet used.

    ``encoding`` is set for text files (``utf-8``, ``utf-8-sig`` when a BOM was
    found, ``gb18030``…) and ``encoding_detected`` says whether it was detected
    or given; ``sheet`` is the worksheet name for workbooks.
    """

    path: Path
    format: str
    encoding: str | None = None
    encoding_detected: bool = False
    sheet: str | None = None

    def describe(self) -> str:
        """One line for the terminal, Chinese first: which encoding or sheet was read."""
        if self.sheet is not None:
            return f"工作表 sheet: {self.sheet}"
        how = "自动识别 detected" if self.encoding_detected else "指定 given"
        return f"编码 encoding: {self.encoding} ({how})"


# -- encodings -----------------------------------------------------------------------
def detect_encoding(data: bytes) -> str:
    """The encoding of ``data``: ``utf-8-sig`` (BOM), ``utf-8`` or ``gb18030``.

    UTF-8 is tried strictly first: a multi-byte Chinese text that decodes as
    UTF-8 is UTF-8 in practice. Otherwise charset-normalizer chooses among the
    candidates, so a Latin-1 export is refused instead of read as nonsense.

    Raises
    ------
    ValidationError
        When the bytes are neither UTF-8 nor GB18030/GBK.
    """
    if data.startswith(b"\xef\xbb\xbf"):
        return "utf-8-sig"
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    else:
        return "utf-8"
    from charset_normalizer import from_bytes

    best = from_bytes(data, cp_isolation=list(_CANDIDATES)).best()
    if best is None:
        raise ValidationError(
            "文件编码无法识别 encoding not recognised: neither UTF-8 nor GB18030/GBK; "
            "pass --encoding with the encoding it was saved in"
        )
    return "gb18030" if best.encoding in ("gb18030", "gbk", "gb2312") else best.encoding


def decode_text(data: bytes, name: str, encoding: str | None = None) -> tuple[str, str]:
    """Decode a text file's bytes; returns the text (without BOM) and the encoding used.

    With ``encoding=None`` the encoding is detected (:func:`detect_encoding`);
    a given encoding is applied strictly and a wrong one is an error naming the
    first bad byte and, when detection would read the file, the encoding it found.
    """
    used = encoding or detect_encoding(data)
    try:
        text = data.decode(used)
    except LookupError as exc:
        raise ValidationError(f"unknown encoding {used!r}") from exc
    except UnicodeDecodeError as exc:
        raise ValidationError(_wrong_encoding(data, name, used, exc)) from exc
    return text.lstrip("\ufeff"), used


def _wrong_encoding(data: bytes, name: str, used: str, exc: UnicodeDecodeError) -> str:
    message = (
        f"{name} 不是 {used} 编码 is not valid {used} "
        f"(byte 0x{data[exc.start]:02x} at offset {exc.start})"
    )
    try:
        found = detect_encoding(data)
    except ValidationError:
        return message
    return f"{message}; it reads as {found}: drop --encoding to detect it"


# -- reading -------------------------------------------------------------------------
def read_table(
    path: str | Path, *, sheet: str | int | None = None, encoding: str | None = None
) -> tuple[pd.DataFrame, TableSource]:
    """Read a CSV or an Excel workbook with every cell as text.

    Parameters
    ----------
    path : path-like
        ``.csv``/``.txt``/``.tsv`` or ``.xlsx``/``.xlsm``/``.xls``/``.ods``.
    sheet : str or int, optional
        Worksheet name or 0-based index (workbooks only); default the first sheet.
        A name made of digits that is not a sheet's name is taken as an index.
    encoding : str, optional
        Text files only: the encoding to use instead of detecting it.

    Returns
    -------
    (pandas.DataFrame, TableSource)
        Columns named by the header row (stripped), values ``str`` (empty
        cells ``""``), and what was read.

    Raises
    ------
    ValidationError
        Unknown suffix, missing or unreadable file, wrong encoding, missing sheet.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in TABLE_SUFFIXES:
        raise ValidationError(
            f"{path.name}: 不支持的表格格式 unsupported table format {suffix or '(none)'}; "
            f"expected one of {', '.join(TABLE_SUFFIXES)}"
        )
    if not path.is_file():
        raise ValidationError(f"文件不存在 file not found: {path}")
    if suffix in EXCEL_SUFFIXES:
        return _read_workbook(path, sheet)
    return _read_delimited(path, CSV_SUFFIXES[suffix], encoding)


def _read_delimited(
    path: Path, separator: str, encoding: str | None
) -> tuple[pd.DataFrame, TableSource]:
    data = path.read_bytes()
    if not data.strip():
        raise ValidationError(f"{path.name} 是空文件 is empty: no header, no rows")
    text, used = decode_text(data, path.name, encoding)
    try:
        frame = pd.read_csv(
            StringIO(text), sep=separator, dtype=str, keep_default_na=False, skipinitialspace=True
        )
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise ValidationError(f"{path.name}: 无法读取 not a readable CSV: {exc}") from exc
    frame.columns = [str(c).strip() for c in frame.columns]
    source = TableSource(path, "csv", encoding=used, encoding_detected=encoding is None)
    return frame, source


def _read_workbook(path: Path, sheet: str | int | None) -> tuple[pd.DataFrame, TableSource]:
    from python_calamine import CalamineWorkbook

    try:
        book = CalamineWorkbook.from_path(str(path))
    except Exception as exc:  # calamine raises its own errors, zip and XML errors alike
        raise ValidationError(
            f"{path.name}: 无法读取工作簿 not a readable workbook: {exc}"
        ) from exc
    name = _sheet_name(path.name, book.sheet_names, sheet)
    try:
        rows = book.get_sheet_by_name(name).to_python(skip_empty_area=False)
    except Exception as exc:
        raise ValidationError(
            f"{path.name}: 无法读取工作表 cannot read sheet {name!r}: {exc}"
        ) from exc
    finally:
        book.close()
    return _frame_from_rows(path.name, rows), TableSource(path, "xlsx", sheet=name)


def _sheet_name(file_name: str, names: list[str], sheet: str | int | None) -> str:
    if not names:
        raise ValidationError(f"{file_name}: 工作簿没有工作表 the workbook has no sheets")
    if sheet is None:
        return names[0]
    if isinstance(sheet, str) and sheet in names:
        return sheet
    if isinstance(sheet, int) or (sheet.isascii() and sheet.isdigit()):
        index = int(sheet)
        if 0 <= index < len(names):
            return names[index]
    raise ValidationError(f"{file_name}: 没有工作表 no sheet {sheet!r}; sheets: {', '.join(names)}")


def _frame_from_rows(file_name: str, rows: list[list]) -> pd.DataFrame:
    rows = [row for row in rows if any(_cell_text(v) for v in row)]
    if not rows:
        raise ValidationError(f"{file_name}: 工作表是空的 the sheet is empty: no header, no rows")
    header = [_cell_text(v).strip() for v in rows[0]]
    width = max(i + 1 for i, h in enumerate(header) if h) if any(header) else 0
    if width == 0:
        raise ValidationError(f"{file_name}: 第一行不是表头 the first row has no column names")
    names = _unique_names(header[:width])
    body = [list(row[:width]) + [""] * (width - len(row)) for row in rows[1:]]
    frame = pd.DataFrame(body, columns=names, dtype=object)
    for column in frame.columns:
        frame[column] = _column_text(frame[column])
    return frame


def _unique_names(header: list[str]) -> list[str]:
    """Empty names become ``column_N``, repeats get ``.1``, ``.2`` as pandas does for CSV."""
    seen: dict[str, int] = {}
    names = []
    for i, name in enumerate(header, start=1):
        name = name or f"column_{i}"
        count = seen.get(name, 0)
        seen[name] = count + 1
        names.append(f"{name}.{count}" if count else name)
    return names


def _column_text(values: pd.Series) -> pd.Series:
    if all(type(v) is str for v in values):  # the common case, kept fast
        return values.astype(str)
    return pd.Series([_cell_text(v) for v in values], index=values.index, dtype=str)


def _cell_text(value: object) -> str:
    """A workbook cell as the text a user typed: 13800138000, not 13800138000.0."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float):
        if math.isnan(value):
            return ""
        return str(int(value)) if value.is_integer() and abs(value) < 1e16 else repr(value)
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ", timespec="seconds")
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    return str(value)


# -- writing -------------------------------------------------------------------------
# -- headers and cells of office tables -------------------------------------------------
def header_key(word: str) -> str:
    """A header word as matched: without spaces, lower case ("Area Code" = "areacode")."""
    return re.sub(r"\s", "", word).lower()


def named_columns(
    frame: pd.DataFrame,
    header_words: Mapping[str, Sequence[str]],
    required: Sequence[str],
    labels: Mapping[str, str],
    what: tuple[str, str],
) -> pd.DataFrame:
    """``frame`` with its headers renamed to column names by ``header_words``.

    A header such as "姓名 / name", as gridmap exports it, is matched by either part.

    Raises
    ------
    ValidationError
        If a ``required`` column has no header; the message names it with its
        ``labels`` entry and the table's names ``what`` (e.g. ("花名册", "roster")).
    """
    words = {header_key(w): column for column, ws in header_words.items() for w in ws}
    renamed: dict[str, str] = {}
    for header in frame.columns:
        for part in str(header).split("/"):
            column = words.get(header_key(part))
            if column is not None and column not in renamed.values():
                renamed[header] = column
                break
    missing = [c for c in required if c not in renamed.values()]
    if missing:
        wanted = ", ".join(f"{c} ({labels[c]})" for c in missing)
        raise ValidationError(
            f"{what[0]}缺少列 / the {what[1]} lacks columns: {wanted}; found {list(frame.columns)}"
        )
    return frame[list(renamed)].rename(columns=renamed)


def cell_text(value: object) -> str | None:
    """A cell as text: None for blanks; whole numbers without Excel's ".0" (phone numbers
    and codes stored as 1.38e10 or "12.0")."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):  # type: ignore[arg-type]
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, pd.Timestamp):
        return value.date().isoformat()
    text = str(value).strip()
    if text.endswith(".0") and text[:-2].isascii() and text[:-2].isdigit():
        text = text[:-2]
    return text or None


def raw_row(frame: pd.DataFrame, offset: int) -> dict:
    """Row ``offset`` as read, to keep beside the reason it was refused."""
    return {str(k): cell_text(v) for k, v in frame.iloc[offset].items()}


def write_table(frame: pd.DataFrame, path: str | Path, *, excel_csv: bool = True) -> Path:
    """Write ``frame`` as ``.csv`` (UTF-8, with a BOM when ``excel_csv``) or ``.xlsx``.

    The workbook has one sheet, the header row frozen and column widths fitted
    to the longest of the header and the first rows (CJK characters count double).
    Timezone-aware times are written as ISO text: Excel has no time zones, so
    callers convert to local time first (``gis.vocabulary.LOCAL_TZ``).
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".csv":
        frame.to_csv(path, index=False, encoding="utf-8-sig" if excel_csv else "utf-8")
    elif suffix == ".xlsx":
        _write_xlsx(frame, path)
    else:
        raise ValidationError(
            f"{path.name}: 不支持的导出格式 unsupported output format {suffix or '(none)'}; "
            "expected .csv or .xlsx"
        )
    return path


def _write_xlsx(frame: pd.DataFrame, path: Path) -> None:
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter

    book = Workbook(write_only=True)  # rows stream to disk: a 100,000-row export stays small
    sheet = book.create_sheet("Sheet1")
    header = [str(c) for c in frame.columns]
    # Widths and the frozen row must be set before the first row is written.
    sample = frame.head(200)
    for i, name in enumerate(header, start=1):
        texts = [name, *(_display(v) for v in sample.iloc[:, i - 1])]
        sheet.column_dimensions[get_column_letter(i)].width = _width(texts)
    sheet.freeze_panes = "A2"
    bold = Font(bold=True)
    cells = []
    for name in header:
        cell = WriteOnlyCell(sheet, value=name)
        cell.font = bold
        cells.append(cell)
    sheet.append(cells)
    for row in frame.itertuples(index=False, name=None):
        sheet.append([_excel_value(v) for v in row])
    book.save(path)


def _excel_value(value: object) -> object:
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NaT:
        return None
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        return value.isoformat(sep=" ", timespec="seconds")
    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime()
    if hasattr(value, "item") and not isinstance(value, str):  # numpy scalars
        return value.item()
    return value


def _display(value: object) -> str:
    value = _excel_value(value)
    return "" if value is None else str(value)


def _width(texts: Iterable[str]) -> float:
    widest = max((_text_width(t) for t in texts), default=0)
    return float(min(max(widest + 2, 8), _MAX_WIDTH))


def _text_width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)
