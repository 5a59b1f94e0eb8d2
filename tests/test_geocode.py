"""Address normalisation and gazetteer geocoding, on small hand-made gazetteers."""

import math

import numpy as np
import pandas as pd
import pytest

from gis.errors import GridmapError, ValidationError
from gis.geocode import Gazetteer, normalize_address, normalize_addresses, parse_address

# Near Weidu district, Xuchang. At 34° N, 0.0001° of longitude is ~9.2 m and
# 0.0001° of latitude ~11.1 m.
LON, LAT = 113.8200, 34.0200
MG = "411002001001001"  # a grid code; micro-grids append 3 digits

ROWS = [
    # Units of building 3 at 建设路12号, ~18 m apart: the building is their centroid.
    ("魏都区新兴街道裴山庙社区建设路12号3号楼2单元", LON, LAT, MG + "001"),
    ("魏都区新兴街道裴山庙社区建设路12号3号楼1单元", LON + 0.0002, LAT, MG + "001"),
    # A building known only as a whole, 55 m from building 3.
    ("魏都区新兴街道裴山庙社区建设路12号5号楼", LON + 0.0006, LAT + 0.0003, MG + "002"),
    # A door plate without buildings.
    ("建设路14号", LON + 0.0030, LAT, MG + "003"),
    # Two buildings behind one door plate, ~460 m apart: the plate is ambiguous.
    ("文峰街道八一路7号1号楼", 113.8400, 34.0300, MG + "004"),
    ("文峰街道八一路7号2号楼", 113.8450, 34.0300, MG + "005"),
    # The same road and number in two streets, 2 km apart.
    ("七里店街道健康路3号", 113.8000, 34.0000, MG + "006"),
    ("丁庄街道健康路3号", 113.8200, 34.0000, MG + "007"),
    # A compound without road or door plate.
    ("阳光小区A座", 113.8300, 34.0100, MG + "008"),
]
CENTROID_B3 = (LON + 0.0001, LAT)


@pytest.fixture
def frame() -> pd.DataFrame:
    return pd.DataFrame(ROWS, columns=["address", "lon", "lat", "micro_grid_code"])


@pytest.fixture
def gazetteer(frame) -> Gazetteer:
    return Gazetteer(frame)


def located(result: pd.DataFrame, row=0) -> tuple[float, float]:
    return result["lon"].iloc[row], result["lat"].iloc[row]


# -- normalisation -------------------------------------------------------------------
CANONICAL = "建设路12号3号楼2单元"


@pytest.mark.parametrize(
    "variant",
    [
        "建设路12号3号楼2单元",
        "建设路１２号３号楼２单元",  # full-width digits
        "建设路１２号３栋２单元",  # full-width + 栋
        "建设路12号3幢2单元",
        "建设路12号3座2单元",
        "建设路12号3号栋2单元",
        "建设路12号三号楼二单元",  # Chinese numerals
        "建设路十二号三栋2单元",
        "建设路 12 号　3 号楼\t2 单元",  # spaces, ideographic space, tab
        "河南省许昌市建设路12号3号楼2单元",  # province and city prefixes
        "许昌市建设路12号3号楼2单元",
        "建设路12#3#楼2单元",  # "#" for 号
        "建设路12＃3＃楼2单元",
        "建设路12号3号楼2门",  # 门 for 单元
        "建设路12号三号楼二门",
        "建设路12号院3号楼2单元",  # courtyard number is the door plate
        "建设路12号3号楼2单元201室",  # room dropped
        "建设路12号3号楼2单元2楼",  # floor dropped
        "建设路12号3号楼2单元2层201",
        "建设路12号三号楼二单元三楼",
        "建设路12号3号楼2单元1203",
        "建设路12号3-2-201",  # building-unit-room short form
        "建设路12号3号楼2-201",
        "建设路12號3棟2單元",  # traditional address words
        "建设路12号(原纺织厂)3号楼2单元",  # comment in brackets
        "建设路12号（原纺织厂）3号楼，2单元。",
    ],
)
def test_variants_normalise_to_one_key(variant):
    assert normalize_address(variant) == CANONICAL


