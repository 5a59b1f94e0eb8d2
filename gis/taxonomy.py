"""The incident category taxonomy: major classes and items with handling deadlines.

Zhenru (Putuo, Shanghai) sorts what residents raise into four classes —
城市运行 city operation, 公共管理 public management, 公共服务 public service,
公共安全 public safety — each with concrete items (乱停乱放 illegal parking,
飞线充电 flying-wire e-bike charging, …). The taxonomy is a data file so a
city can replace it; ``data/taxonomy.csv`` in the repository is the default.

Codes are text: ``01`` is a major class and ``0104`` an item of it, so the
item code starts with its class code (the same prefix rule as area codes).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from gis.errors import ValidationError

__all__ = ["TAXONOMY_COLUMNS", "DEFAULT_TAXONOMY_PATH", "load_taxonomy"]

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

_TEXT = ["major_code", "major_name_zh", "major_name_en", "code", "name_zh", "name_en"]


def load_taxonomy(path: str | Path | None = None) -> pd.DataFrame:
    """Read and validate a category taxonomy.

    Parameters
    ----------
    path : path-like, optional
        A UTF-8 CSV with a header row and the columns of
        :data:`TAXONOMY_COLUMNS`. Default: the repository's ``data/taxonomy.csv``.

    Returns
    -------
    pandas.DataFrame
        One row per item, columns :data:`TAXONOMY_COLUMNS`; codes and names as
        ``str``, ``deadline_hours`` as ``int``.

    Raises
    ------
    ValidationError
        When the file is missing or unreadable, or any row breaks a rule:
        codes present and unique, each item code starting with its major code,
        one name per major code, deadlines positive whole hours. ``problems``
        lists every row at fault (``row`` is the 1-based data row).
    """
    path = DEFAULT_TAXONOMY_PATH if path is None else Path(path)
    frame = _read(path)
    problems = _problems(frame)
    if problems:
        raise ValidationError(f"taxonomy {path.name} is invalid", problems)
    frame["deadline_hours"] = pd.to_numeric(frame["deadline_hours"]).astype("int64")
    return frame[TAXONOMY_COLUMNS].reset_index(drop=True)


def _read(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise ValidationError(f"taxonomy file not found: {path}")
    try:
        # dtype=str keeps leading zeros: "01" is a code, not the number 1
        frame = pd.read_csv(path, dtype=str, encoding="utf-8", keep_default_na=False)
    except (UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise ValidationError(f"cannot read taxonomy {path.name} as UTF-8 CSV: {exc}") from exc
    missing = [c for c in TAXONOMY_COLUMNS if c not in frame.columns]
    if missing:
        raise ValidationError(
            f"taxonomy {path.name} lacks column(s) {', '.join(missing)}; "
            f"expected {', '.join(TAXONOMY_COLUMNS)}"
        )
    if frame.empty:
        raise ValidationError(f"taxonomy {path.name} has no items")
    for column in _TEXT:
        frame[column] = frame[column].str.strip()
    return frame


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
        if (code and not code.isdigit()) or (major and not major.isdigit()):
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
