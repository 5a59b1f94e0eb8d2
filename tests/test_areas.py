"""Area layer validation (pure): every bad-input kind is reported, all at once."""

import geopandas as gpd
import pytest
import shapely

from gis.areas import prepare_areas, read_areas, spatial_parents, write_areas
from gis.errors import CRSError, GridmapError

COMMUNITY = "411002001001"
# Two communities side by side, 0.01° wide, near the demo district.
PARENTS = gpd.GeoDataFrame(
    {"code": ["411002001001", "411002001002"]},
    geometry=[shapely.box(113.80, 34.00, 113.81, 34.01), shapely.box(113.81, 34.00, 113.82, 34.01)],
    crs=4326,
)


def _layer(geoms, **columns):
    return gpd.GeoDataFrame(columns, geometry=list(geoms), crs=4326)


def _box(x0, y0, x1, y1):
    return shapely.box(113.80 + x0, 34.00 + y0, 113.80 + x1, 34.00 + y1)


def reasons(prepared):
    return [p["reason"] for p in prepared.problems]


def test_clean_layer_gets_codes_numbered_in_reading_order_and_spatial_parents():
    layer = _layer(
        [_box(0.005, 0, 0.01, 0.005), _box(0, 0.005, 0.005, 0.01), _box(0.011, 0.001, 0.019, 0.009)]
    )
    prepared = prepare_areas(layer, "grid", parents=PARENTS)
    assert prepared.ok, prepared.problems
    assert list(prepared.areas["parent_code"]) == [COMMUNITY, COMMUNITY, "411002001002"]
    # In community 001 the north-west box is first, the south-east one second.
    assert list(prepared.areas["code"]) == [COMMUNITY + "002", COMMUNITY + "001", "411002001002001"]
    assert (prepared.areas.geometry.geom_type == "MultiPolygon").all()
    assert prepared.areas["area_m2"].between(2.5e5, 2.8e5).iloc[0]  # 0.005° × 0.005° here


def test_auto_numbering_continues_after_existing_codes():
    layer = _layer([_box(0, 0, 0.005, 0.005)])
    prepared = prepare_areas(
        layer, "grid", parents=PARENTS, existing_codes={COMMUNITY + "001", COMMUNITY + "007"}
    )
    assert list(prepared.areas["code"]) == [COMMUNITY + "008"]


def test_every_problem_is_reported_not_just_the_first():
    bowtie = shapely.Polygon(
        [(113.801, 34.001), (113.803, 34.003), (113.803, 34.001), (113.801, 34.003)]
    )
    layer = _layer(
        [
            _box(0, 0, 0.004, 0.004),
            bowtie,
            shapely.Point(113.805, 34.005),
            shapely.Polygon(),
            _box(0.005, 0.005, 0.009, 0.009),
            _box(0.03, 0.03, 0.04, 0.04),
            _box(0.001, 0.006, 0.002, 0.007),
        ],
        code=[
            COMMUNITY + "001",
            COMMUNITY + "002",
            COMMUNITY + "003",
            COMMUNITY + "004",
            COMMUNITY + "001",
            COMMUNITY + "006",
            "411002009009007",
        ],
    )
    prepared = prepare_areas(layer, "grid", code_field="code", parents=PARENTS)
    by_row = {}
    for p in prepared.problems:
        by_row.setdefault(p["row"], []).append(p["reason"])
    assert any("invalid geometry: Self-intersection[113.802 34.002]" in r for r in by_row[2])
    assert any("not a polygon: Point" in r for r in by_row[3])
    assert any("empty geometry" in r for r in by_row[4])
    assert any("duplicate code '411002001001001' (rows 1, 5)" in r for r in by_row[1])
    assert any("duplicate code" in r for r in by_row[5])
    assert any("mostly outside its parent: outside every community" in r for r in by_row[6])
    assert any("does not start with its parent's code 411002001001" in r for r in by_row[7])
    assert set(by_row) == {1, 2, 3, 4, 5, 6, 7}


def test_repair_applies_make_valid_and_keeps_the_polygonal_part():
    bowtie = shapely.Polygon(
        [(113.801, 34.001), (113.803, 34.003), (113.803, 34.001), (113.801, 34.003)]
    )
    refused = prepare_areas(_layer([bowtie]), "grid", parents=PARENTS)
    assert "use --repair" in reasons(refused)[0]
    repaired = prepare_areas(_layer([bowtie]), "grid", parents=PARENTS, repair=True)
    assert repaired.ok, repaired.problems
    geom = repaired.areas.geometry.iloc[0]
    assert geom.is_valid and geom.geom_type == "MultiPolygon" and len(geom.geoms) == 2