@pytest.mark.parametrize(
    "text, expected",
    [
        ("阳光小区Ａ座", "阳光小区A号楼"),
        ("阳光小区a栋", "阳光小区A号楼"),
        ("建设路一百零五号", "建设路105号"),
        ("建设路二十三号", "建设路23号"),
        ("建设路十号", "建设路10号"),
        ("建设路12－1号", "建设路12-1号"),
        ("建设路12—1号", "建设路12-1号"),
        ("魏都区-建设路12号", "魏都区建设路12号"),  # a dash between words is noise
        ("建设路12号2楼", "建设路12号"),
        ("建设路12号3/2/201", "建设路12号3号楼2单元"),  # "/" separates numbers like "-"
        ("建设路12～14号", "建设路12-14号"),
        ("建设路12号3", "建设路12号3"),  # too short for a room: maybe building 3
        ("广西壮族自治区南宁市青秀区民族大道1号", "青秀区民族大道1号"),
        ("许昌市长葛市建设路1号", "建设路1号"),
    ],
)
def test_normalisation_rules(text, expected):
    assert normalize_address(text) == expected


@pytest.mark.parametrize(
    "text, expected",
    [
        ("五一路街道八一路7号", "五一路街道八一路7号"),  # numerals in names are not numbers
        ("三门峡市湖滨区建设路1号", "湖滨区建设路1号"),  # 门 after a numeral, but no building
        ("许昌市场路1号", "许昌市场路1号"),  # 市场 is a market, not a city
        ("许昌市", "许昌市"),  # nothing follows: the city is the address
        ("魏都区新兴街道裴山庙社区建设路12号", "魏都区新兴街道裴山庙社区建设路12号"),
    ],
)
def test_names_are_left_alone(text, expected):
    assert normalize_address(text) == expected


@pytest.mark.parametrize("missing", [None, float("nan"), np.nan, pd.NA, "", "   ", "（）"])
def test_missing_and_blank_addresses_normalise_to_empty(missing):
    assert normalize_address(missing) == ""


def test_non_text_is_refused():
    with pytest.raises(ValidationError, match="must be a string"):
        normalize_address(12)  # type: ignore[arg-type]


def test_vectorised_normalisation_keeps_index_and_name():
    series = pd.Series(
        ["建设路１２号３栋", None, "建设路12号3幢", np.nan], index=[7, 3, 9, 1], name="address"
    )
    result = normalize_addresses(series)
    assert list(result.index) == [7, 3, 9, 1]
    assert result.name == "address"
    assert list(result) == ["建设路12号3号楼", "", "建设路12号3号楼", ""]
    assert list(normalize_addresses(["建设路12号"]).index) == [0]


def test_vectorised_normalisation_names_the_bad_row():
    with pytest.raises(ValidationError) as info:
        normalize_addresses(pd.Series(["建设路12号", 42], index=["a", "b"]))
    assert info.value.problems[0]["row"] == "b"


def test_parse_splits_administrative_prefix_from_locator():
    parts = parse_address("魏都区新兴街道裴山庙社区建设路１２号３栋２单元")
    assert parts == ("魏都区", "新兴街道", "裴山庙社区", "建设路", "12号", "3号楼", "2单元")
    assert parts.locator == CANONICAL
    assert parts.building_key == "建设路12号3号楼"
    assert parts.plate_key == "建设路12号"
    # A community followed only by a building is the place, not a prefix.
    assert parse_address("裴山庙社区3号楼").place == "裴山庙社区"
    assert parse_address("阳光小区3号楼").district is None  # 小区 is not a district


# -- matching ------------------------------------------------------------------------
def test_exact_match_from_a_differently_written_address(gazetteer):
    result = gazetteer.geocode(["许昌市魏都区新兴街道裴山庙社区建设路１２号３栋２单元201室"])
    assert result["match"].iloc[0] == "exact"
    assert located(result) == (LON, LAT)
    assert result["matched_address"].iloc[0] == ROWS[0][0]
    assert result["micro_grid_code"].iloc[0] == MG + "001"
    assert result["reason"].iloc[0] is None


