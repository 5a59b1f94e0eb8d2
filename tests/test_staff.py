"""gis.staff: roster validation (every bad-input kind) and the staffing rule."""

from __future__ import annotations

import pandas as pd
import pytest

from gis.errors import ValidationError
from gis.staff import DEFAULT_ROLES, StaffRole, staffed_codes, valid_phone, validate_roster
from gis.vocabulary import STAFF_ROLES

GRID = "411002003001001"
MICRO = "411002003001001001"
COMMUNITY = "411002003001"
AREAS = {GRID: "grid", MICRO: "micro_grid", COMMUNITY: "community"}


def roster(*rows: tuple, columns=("姓名", "岗位", "网格编码", "联系电话")) -> pd.DataFrame:
    return pd.DataFrame(list(rows), columns=list(columns))


def reasons(check) -> dict[int, str]:
    return {p["row"]: p["reason"] for p in check.problems}


def test_default_roles_cover_the_vocabulary_and_the_offices_words():
    codes = {r.code for r in DEFAULT_ROLES}
    assert set(STAFF_ROLES) <= codes
    assert {"part_time_grid_worker", "grid_instructor"} <= codes
    good = roster(
        ("张三", "网格长", GRID, "13812345678"),
        ("李四", "专职网格员", GRID, "138 1234 5679"),
        ("王五", "兼职网格员", GRID, "0371-66668888"),
        ("赵六", "微网格员", MICRO, "+8613912345678"),
        ("钱七", "专属网格长", GRID, "13712345678"),
        ("孙八", "第一书记", COMMUNITY, "13612345678"),
        ("周九", "grid_worker", GRID, "13512345678"),
    )
    check = validate_roster(good, AREAS)
    assert check.ok, check.problems
    assert list(check.staff["role"]) == [
        "grid_leader",
        "grid_worker",
        "part_time_grid_worker",
        "micro_grid_worker",
        "dedicated_grid_leader",
        "grid_instructor",
        "grid_worker",
    ]
    assert check.staff.loc[1, "phone"] == "13812345679"


def test_every_bad_row_is_refused_with_its_reason():
    bad = roster(
        ("张三", "网格长", "411002999999999", "13812345678"),  # 2: unknown area
        ("李四", "保安", GRID, "13812345678"),  # 3: unknown role
        ("王五", "网格长", GRID, "1381234567"),  # 4: phone one digit short
        ("王五", "网格长", GRID, "66668888"),  # 5: landline without its area code
        ("赵六", "网格长", MICRO, "13812345678"),  # 6: a grid role on a micro-grid
        ("钱七", "微网格员", GRID, "13812345678"),  # 7: a micro-grid role on a grid
        ("", "网格长", GRID, "13812345678"),  # 8: no name
        ("孙八", "网格长", GRID, "13812345678"),  # 9: fine
        ("孙八", "网格长", GRID, "13912345678"),  # 10: same person, role and area
    )
    check = validate_roster(bad, AREAS)
    found = reasons(check)
    assert sorted(found) == [2, 3, 4, 5, 6, 7, 8, 10]
    assert "unknown area code" in found[2] and "未知区域编码" in found[2]
    assert "unknown role '保安'" in found[3]
    assert "malformed phone" in found[4] and "malformed phone" in found[5]
    assert "serves a grid" in found[6] and "serves a micro_grid" in found[7]
    assert "missing name" in found[8]
    assert "duplicate of row 9" in found[10]
    assert len(check.staff) == 1
    assert check.problems[0]["raw"]["网格编码"] == "411002999999999"


def test_external_ids_and_dates_are_checked():
    columns = ("name", "role", "area_code", "phone", "external_id", "start_date", "end_date")
    rows = roster(
        ("a", "grid_leader", GRID, "13812345678", "E1", "2024-01-01", ""),
        ("b", "grid_worker", GRID, "13812345679", "E1", "", ""),
        ("c", "grid_worker", GRID, "13812345670", "E3", "2024-05-01", "2024-04-01"),
        ("d", "grid_worker", GRID, "13812345671", "E4", "soon", ""),
        columns=columns,
    )
    found = reasons(validate_roster(rows, AREAS))
    assert "duplicate of row 2" in found[3]
    assert "end_date before start_date" in found[4]
    assert "unreadable start_date" in found[5]
    assert 2 not in found


def test_a_roster_without_a_required_column_is_refused_whole():
    with pytest.raises(ValidationError, match="phone"):
        validate_roster(pd.DataFrame({"name": ["a"], "role": ["x"], "area_code": [GRID]}), AREAS)


def test_exported_bilingual_headers_read_back():
    frame = pd.DataFrame(
        {"姓名 / name": ["a"], "岗位 / role": ["网格长"], "网格编码 / area_code": [GRID]}
    ).assign(**{"联系电话 / phone": ["13812345678"]})
    assert validate_roster(frame, AREAS).ok


def test_a_deployment_role_is_accepted_by_its_words():
    head = StaffRole("building_head", "楼栋长", "building head", "micro_grid", ("楼长",))
    rows = roster(("a", "楼长", MICRO, "13812345678"))
    assert not validate_roster(rows, AREAS).ok
    check = validate_roster(rows, AREAS, (*DEFAULT_ROLES, head))
    assert check.ok and check.staff.loc[0, "role"] == "building_head"


@pytest.mark.parametrize(
    ("phone", "ok"),
    [
        ("13800138000", True),
        ("19912345678", True),
        ("12812345678", False),  # no mobile prefix 12
        ("010-12345678", True),
        ("0371 6666 8888", True),
        ("0371-66668888-123", True),
        ("66668888", False),
        ("1380013800a", False),
    ],
)
def test_phone_numbers(phone, ok):
    assert valid_phone(phone) is ok


def test_staffing_rule_counts_only_grid_staff_on_grids_and_micro_workers_on_micro_grids():
    staff = pd.DataFrame(
        {
            "role": ["micro_grid_worker", "grid_instructor", "part_time_grid_worker"],
            "area_code": [MICRO, GRID, "411002003001002"],
        }
    )
    assert staffed_codes(staff) == {MICRO, "411002003001002"}