def test_malformed_code_names_segment_and_length():
    prepared = prepare_areas(
        _layer([_box(0, 0, 0.004, 0.004)], code=["1723"]),
        "grid",
        code_field="code",
        parents=PARENTS,
    )
    assert (
        "a grid code has 15 (district 6 + street 3 + community 3 + grid 3)" in reasons(prepared)[0]
    )


def test_named_parent_must_exist_and_hold_the_polygon():
    layer = _layer(
        [_box(0, 0, 0.004, 0.004), _box(0, 0, 0.004, 0.004)],
        parent=["411002001099", "411002001002"],
    )
    prepared = prepare_areas(layer, "grid", parent_field="parent", parents=PARENTS)
    text = " | ".join(reasons(prepared))
    assert "parent community '411002001099' does not exist" in text
    assert "mostly outside its parent 411002001002: 0% inside" in text


def test_no_parents_loaded_asks_for_parent_layer_or_parent_code():
    layer = _layer([_box(0, 0, 0.004, 0.004)])
    prepared = prepare_areas(layer, "grid")
    assert "--parent-code" in reasons(prepared)[0]
    standalone = prepare_areas(layer, "grid", parent_code="999999001001")
    assert standalone.ok and standalone.areas["code"].iloc[0] == "999999001001001"


def test_empty_file_is_a_problem():
    prepared = prepare_areas(_layer([]), "grid", parents=PARENTS)
    assert reasons(prepared) == ["the file holds no features"]


def test_unknown_field_is_an_error_naming_the_columns():
    with pytest.raises(GridmapError, match="code_field 'nope' is not a column"):
        prepare_areas(_layer([_box(0, 0, 1, 1)], beat=["1"]), "grid", code_field="nope")


def test_spatial_parent_is_the_one_holding_most_of_the_polygon():
    straddling = _box(0.007, 0, 0.012, 0.005)  # 3/5 in community 001, 2/5 in 002
    codes, shares = spatial_parents([straddling], PARENTS)
    assert codes == ["411002001001"]
    assert shares[0] == pytest.approx(0.6, abs=0.01)


@pytest.mark.parametrize("suffix", [".geojson", ".gpkg", ".shp", ".parquet"])
def test_formats_round_trip(tmp_path, suffix):
    layer = _layer([_box(0, 0, 0.004, 0.004)], code=[COMMUNITY + "001"])
    path = write_areas(layer, tmp_path / f"grids{suffix}")
    back = read_areas(path)
    assert back.crs.to_epsg() == 4326
    assert str(back["code"].iloc[0]) == COMMUNITY + "001"
    assert back.geometry.iloc[0].equals(layer.geometry.iloc[0])


def test_file_without_crs_needs_crs_option(tmp_path):
    layer = gpd.GeoDataFrame({"code": ["1"]}, geometry=[_box(0, 0, 1, 1)])  # no CRS
    layer.to_file(tmp_path / "nocrs.shp")
    with pytest.raises(CRSError, match="give --crs"):
        read_areas(tmp_path / "nocrs.shp")
    assert read_areas(tmp_path / "nocrs.shp", crs="cgcs2000").crs.to_epsg() == 4326


def test_projected_file_is_reprojected_and_out_of_range_is_reported(tmp_path):
    metric = _layer([_box(0, 0, 0.004, 0.004)]).to_crs(4547)  # CGCS2000 / GK CM 114E
    metric.to_file(tmp_path / "gk.gpkg")
    back = read_areas(tmp_path / "gk.gpkg")
    assert back.geometry.iloc[0].bounds[0] == pytest.approx(113.80, abs=1e-6)
    # The same metres labelled as degrees: every polygon is out of range.
    wrong = read_areas(tmp_path / "gk.gpkg", crs="wgs84")
    prepared = prepare_areas(wrong, "grid", parents=PARENTS)
    assert "out of lon/lat range" in reasons(prepared)[0]


def test_unsupported_format_is_named(tmp_path):
    with pytest.raises(GridmapError, match="unsupported file type '.csv'"):
        write_areas(_layer([_box(0, 0, 1, 1)]), tmp_path / "x.csv")