def test_exact_match_without_the_administrative_prefix(gazetteer):
    result = gazetteer.geocode(["建设路12号3栋1单元", "阳光小区A栋"])
    assert list(result["match"]) == ["exact", "exact"]
    assert located(result, 0) == (LON + 0.0002, LAT)
    assert result["matched_address"].iloc[1] == "阳光小区A座"


def test_building_known_by_its_units_is_their_centroid(gazetteer):
    result = gazetteer.geocode(["建设路12号三号楼"])
    assert result["match"].iloc[0] == "building"
    assert located(result) == pytest.approx(CENTROID_B3)
    assert result["matched_address"].iloc[0] == "建设路12号3号楼"
    assert result["micro_grid_code"].iloc[0] == MG + "001"  # both units agree


def test_unit_of_a_building_known_as_a_whole_matches_the_building(gazetteer):
    result = gazetteer.geocode(["建设路12号5栋3单元"])
    assert result["match"].iloc[0] == "building"
    assert located(result) == (LON + 0.0006, LAT + 0.0003)
    assert result["matched_address"].iloc[0] == ROWS[2][0]


def test_unknown_building_falls_back_to_the_door_plate(gazetteer):
    result = gazetteer.geocode(["建设路12号9号楼", "建设路14号3号楼"])
    assert list(result["match"]) == ["street_number", "street_number"]
    # Three entries behind 建设路12号, all within 100 m: their centroid.
    lons, lats = zip(*[(r[1], r[2]) for r in ROWS[:3]], strict=True)
    assert located(result, 0) == pytest.approx((np.mean(lons), np.mean(lats)))
    assert result["micro_grid_code"].iloc[0] is None  # the three disagree
    # 建设路14号 is in the gazetteer itself.
    assert located(result, 1) == (LON + 0.0030, LAT)
    assert result["matched_address"].iloc[1] == "建设路14号"


def test_door_plate_with_far_apart_buildings_is_ambiguous(gazetteer):
    result = gazetteer.geocode(["八一路7号", "八一路7号3号楼"])
    for row in range(2):
        assert result["match"].iloc[row] is None
        assert math.isnan(result["lon"].iloc[row]) and math.isnan(result["lat"].iloc[row])
        assert result["reason"].iloc[row].startswith("ambiguous: 2 entries match '八一路7号'")
    # The building itself is not ambiguous.
    assert gazetteer.geocode(["八一路7号2栋"])["match"].iloc[0] == "exact"


def test_administrative_prefix_disambiguates(gazetteer):
    result = gazetteer.geocode(
        ["魏都区七里店街道健康路3号", "丁庄街道健康路3号", "健康路3号", "高桥营街道健康路3号"]
    )
    assert located(result, 0) == (113.8000, 34.0000)
    assert located(result, 1) == (113.8200, 34.0000)
    assert result["reason"].iloc[2].startswith("ambiguous: 2 entries match '健康路3号'")
    assert result["match"].iloc[3] is None
    assert result["reason"].iloc[3] == (
        "no gazetteer entry for '高桥营街道健康路3号'; "
        "'健康路3号' exists only in 丁庄街道、七里店街道"
    )


def test_unknown_address_says_what_was_looked_up(gazetteer):
    result = gazetteer.geocode(["河南省许昌市解放路９９号"])
    assert result["match"].iloc[0] is None
    assert result["reason"].iloc[0] == "no gazetteer entry for '解放路99号'"
    assert np.isnan(result["lon"].iloc[0])


def test_empty_inputs_are_reported_not_refused(gazetteer):
    result = gazetteer.geocode([None, float("nan"), "", "  ", pd.NA, "建设路14号"])
    assert list(result["reason"][:5]) == ["empty address"] * 5
    assert list(result["match"]) == [None] * 5 + ["exact"]
    assert result["lon"][:5].isna().all()


