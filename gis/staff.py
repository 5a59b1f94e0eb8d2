"""Staff rosters: the roles of grid staff and the validation of a roster file.

A roster row names a person, their role and the area they serve (a grid, a
micro-grid, or for an instructor any area). :func:`validate_roster` checks a
whole file and returns the clean rows and, for every other row, the reason it
was refused; the service stores the file only when no row was refused (see
``docs/domain.md`` for the roles in a city office).

The staffing rule (:func:`staffed_codes`): a grid is staffed only by staff of a
grid-level role (leaders and workers) on its own code; a micro-grid only by a
micro-grid worker on its own code.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import pandas as pd

from gis.tables import cell_text, header_key, named_columns, raw_row
from gis.vocabulary import STAFF_ROLES

__all__ = [
    "DEFAULT_ROLES",
    "OPTIONAL_COLUMNS",
    "REQUIRED_COLUMNS",
    "ROSTER_COLUMNS",
    "ROSTER_HEADERS",
    "RosterCheck",
    "StaffRole",
    "role_lookup",
    "staffed_codes",
    "validate_roster",
    "valid_phone",
]

#: Columns a roster file must have, and those it may have.
REQUIRED_COLUMNS = ("name", "role", "area_code", "phone")
OPTIONAL_COLUMNS = ("external_id", "department", "start_date", "end_date")
ROSTER_COLUMNS = REQUIRED_COLUMNS + OPTIONAL_COLUMNS
#: Chinese header of each roster column (exports write "中文 / english"; imports accept either).
ROSTER_HEADERS = {
    "name": "姓名",
    "role": "岗位",
    "area_code": "网格编码",
    "phone": "联系电话",
    "external_id": "工号",
    "department": "单位",
    "start_date": "任职日期",
    "end_date": "离任日期",
}
# Other headers offices use for the same column.
_HEADER_WORDS = {
    "name": ("姓名", "name"),
    "role": ("岗位", "角色", "职务", "role"),
    "area_code": ("网格编码", "区域编码", "所属网格", "area_code", "code"),
    "phone": ("联系电话", "电话", "手机", "手机号", "phone"),
    "external_id": ("工号", "编号", "人员编号", "external_id"),
    "department": ("单位", "部门", "department"),
    "start_date": ("任职日期", "开始日期", "start_date"),
    "end_date": ("离任日期", "结束日期", "end_date"),
}

# A mainland mobile number, or a landline with its area code (0 + 2–3 digits), with an
# optional extension; +86 / 86 may precede a mobile number.
_MOBILE = re.compile(r"(?:\+?86)?1[3-9]\d{9}")
_LANDLINE = re.compile(r"0\d{2,3}-?\d{7,8}(?:-\d{1,6})?")


@dataclass(frozen=True)
class StaffRole:
    """A role: its code, names, the level of area it staffs (None: staffs no area) and the
    words a roster file may use for it."""

    code: str
    name_zh: str
    name_en: str
    staffs: str | None
    words: tuple[str, ...] = field(default_factory=tuple)


_LEADER, _WORKER, _MICRO_WORKER, _DEDICATED_LEADER = STAFF_ROLES
#: The roles every deployment knows; a deployment adds its own (``gridmap staff add-role``).
DEFAULT_ROLES: tuple[StaffRole, ...] = (
    StaffRole(_LEADER, "网格长", "grid leader", "grid", ("网格长",)),
    StaffRole(_WORKER, "专职网格员", "full-time grid worker", "grid", ("专职网格员", "网格员")),
    StaffRole(
        "part_time_grid_worker", "兼职网格员", "part-time grid worker", "grid", ("兼职网格员",)
    ),
    StaffRole(
        _MICRO_WORKER, "微网格员", "micro-grid worker", "micro_grid", ("微网格员", "微网格长")
    ),
    StaffRole(_DEDICATED_LEADER, "专属网格长", "dedicated grid leader", "grid", ("专属网格长",)),
    # An instructor guides grids from the community or street: they staff no grid.
    StaffRole(
        "grid_instructor",
        "网格指导员/第一书记",
        "grid instructor / first secretary",
        None,
        ("网格指导员", "第一书记", "网格指导员/第一书记"),
    ),
)


@dataclass
class RosterCheck:
    """The rows of a roster that passed (columns :data:`ROSTER_COLUMNS`, roles as codes) and
    the refused ones (``row`` = line in the file, ``reason``, ``raw``)."""

    staff: pd.DataFrame
    problems: list[dict]

    @property
    def ok(self) -> bool:
        return not self.problems


def role_lookup(roles: Iterable[StaffRole]) -> dict[str, StaffRole]:
    """Every word for a role (code, Chinese name, English name, synonyms) → the role."""
    lookup: dict[str, StaffRole] = {}
    for role in roles:
        for word in (role.code, role.name_zh, role.name_en, *role.words):
            lookup[header_key(word)] = role
    return lookup


def valid_phone(phone: str) -> bool:
    """A mainland mobile number or a landline with its area code (spaces ignored)."""
    digits = re.sub(r"[\s()（）]", "", phone)
    return bool(_MOBILE.fullmatch(digits) or _LANDLINE.fullmatch(digits))


def staffed_codes(staff: pd.DataFrame, roles: Iterable[StaffRole] = DEFAULT_ROLES) -> set[str]:
    """Codes of the areas staffed under the rule: grid-level roles staff the grid they sit
    on, micro-grid workers the micro-grid they sit on; other roles staff nothing.

    What a row staffs is its ``staffs`` column when the frame has one (a deployment's
    own roles), else its ``role`` looked up in ``roles``.
    """
    if "staffs" in staff:
        staffs = staff["staffs"]
    else:
        staffs = staff["role"].map({role.code: role.staffs for role in roles})
    # to_numpy first: iterating an Arrow-backed column costs a Python call per row
    return set(staff.loc[staffs.notna(), "area_code"].astype(str).to_numpy(dtype=object).tolist())


def validate_roster(
    frame: pd.DataFrame,
    areas: Mapping[str, str],
    roles: Sequence[StaffRole] = DEFAULT_ROLES,
    *,
    first_row: int = 2,
) -> RosterCheck:
    """Check a roster against the areas (code → level) of a generation.

    Refused with a reason: a missing name, role, area code or phone; an unknown
    role or area code; a role on the wrong level of area (a grid leader on a
    micro-grid); a malformed phone; an unreadable date or an end before the
    start; a row repeating an earlier one (same person, role and area, or same
    ``external_id``). ``first_row`` is the file line of the first data row.

    Raises
    ------
    ValidationError
        When a required column is missing (the file as a whole is unusable).
    """
    rows = _named_columns(frame)
    lookup = role_lookup(roles)
    clean: list[dict] = []
    problems: list[dict] = []
    seen: dict[tuple, int] = {}
    for offset, raw in enumerate(rows.to_dict("records")):
        line = first_row + offset
        values = {c: cell_text(raw.get(c)) for c in ROSTER_COLUMNS}
        reason = _row_problem(values, areas, lookup)
        if reason is None:
            values["role"] = lookup[header_key(str(values["role"]))].code
            reason = _duplicate(values, line, seen)
        if reason is None:
            clean.append(_typed(values))
        else:
            problems.append({"row": line, "reason": reason, "raw": raw_row(frame, offset)})
    staff = pd.DataFrame(clean, columns=list(ROSTER_COLUMNS))
    return RosterCheck(staff, problems)


def _named_columns(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame with its headers turned into roster column names."""
    return named_columns(
        frame, _HEADER_WORDS, REQUIRED_COLUMNS, ROSTER_HEADERS, ("花名册", "roster")
    )


