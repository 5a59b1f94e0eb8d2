"""The incident category taxonomy: major classes and items with handling deadlines.

Zhenru (Putuo, Shanghai) sorts what residents raise into four classes —
城市运行 city operation, 公共管理 public management, 公共服务 public service,
公共安全 public safety — each with concrete items (乱停乱放 illegal parking,
飞线充电 flying-wire e-bike charging, …). Each deployment stores its own
taxonomy (``gridmap taxonomy import``); ``data/taxonomy.csv`` in the repository
is the default it starts from. A city's files use their own words for
categories: a category map (``source_value,code``) translates them.

Codes are text: ``01`` is a major class and ``0104`` an item of it, so the
item code starts with its class code (the same prefix rule as area codes).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from gis.errors import ValidationError
from gis.tables import TableSource, read_table

__all__ = [
    "TAXONOMY_COLUMNS",
    "CATEGORY_MAP_COLUMNS",
    "DEFAULT_TAXONOMY_PATH",
    "load_taxonomy",
    "read_taxonomy",
    "validate_taxonomy",
    "read_category_map",
    "category_lookup",
]

#: Columns of the taxonomy file, in order.
TAXONOMY_COLUMNS = [
    "major_code",
    "major_name_zh",
    "major_name_en",
    "code",
    "name_zh",
    "name_en",
    "deadline_hours",
]

#: ``data/taxonomy.csv`` of the repository this package sits in.
DEFAULT_TAXONOMY_PATH = Path(__file__).resolve().parent.parent / "data" / "taxonomy.csv"

#: Columns of a category map: a file's own category → a taxonomy code.
CATEGORY_MAP_COLUMNS = ("source_value", "code")

_TEXT = ["major_code", "major_name_zh", "major_name_en", "code", "name_zh", "name_en"]


def load_taxonomy(path: str | Path | None = None) -> pd.DataFrame:
    """Read and validate a category taxonomy file (see :func:`read_taxonomy`)."""
    return read_taxonomy(DEFAULT_TAXONOMY_PATH if path is None else path)[0]


def read_taxonomy(
    path: str | Path, *, sheet: str | int | None = None, encoding: str | None = None
) -> tuple[pd.DataFrame, TableSource]:
    """Read and validate a category taxonomy from CSV (UTF-8 or GBK) or XLSX.

    Parameters
    ----------
    path : path-like
        A table with a header row and the columns of :data:`TAXONOMY_COLUMNS`.
    sheet, encoding : optional
        As for :func:`gis.tables.read_table`.

    Returns
    -------
    (pandas.DataFrame, TableSource)
        One row per item, columns :data:`TAXONOMY_COLUMNS`; codes and names as
        ``str``, ``deadline_hours`` as ``int``; and what was read.

    Raises
    ------
    ValidationError
        When the file is missing or unreadable, or any row breaks a rule:
        codes present and unique, each item code starting with its major code,
        one name per major code, deadlines positive whole hours. ``problems``
        lists every row at fault (``row`` is the 1-based data row).
    """
    path = Path(path)
    try:
        frame, source = read_table(path, sheet=sheet, encoding=encoding)
    except ValidationError as exc:
        raise ValidationError(f"cannot read taxonomy {path.name}: {exc}") from exc
    return validate_taxonomy(frame, path.name), source


def validate_taxonomy(frame: pd.DataFrame, name: str = "taxonomy") -> pd.DataFrame:
    """Check a taxonomy given as text columns; returns it typed, or raises listing every problem."""
    missing = [c for c in TAXONOMY_COLUMNS if c not in frame.columns]
    if missing:
        raise ValidationError(
            f"taxonomy {name} lacks column(s) {', '.join(missing)}; "
            f"expected {', '.join(TAXONOMY_COLUMNS)}"
        )
    if frame.empty:
        raise ValidationError(f"taxonomy {name} has no items")
    frame = frame[TAXONOMY_COLUMNS].astype(str).copy()
    for column in TAXONOMY_COLUMNS:
        frame[column] = frame[column].str.strip()
    problems = _problems(frame)
    if problems:
        raise ValidationError(f"taxonomy {name} is invalid", problems)
    frame["deadline_hours"] = pd.to_numeric(frame["deadline_hours"]).astype("int64")
    return frame.reset_index(drop=True)


def _problems(frame: pd.DataFrame) -> list[dict]:
    problems: list[dict] = []
    seen: dict[str, int] = {}
    major_names: dict[str, tuple[str, str]] = {}
    for row, item in enumerate(frame.to_dict("records"), start=1):

        def problem(reason: str, row: int = row, item: dict = item) -> None:
            problems.append({"row": row, "code": item["code"] or None, "reason": reason})

        for column in _TEXT:
            if not item[column]:
                problem(f"empty {column}")
        code, major = item["code"], item["major_code"]
        if (code and not _digits(code)) or (major and not _digits(major)):
            problem("codes must be digits")
        if code and major and (not code.startswith(major) or code == major):
            problem(f"item code {code!r} does not extend its major code {major!r}")
        if code in seen:
            problem(f"duplicate code {code!r} (first in row {seen[code]})")
        elif code:
            seen[code] = row
        names = (item["major_name_zh"], item["major_name_en"])
        if major and major_names.setdefault(major, names) != names:
            problem(
                f"major code {major!r} has two names: {major_names[major][0]!r} and {names[0]!r}"
            )
        hours = pd.to_numeric(item["deadline_hours"], errors="coerce")
        if pd.isna(hours) or hours <= 0 or float(hours) != int(hours):
            problem(
                f"deadline_hours must be a positive whole number, got {item['deadline_hours']!r}"
            )
    return problems


def read_category_map(
    path: str | Path,
    taxonomy: pd.DataFrame,
    *,
    sheet: str | int | None = None,
    encoding: str | None = None,
) -> tuple[dict[str, str], TableSource]:
    """Read a category map (columns :data:`CATEGORY_MAP_COLUMNS`) checked against ``taxonomy``.

    The ``code`` column may hold a taxonomy code or an item's Chinese or English
    name. Keys are matched ignoring case and surrounding spaces.

    Returns
    -------
    (dict, TableSource)
        Lower-cased source value → taxonomy code, and what was read.

    Raises
    ------
    ValidationError
        Listing every row at fault: empty values, codes not in the taxonomy,
        one source value mapped to two codes.
    """
    path = Path(path)
    frame, source = read_table(path, sheet=sheet, encoding=encoding)
    missing = [c for c in CATEGORY_MAP_COLUMNS if c not in frame.columns]
    if missing:
        raise ValidationError(
            f"category map {path.name} lacks column(s) {', '.join(missing)}; "
            f"expected {', '.join(CATEGORY_MAP_COLUMNS)}"
        )
    codes = category_lookup(taxonomy)
    mapping: dict[str, str] = {}
    first: dict[str, int] = {}
    problems: list[dict] = []
    for row, (value, code) in enumerate(
        zip(frame["source_value"].str.strip(), frame["code"].str.strip(), strict=True), start=1
    ):
        key, target = value.lower(), codes.get(code.lower())
        if not value or not code:
            problems.append({"row": row, "reason": "empty source_value or code"})
        elif target is None:
            problems.append({"row": row, "reason": f"code {code!r} is not in the taxonomy"})
        elif key in mapping and mapping[key] != target:
            problems.append(
                {
                    "row": row,
                    "reason": f"{value!r} is mapped to {mapping[key]!r} in row {first[key]} "
                    f"and to {target!r} here",
                }
            )
        else:
            mapping[key], first[key] = target, first.get(key, row)
    if problems:
        raise ValidationError(f"category map {path.name} is invalid", problems)
    return mapping, source


def category_lookup(taxonomy: pd.DataFrame) -> dict[str, str]:
    """Lower-cased code, Chinese name or English name → code: how a category can be written."""
    lookup: dict[str, str] = {}
    for column in ("name_en", "name_zh", "code"):  # codes last: a code always means itself
        if column in taxonomy:
            lookup.update(
                {
                    str(n).strip().lower(): str(c)
                    for n, c in zip(taxonomy[column], taxonomy["code"], strict=True)
                }
            )
    return lookup


def _digits(text: str) -> bool:
    """Digits 0-9 only (``str.isdigit`` alone accepts '²')."""
    return text.isascii() and text.isdigit()