def test_output_is_aligned_with_the_input_order_and_index(gazetteer):
    inputs = pd.Series(
        ["建设路14号", "解放路99号", "建设路12号3栋2单元", None, "建设路14号"],
        index=[50, 10, 40, 20, 30],
        name="address",
    )
    result = gazetteer.geocode(inputs)
    assert list(result.index) == [50, 10, 40, 20, 30]
    assert list(result["match"]) == ["exact", None, "exact", None, "exact"]
    assert list(result["lon"].round(4).fillna(0)) == [113.823, 0, 113.82, 0, 113.823]
    assert list(result.columns) == [
        "lon",
        "lat",
        "match",
        "matched_address",
        "reason",
        "micro_grid_code",
    ]
    assert list(gazetteer.geocode(("建设路14号", "八一路7号")).index) == [0, 1]
    repeated = gazetteer.geocode(pd.Series(["建设路14号", "八一路7号"], index=["x", "x"]))
    assert list(repeated.index) == ["x", "x"]
    assert list(repeated["match"]) == ["exact", None]
    assert gazetteer.geocode([]).empty


def test_large_batch_is_aligned(gazetteer):
    rng = np.random.default_rng(0)
    pool = np.array(
        ["建设路14号", "建设路12号3栋2单元", "八一路7号", "解放路99号", None], dtype=object
    )
    picks = rng.integers(0, len(pool), 20_000)
    result = gazetteer.geocode(pd.Series(pool[picks]))
    expected = np.array(["exact", "exact", None, None, None], dtype=object)[picks]
    assert (result["match"].to_numpy() == expected).all()


def test_geocode_refuses_a_bare_string_and_non_text(gazetteer):
    with pytest.raises(ValidationError, match="not one string"):
        gazetteer.geocode("建设路14号")
    with pytest.raises(ValidationError, match="must be strings"):
        gazetteer.geocode(["建设路14号", 14])


def test_without_micro_grid_codes_there_is_no_such_column(frame, tmp_path):
    path = tmp_path / "plain.csv"
    frame.drop(columns="micro_grid_code").to_csv(path, index=False)
    result = Gazetteer.from_file(path).geocode(["建设路14号"])
    assert "micro_grid_code" not in result
    assert result["match"].iloc[0] == "exact"


def test_tighter_spread_tolerance_makes_centroids_ambiguous(frame):
    gazetteer = Gazetteer(frame, spread_tolerance_m=10)
    reason = gazetteer.geocode(["建设路12号3号楼"])["reason"].iloc[0]
    assert reason.startswith("ambiguous: 2 entries match '建设路12号3号楼' (18 m apart)")


# -- gazetteer validation ------------------------------------------------------------
def test_missing_column_is_named(frame):
    with pytest.raises(ValidationError, match="lacks column.*lat"):
        Gazetteer(frame.drop(columns="lat"))


def test_every_bad_row_is_reported(frame):
    frame.loc[1, "lon"] = 200.0
    frame.loc[2, "lat"] = 113.8  # lon in the lat column
    frame.loc[3, "lon"] = np.nan
    frame.loc[4, "lat"] = np.inf
    frame.loc[5, "address"] = "  "
    frame.loc[6, "address"] = None
    with pytest.raises(ValidationError) as info:
        Gazetteer(frame)
    problems = {p["row"]: p["reason"] for p in info.value.problems}
    assert problems == {
        1: "lon 200 outside ±180",
        2: "lat 113.8 outside ±90 (lon and lat swapped?)",
        3: "lon is not a finite number: nan",
        4: "lat is not a finite number: inf",
        5: "empty address",
        6: "empty address",
    }


def test_non_numeric_coordinates_and_non_text_addresses_are_reported():
    frame = pd.DataFrame(
        {"address": ["建设路1号", 17], "lon": ["113.8", "东经113"], "lat": [34.0, 34.0]}
    )
    with pytest.raises(ValidationError) as info:
        Gazetteer(frame)
    assert [p["row"] for p in info.value.problems] == [1, 1]
    assert {p["reason"] for p in info.value.problems} == {
        "address is not text: 17",
        "lon is not a finite number: '东经113'",
    }