def _row_problem(
    values: dict[str, str | None], areas: Mapping[str, str], lookup: dict[str, StaffRole]
) -> str | None:
    for column in REQUIRED_COLUMNS:
        if values[column] is None:
            return f"缺少{ROSTER_HEADERS[column]} / missing {column}"
    role = lookup.get(header_key(str(values["role"])))
    if role is None:
        return f"未知岗位 / unknown role {values['role']!r}"
    code = str(values["area_code"])
    level = areas.get(code)
    if level is None:
        return f"未知区域编码 / unknown area code {code!r}"
    if role.staffs is not None and level != role.staffs:
        return (
            f"{role.name_zh}只能在{role.staffs}上 / a {role.name_en} serves a {role.staffs}, "
            f"not the {level} {code}"
        )
    if not valid_phone(str(values["phone"])):
        return f"电话格式错误 / malformed phone {values['phone']!r}"
    return _date_problem(values)


def _date_problem(values: dict[str, str | None]) -> str | None:
    dates = {}
    for column in ("start_date", "end_date"):
        if values[column] is None:
            continue
        parsed = pd.to_datetime(values[column], errors="coerce")
        if pd.isna(parsed):
            return f"日期无法识别 / unreadable {column} {values[column]!r}"
        dates[column] = parsed
    if len(dates) == 2 and dates["end_date"] < dates["start_date"]:
        return "离任日期早于任职日期 / end_date before start_date"
    return None


def _duplicate(values: dict[str, str | None], line: int, seen: dict[tuple, int]) -> str | None:
    keys: list[tuple] = [("person", values["name"], values["role"], values["area_code"])]
    if values["external_id"] is not None:
        keys.append(("external_id", values["external_id"]))
    for key in keys:
        if key in seen:
            return f"与第{seen[key]}行重复 / duplicate of row {seen[key]}"
    for key in keys:
        seen[key] = line
    return None


def _typed(values: dict[str, str | None]) -> dict:
    out: dict = dict(values)
    out["phone"] = re.sub(r"\s", "", str(values["phone"]))
    for column in ("start_date", "end_date"):
        if values[column] is not None:
            out[column] = pd.to_datetime(values[column]).date()
    return out
