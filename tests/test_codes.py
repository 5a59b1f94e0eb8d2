"""Unified codes: build, parse, validate, parent by prefix, W→E / N→S numbering."""

import subprocess
import sys

import pytest
import shapely

from gis.codes import DEFAULT_SCHEME, CodeScheme, level_of, number_children, parent_code, parse
from gis.errors import InvalidCodeError


def test_default_scheme_gives_15_digit_grids_and_18_digit_micro_grids():
    assert DEFAULT_SCHEME.length("grid") == 15
    assert DEFAULT_SCHEME.length("micro_grid") == 18
    assert DEFAULT_SCHEME.build(411002, 1, 12, 3) == "411002001012003"


def test_parse_splits_segments_and_reads_level_from_length():
    parsed = parse("411002001012003007")
    assert parsed.level == "micro_grid"
    assert (parsed.district, parsed.street, parsed.community, parsed.grid, parsed.micro_grid) == (
        "411002",
        "001",
        "012",
        "003",
        "007",
    )
    assert level_of("411002001") == "street"


@pytest.mark.parametrize(
    "code, parent",
    [
        ("411002001012003007", "411002001012003"),
        ("411002001012003", "411002001012"),
        ("411002001", "411002"),
        ("411002", None),
    ],
)
def test_parent_is_the_prefix(code, parent):
    assert parent_code(code) == parent


@pytest.mark.parametrize(
    "code, words",
    [
        ("41100200", ["8 digits"]),
        ("411002000", ["street segment '000'", "digits 7–9"]),
        ("411002001000", ["community segment '000'", "digits 10–12"]),
        ("411002001001000", ["grid segment '000'", "digits 13–15"]),
        ("41100200100a", ["digits only"]),
        ("000002001", ["district segment '000002'"]),
        ("410000001", ["district segment '410000'"]),
    ],
)
def test_malformed_codes_name_the_wrong_segment(code, words):
    with pytest.raises(InvalidCodeError) as info:
        parse(code)
    for word in words:
        assert word in str(info.value)


def test_validate_at_a_level_says_expected_length():
    with pytest.raises(InvalidCodeError, match="a grid code has 15 .district 6 \\+ street 3"):
        DEFAULT_SCHEME.validate("411002001", "grid")
    assert DEFAULT_SCHEME.validate(" 411002001001001 ", "grid") == "411002001001001"


def test_build_refuses_overflow_and_holes():
    with pytest.raises(InvalidCodeError, match="does not fit in 3 digits"):
        DEFAULT_SCHEME.build(411002, 1000)
    with pytest.raises(InvalidCodeError, match="grid segment given without its community"):
        DEFAULT_SCHEME.build(411002, 1, None, 3)


def test_configurable_widths_cj_t_213_style():
    scheme = CodeScheme(grid=2)
    assert scheme.length("grid") == 14
    assert scheme.child("411002001012", 7) == "41100200101207"
    with pytest.raises(InvalidCodeError, match="does not fit in 2 digits"):
        scheme.child("411002001012", 100)


def test_numbering_runs_west_to_east_then_north_to_south():
    # A 3 × 2 block of unit squares, given shuffled; reading order is row by row from the top.
    cells = {
        (col, row): shapely.box(col, -row, col + 1, -row + 1)
        for col in range(3)
        for row in range(2)
    }
    order = [(2, 1), (0, 0), (1, 1), (2, 0), (0, 1), (1, 0)]
    codes = number_children("411002001012", [cells[k] for k in order])
    expected = {(0, 0): 1, (1, 0): 2, (2, 0): 3, (0, 1): 4, (1, 1): 5, (2, 1): 6}
    assert [int(c[-3:]) for c in codes] == [expected[k] for k in order]


def test_numbering_keeps_a_slightly_offset_neighbour_in_the_same_row():
    # The east square sits 10 % lower: still the same row, so it is numbered second.
    west, east = shapely.box(0, 0, 1, 1), shapely.box(1, -0.1, 2, 0.9)
    south = shapely.box(0, -1.5, 1, -0.5)
    codes = number_children("411002001", [south, east, west])
    assert [c[-3:] for c in codes] == ["003", "002", "001"]


def test_numbering_refuses_more_children_than_digits_allow():
    boxes = [shapely.box(i, 0, i + 1, 1) for i in range(12)]
    with pytest.raises(InvalidCodeError, match="number at most 9"):
        CodeScheme(grid=1).number_children("411002001012", boxes)


def test_importing_gis_and_its_codes_stays_light():
    # The API and the CLI import gis.codes on every start: no Dask, esda or geopandas there.
    script = (
        "import sys, gis, gis.codes; "
        "print(sorted({'dask', 'esda', 'libpysal', 'geopandas'} & set(sys.modules)))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    ).stdout
    assert loaded.strip() == "[]"


def test_every_name_gis_exports_resolves():
    import gis as package

    for name in package.__all__:
        assert getattr(package, name) is not None, name
    assert package.GridIndex is package.assign.GridIndex
    assert package.assign.HierarchyIndex.__module__ == "gis.assign.hierarchy"
    assert package.assign.distributed.assign_dask is not None