@pytest.mark.parametrize(
    "bad, message",
    [
        ([("建设路1号", 113.8, 34.0)], "must be a pandas DataFrame"),
        (pd.DataFrame(columns=["address", "lon", "lat"]), "empty"),
    ],
)
def test_unusable_frames_are_refused(bad, message):
    with pytest.raises(ValidationError, match=message):
        Gazetteer(bad)


def test_bad_tolerance_is_refused(frame):
    with pytest.raises(ValidationError, match="spread_tolerance_m"):
        Gazetteer(frame, spread_tolerance_m=-1)


def test_no_duplicates_gives_an_empty_table(gazetteer):
    assert gazetteer.duplicates.empty
    assert "duplicate_of" in gazetteer.duplicates


def test_near_duplicates_keep_the_first_and_are_counted():
    frame = pd.DataFrame(
        {
            "address": ["建设路14号", "建设路１４号", "许昌市建设路14号201室", "建设路16号"],
            "lon": [LON, LON + 0.0001, LON, LON + 0.001],
            "lat": [LAT, LAT, LAT + 0.0001, LAT],
        },
        index=[101, 102, 103, 104],
    )
    gazetteer = Gazetteer(frame)
    assert len(gazetteer) == 2
    assert list(gazetteer.duplicates["row"]) == [102, 103]
    assert list(gazetteer.duplicates["duplicate_of"]) == [101, 101]
    result = gazetteer.geocode(["建设路14号"])
    assert located(result) == (LON, LAT)
    assert result["matched_address"].iloc[0] == "建设路14号"


def test_duplicates_far_apart_are_refused():
    frame = pd.DataFrame(
        {"address": ["建设路14号", "建设路１４号"], "lon": [LON, LON + 0.001], "lat": [LAT, LAT]}
    )  # ~92 m apart
    with pytest.raises(ValidationError, match="same address at different places") as info:
        Gazetteer(frame)
    assert info.value.problems[0]["row"] == 1
    assert "92 m from row 0" in info.value.problems[0]["reason"]
    Gazetteer(frame, duplicate_tolerance_m=100)  # a looser tolerance accepts them


# -- files ---------------------------------------------------------------------------
@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_file_round_trip(frame, tmp_path, suffix):
    path = tmp_path / f"gazetteer{suffix}"
    frame = frame.assign(micro_grid_code="0" + frame["micro_grid_code"])  # leading zero
    if suffix == ".csv":
        frame.to_csv(path, index=False, encoding="utf-8-sig")  # with a BOM, as Excel saves
    else:
        frame.to_parquet(path)
    gazetteer = Gazetteer.from_file(path)
    assert len(gazetteer) == len(frame)
    assert list(gazetteer.entries["address"]) == list(frame["address"])
    result = gazetteer.geocode(["建设路12号3栋2单元"])
    assert located(result) == (LON, LAT)
    assert result["micro_grid_code"].iloc[0] == "0" + MG + "001"


def test_file_errors_are_explained(frame, tmp_path):
    with pytest.raises(GridmapError, match="not found"):
        Gazetteer.from_file(tmp_path / "missing.csv")
    (tmp_path / "gazetteer.xlsx").write_bytes(b"")
    with pytest.raises(ValidationError, match="expected .csv, .parquet"):
        Gazetteer.from_file(tmp_path / "gazetteer.xlsx")
    gbk = tmp_path / "gbk.csv"
    frame.to_csv(gbk, index=False, encoding="gb18030")
    with pytest.raises(GridmapError, match="gb18030"):
        Gazetteer.from_file(gbk)
    assert len(Gazetteer.from_file(gbk, encoding="gb18030")) == len(frame)


def test_community_name_before_a_lane_starting_with_shi_is_not_a_city():
    # Found on the demo: "金桥社区" + "市宁巷" was stripped as a city called 金桥社区.
    assert normalize_address("许昌市金桥社区市宁巷162号５号楼") == "金桥社区市宁巷162号5号楼"
