"""The district's functional departments (委办局) as an office keeps them: a table of codes,
names and contacts.

:func:`validate_departments` checks a whole table and returns the clean rows and, for
every other row, the reason it was refused; the service stores the table only when no
row was refused. Headers may be Chinese (部门编码, 部门名称, 联系方式), English (code,
name, contact) or both as gridmap writes them ("部门编码 / code").
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pandas as pd

from gis.tables import cell_text, named_columns, raw_row

__all__ = [
    "DEPARTMENT_COLUMNS",
    "DEPARTMENT_HEADERS",
    "DepartmentCheck",
    "validate_departments",
]

DEPARTMENT_COLUMNS = ("code", "name", "contact")
REQUIRED = ("code", "name")
#: The Chinese header of each column.
DEPARTMENT_HEADERS = {"code": "部门编码", "name": "部门名称", "contact": "联系方式"}
# Other headers offices use for the same column.
_HEADER_WORDS = {
    "code": ("部门编码", "部门代码", "单位编码", "编码", "code", "department_code"),
    "name": ("部门名称", "单位名称", "部门", "名称", "name", "department", "department_name"),
    "contact": ("联系方式", "联系电话", "电话", "联系人", "contact", "phone"),
}
#: A department code: ASCII letters and digits, then also ``_ . -`` (it goes into URLs).
_CODE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_MAX_TEXT = 200


@dataclass
class DepartmentCheck:
    """Rows that passed (columns :data:`DEPARTMENT_COLUMNS`) and refused ones (``row`` =
    line in the file, ``code``, ``reason``, ``raw``)."""

    departments: pd.DataFrame
    problems: list[dict]


def validate_departments(frame: pd.DataFrame, *, first_row: int = 2) -> DepartmentCheck:
    """Check a department table.

    Refused with a reason: a missing code or name; a code that is not ASCII letters,
    digits and ``_ . -`` (at most 64); a name or contact over 200 characters; a code
    repeated from an earlier row. ``first_row`` is the file line of the first data row.

    Raises
    ------
    ValidationError
        When the code or name column is missing (the table as a whole is unusable).
    """
    rows = _named_columns(frame)
    clean: list[dict] = []
    problems: list[dict] = []
    seen: dict[str, int] = {}
    for offset, raw in enumerate(rows.to_dict("records")):
        line = first_row + offset
        values = {c: cell_text(raw.get(c)) for c in DEPARTMENT_COLUMNS}
        reason = _row_problem(values) or _duplicate(values, line, seen)
        if reason is None:
            clean.append(values)
        else:
            problems.append(
                {
                    "row": line,
                    "code": values["code"],
                    "reason": reason,
                    "raw": raw_row(frame, offset),
                }
            )
    # object dtype: a blank contact stays None, never NaN (which would be stored as 'NaN')
    departments = pd.DataFrame(clean, columns=list(DEPARTMENT_COLUMNS), dtype=object)
    return DepartmentCheck(departments, problems)


def _named_columns(frame: pd.DataFrame) -> pd.DataFrame:
    return named_columns(
        frame, _HEADER_WORDS, REQUIRED, DEPARTMENT_HEADERS, ("部门表", "department table")
    )


def _row_problem(values: dict[str, str | None]) -> str | None:
    for column in REQUIRED:
        if values[column] is None:
            return f"缺少{DEPARTMENT_HEADERS[column]} / missing {column}"
    if not _CODE.fullmatch(str(values["code"])):
        return (
            f"部门编码格式错误 / malformed code {values['code']!r}: ASCII letters and digits, "
            "then also _ . - (at most 64)"
        )
    for column in ("name", "contact"):
        if values[column] is not None and len(values[column]) > _MAX_TEXT:  # type: ignore[arg-type]
            return f"{DEPARTMENT_HEADERS[column]}过长 / {column} over {_MAX_TEXT} characters"
    return None


def _duplicate(values: dict[str, str | None], line: int, seen: dict[str, int]) -> str | None:
    code = str(values["code"])
    if code in seen:
        return f"与第{seen[code]}行重复 / duplicate of row {seen[code]} (code {code})"
    seen[code] = line
    return None
