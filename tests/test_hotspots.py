"""gis.hotspots: per-grid counts, Gi* bins, kernel density, Mann-Kendall, emerging patterns.

Hand-drawn lattices of 100 m squares in UTM 49N have answers known by
construction (neighbour counts, Gi* by its formula); the demo district (built
once per test session, shared with tests/test_coverage.py) must show every
planted hotspot in the 99 % bin.
"""

from __future__ import annotations

import esda
import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import pytest
from scipy import stats
from shapely.geometry import box

from gis.assign import GridIndex
from gis.coverage import incident_lonlat
from gis.errors import ValidationError
from gis.hotspots import (
    CONFIDENCE_LEVELS,
    EMERGING_CLASSES,
    EmergingHotSpots,
    HotSpots,
    classify_emerging,
    contiguity_weights,
    grid_counts,
    kernel_density,
    mann_kendall,
)
from tests.helpers import demo_district

UTM = "EPSG:32649"
X0, Y0 = 600_000.0, 3_765_000.0
TO_LONLAT = pyproj.Transformer.from_crs(UTM, 4326, always_xy=True)


def lattice(n: int, shrink: float = 0.0, values=None) -> gpd.GeoDataFrame:
    """n x n squares of 100 m, codes g<row><col> (row 0 = south), optional value column."""
    cells = [(r, c) for r in range(n) for c in range(n)]
    frame = gpd.GeoDataFrame(
        {"code": [f"g{r}{c}" for r, c in cells]},
        geometry=[
            box(
                X0 + 100 * c + shrink,
                Y0 + 100 * r + shrink,
                X0 + 100 * (c + 1) - shrink,
                Y0 + 100 * (r + 1) - shrink,
            )
            for r, c in cells
        ],
        crs=UTM,
    )
    if values is not None:
        frame["count"] = np.asarray(values, dtype=float).ravel()
    return frame


def gi_star_by_formula(y: np.ndarray, neighbours: list[set[int]]) -> np.ndarray:
    """Getis & Ord (1995) Gi* with binary weights, the grid itself included."""
    n, mean, s = len(y), y.mean(), y.std()
    z = np.empty(n)
    for i, ns in enumerate(neighbours):
        members = sorted(ns | {i})
        w = len(members)
        z[i] = (y[members].sum() - mean * w) / (s * np.sqrt((n * w - w**2) / (n - 1)))
    return z


def cluster_values(n: int = 7, seed: int = 3) -> np.ndarray:
    """Poisson(3) background with a 3 x 3 block of 15s in the south-west corner."""
    values = np.random.default_rng(seed).poisson(3, (n, n)).astype(float)
    values[:3, :3] = 15
    return values


# -- weights -------------------------------------------------------------------------
def test_queen_and_rook_contiguity_on_a_lattice():
    grids = lattice(5)
    queen, _ = contiguity_weights(grids, "queen")
    rook, _ = contiguity_weights(grids, "rook")
    assert queen.id_order == list(grids["code"])
    assert (queen.cardinalities["g00"], queen.cardinalities["g22"]) == (3, 8)
    assert (rook.cardinalities["g00"], rook.cardinalities["g22"]) == (2, 4)
    assert sorted(rook.neighbors["g22"]) == ["g12", "g21", "g23", "g32"]


def test_the_tolerance_bridges_hairline_gaps_and_islands_get_their_nearest_grid():
    exact, _ = contiguity_weights(lattice(4), "queen", tolerance_m=0)
    gappy = lattice(4, shrink=0.2)  # 0.4 m between neighbours
    bridged, linked = contiguity_weights(gappy, "queen", tolerance_m=1.0)
    assert bridged.neighbors == exact.neighbors and linked == []
    strict, linked = contiguity_weights(gappy, "queen", tolerance_m=0)
    assert len(linked) == 16 and all(strict.cardinalities[c] >= 1 for c in strict.id_order)
    kept, linked = contiguity_weights(gappy, "queen", tolerance_m=0, islands="keep")
    assert linked == [] and len(kept.islands) == 16


def test_a_detached_grid_is_linked_to_its_nearest_grid():
    grids = lattice(3)
    far = gpd.GeoDataFrame(
        {"code": ["far"]}, geometry=[box(X0 + 500, Y0, X0 + 600, Y0 + 100)], crs=UTM
    )
    w, linked = contiguity_weights(pd.concat([grids, far], ignore_index=True))
    assert linked == ["far"] and w.neighbors["far"] == ["g02"] and "far" in w.neighbors["g02"]


def test_weights_refuse_bad_arguments():
    with pytest.raises(ValidationError, match="kind"):
        contiguity_weights(lattice(2), "bishop")
    with pytest.raises(ValidationError, match="tolerance_m"):
        contiguity_weights(lattice(2), "rook", tolerance_m=1.0)
    with pytest.raises(ValidationError, match="islands"):
        contiguity_weights(lattice(2), islands="drop")


# -- Gi* on a lattice ----------------------------------------------------------------
def test_gi_star_z_is_the_getis_ord_formula_and_the_cluster_is_hot():
    grids = lattice(7, values=cluster_values())
    model = HotSpots(permutations=0).fit(grids)
    w = model.weights_
    neighbours = [{w.id_order.index(j) for j in w.neighbors[c]} for c in w.id_order]
    expected = gi_star_by_formula(grids["count"].to_numpy(), neighbours)
    assert model.z_ == pytest.approx(expected, rel=1e-9)
    assert model.p_ == pytest.approx(2 * stats.norm.sf(np.abs(expected)))
    bins = pd.Series(model.bin_, index=grids["code"])
    assert (bins[["g00", "g01", "g10", "g11", "g12", "g21"]] == 3).all()
    assert (bins[["g55", "g56", "g65", "g66"]] <= 0).all()  # far from the block
    assert list(model.result_.columns) == ["code", "count", "z", "p", "bin", "geometry"]


@pytest.mark.parametrize(
    ("permutations", "fdr", "alpha"),
    [(0, False, 0.10), (0, True, 0.10), (199, False, 0.05), (99, False, 0.01)],
)
def test_bins_follow_the_p_value_cut_offs(permutations, fdr, alpha):
    model = HotSpots(permutations=permutations, seed=5, fdr=fdr, alpha=alpha).fit(
        lattice(7, values=cluster_values())
    )
    expected = np.zeros(len(model.z_), dtype=int)
    for level, cut in sorted(model.thresholds_.items()):
        expected[model.p_ <= cut] = level
    assert (model.bin_ == expected * np.sign(model.z_)).all()
    assert set(model.thresholds_) == {b for b, p in CONFIDENCE_LEVELS.items() if p <= alpha}
    if fdr:
        for level, cut in model.thresholds_.items():
            assert cut == pytest.approx(esda.fdr(model.p_, CONFIDENCE_LEVELS[level]))
    else:
        assert model.thresholds_ == {b: CONFIDENCE_LEVELS[b] for b in model.thresholds_}


def test_ready_weights_are_used_as_binary_and_left_unchanged():
    grids = lattice(7, values=cluster_values())
    w, _ = contiguity_weights(grids)
    w.transform = "r"
    model = HotSpots(permutations=0, weights=w).fit(grids)
    assert model.z_ == pytest.approx(HotSpots(permutations=0).fit(grids).z_)
    assert w.transform == "R"


def test_permutation_p_values_are_two_sided_and_seeded():
    grids = lattice(7, values=cluster_values())
    a = HotSpots(permutations=199, seed=11).fit(grids)
    b = HotSpots(permutations=199, seed=11).fit(grids)
    c = HotSpots(permutations=199, seed=12).fit(grids)
    assert (a.p_ == b.p_).all() and (a.bin_ == b.bin_).all()
    assert (a.p_ != c.p_).any()
    assert a.p_.min() >= 2 / 200 and a.p_.max() <= 1
    assert (a.z_ == c.z_).all()  # z is analytical


def test_constant_values_have_no_hot_spots():
    model = HotSpots(permutations=99).fit(lattice(4, values=np.full(16, 2.0)))
    assert (model.bin_ == 0).all() and (model.p_ == 1).all() and (model.z_ == 0).all()


def test_hot_spots_refuse_bad_arguments():
    grids = lattice(3, values=np.arange(9))
    for kwargs, match in [
        ({"permutations": -1}, "permutations"),
        ({"alpha": 0.2}, "alpha"),
        ({"seed": 1.5}, "seed"),
        ({"fdr": "yes"}, "fdr"),
        ({"weights": "bishop"}, "weights"),
    ]:
        with pytest.raises(ValidationError, match=match):
            HotSpots(**kwargs).fit(grids)
    with pytest.raises(ValidationError, match="column"):
        HotSpots().fit(grids, column="rate")
    with pytest.raises(ValidationError, match=">= 0"):
        HotSpots().fit(grids.assign(count=-grids["count"]))
    w, _ = contiguity_weights(lattice(3))
    with pytest.raises(ValidationError, match="id_order"):
        HotSpots(weights=w).fit(grids.iloc[::-1])


# -- counts --------------------------------------------------------------------------
@pytest.fixture
def town():
    """Four grids (EPSG:4326) and eight incidents with times, categories and sources."""
    grids = lattice(2).to_crs(4326)
    grids["population"] = [1000, 500, 0, 2000]
    xy = [(50, 50), (50, 60), (150, 50), (150, 150), (150, 160), (50, 150), (900, 900), (50, 40)]
    lon, lat = TO_LONLAT.transform([X0 + x for x, _ in xy], [Y0 + y for _, y in xy])
    times = pd.to_datetime(
        [
            "2023-01-01 00:00",
            "2023-01-31 23:59",
            "2023-02-01 00:00",
            "2023-02-15 00:00",
            "2023-03-01 00:00",
            "2023-03-02 00:00",
            "2023-01-05 00:00",
            "2023-01-06 00:00",
        ]
    )
    incidents = pd.DataFrame(
        {
            "lon": lon,
            "lat": lat,
            "reported_at": times.tz_localize("Asia/Shanghai"),
            "category": ["0401", "0402", "0201", "0401", "0104", "0401", "0401", "0401"],
            "source": [
                "patrol",
                "resident",
                "patrol",
                "police_110",
                "patrol",
                "patrol",
                "patrol",
                "hotline_12345",
            ],
        }
    )
    incidents.loc[7, ["lon", "lat"]] = np.nan  # unlocated
    return grids, incidents


def test_counts_rates_and_densities_per_grid(town):
    grids, incidents = town
    counts = grid_counts(incidents, grids)
    assert list(counts.columns) == [
        "code",
        "count",
        "population",
        "rate_per_1000",
        "area_km2",
        "per_km2",
        "geometry",
    ]
    assert counts["count"].tolist() == [2, 1, 1, 2]  # g00, g01, g10, g11
    assert counts.attrs == {"selected": 8, "unassigned": 2}  # one outside, one unlocated
    assert counts["rate_per_1000"].tolist()[:2] == [2.0, 2.0]
    assert np.isnan(counts["rate_per_1000"].iloc[2])  # nobody lives there
    assert counts["area_km2"].to_numpy() == pytest.approx(0.01, rel=1e-3)
    assert counts["per_km2"].iloc[0] == pytest.approx(200, rel=1e-3)


def test_counts_from_grid_codes_equal_counts_from_coordinates(town):
    grids, incidents = town
    codes = GridIndex(grids).assign_xy(*incident_lonlat(incidents))["code"]
    by_code = grid_counts(incidents.drop(columns=["lon", "lat"]).assign(grid_code=codes), grids)
    assert by_code["count"].tolist() == grid_counts(incidents, grids)["count"].tolist()


def test_counts_select_a_half_open_window_categories_and_sources(town):
    grids, incidents = town
    january = grid_counts(incidents, grids, start="2023-01-01", end="2023-02-01")
    assert january.attrs["selected"] == 4 and january["count"].tolist() == [2, 0, 0, 0]
    safety = grid_counts(incidents, grids, category="04")  # the whole public-safety class
    assert safety.attrs["selected"] == 6 and safety["count"].tolist() == [2, 0, 1, 1]
    mixed = grid_counts(
        incidents, grids, category=["0401", "0201"], source=["patrol"], population_col=None
    )
    assert "rate_per_1000" not in mixed and mixed["count"].tolist() == [1, 1, 1, 0]
    aware = pd.Timestamp("2023-02-01", tz="UTC")  # 08:00 in Shanghai: the 00:00 report is out
    assert grid_counts(incidents, grids, start=aware).attrs["selected"] == 3


def test_counts_refuse_bad_arguments(town):
    grids, incidents = town
    with pytest.raises(ValidationError, match="end"):
        grid_counts(incidents, grids, start="2023-02-01", end="2023-01-01")
    with pytest.raises(ValidationError, match="population_col"):
        grid_counts(incidents, grids, population_col="residents")
    with pytest.raises(ValidationError, match="category"):
        grid_counts(incidents.drop(columns="category"), grids, category="04")
    with pytest.raises(ValidationError, match="lon"):
        grid_counts(incidents.drop(columns=["lon", "lat"]), grids)
    with pytest.raises(ValidationError, match="start"):
        grid_counts(incidents, grids, start="not a date")


# -- kernel density ------------------------------------------------------------------
def test_one_point_gives_a_gaussian_of_unit_mass():
    lon, lat = TO_LONLAT.transform(X0, Y0)
    surface = kernel_density([lon, np.nan], [lat, np.nan], bandwidth_m=100, cell_m=10)
    mass = surface.values.sum() * surface.cell_m**2 / 1e6
    assert mass == pytest.approx(1, rel=1e-3)
    assert surface.values.max() == pytest.approx(1e6 / (2 * np.pi * 100**2), rel=0.02)
    row, col = np.unravel_index(surface.values.argmax(), surface.values.shape)
    px, py = pyproj.Transformer.from_crs(4326, surface.crs, always_xy=True).transform(lon, lat)
    assert abs(surface.x[col] - px) <= 10 and abs(surface.y[row] - py) <= 10
    assert surface.y[0] > surface.y[-1]  # north up
    a, _, c, _, e, f = surface.transform
    assert (a, e) == (10, -10) and (c, f) == (surface.bounds[0], surface.bounds[3])


def test_density_weights_bounds_and_heat_points():
    lon, lat = TO_LONLAT.transform([X0, X0 + 1000], [Y0, Y0])
    (south, west), (north, east) = (lat[0] - 0.01, lon[0] - 0.01), (lat[0] + 0.01, lon[1] + 0.01)
    surface = kernel_density(lon, lat, 100, 20, bounds=(west, south, east, north), weights=[1, 3])
    (s, w), (n, e) = surface.lonlat_bounds()
    assert s <= south + 1e-3 and n >= north - 1e-3 and w <= west + 1e-3 and e >= east - 1e-3
    points = surface.to_points(min_share=0.5)
    assert list(points.columns) == ["lat", "lon", "weight"]
    assert points["weight"].max() == 1 and points["weight"].min() >= 0.5
    assert points["lon"].mean() == pytest.approx(lon[1], abs=2e-4)  # only the heavy point
    with pytest.raises(ValidationError, match="cell_m"):
        kernel_density(lon, lat, cell_m=0)
    with pytest.raises(ValidationError, match="cell_m"):
        kernel_density(lon, lat, cell_m=0.5, bandwidth_m=5000)
    with pytest.raises(ValidationError, match="bounds"):
        kernel_density([np.nan], [np.nan])


# -- trends --------------------------------------------------------------------------
def test_mann_kendall_statistic_ties_and_p_value():
    rising = mann_kendall([1, 2, 3, 4, 5, 6, 7, 8])
    assert rising["s"].iloc[0] == 28 and rising["tau"].iloc[0] == 1
    tau, p = stats.kendalltau(np.arange(8), [1, 3, 2, 5, 4, 7, 8, 6])
    got = mann_kendall([1, 3, 2, 5, 4, 7, 8, 6]).iloc[0]
    assert got["tau"] == pytest.approx(tau)
    # no ties: the same z as Kendall's tau but with the continuity correction
    assert got["z"] == pytest.approx((got["s"] - 1) / np.sqrt(8 * 7 * 21 / 18))
    tied = mann_kendall([[1, 1, 2, 2, 3], [3, 3, 3, 3, 3]])
    assert tied["var_s"].tolist() == pytest.approx([(300 - 36) / 18, 0])
    assert tied["p"].iloc[1] == 1 and tied["z"].iloc[1] == 0
    with pytest.raises(ValidationError, match="3 steps"):
        mann_kendall([1, 2])


@pytest.mark.parametrize(
    ("bins", "trend_z", "expected"),
    [
        ([0, 0, 0, 0, 0, 0, 0, 0, 0, 2], 1, "new"),
        ([-1, 0, 0, 0, 0, 0, 0, 0, 0, 3], 1, "new"),
        ([0, 0, 0, 0, 0, 0, 0, 1, 2, 3], 3, "consecutive"),
        ([1, 1, 2, 2, 2, 3, 3, 3, 3, 3], 3, "intensifying"),
        ([3, 3, 3, 3, 3, 3, 2, 2, 1, 1], -3, "diminishing"),
        ([3, 3, 0, 3, 3, 3, 3, 3, 3, 3], 0, "persistent"),
        ([3, 3, 3, 3, 3, 3, 3, 3, 3, 0], 0, "historical"),
        ([0, 2, 0, 0, 1, 0, 0, 0, 2, 3], 1, "sporadic"),
        ([0, -2, 0, 0, 1, 0, 0, 0, 2, 3], 1, "oscillating"),
        ([3, 3, 3, 3, 3, 0, 0, 0, 0, 0], -3, "none"),
        ([-3, -3, -3, -3, -3, -3, -3, -3, -3, -3], 0, "none"),
    ],
)
def test_emerging_classes_follow_the_arcgis_rules(bins, trend_z, expected):
    p = 0.001 if abs(trend_z) >= 3 else 0.5
    (got,) = classify_emerging([bins], [trend_z], [p])
    assert got == expected and got in EMERGING_CLASSES


def test_emerging_counts_by_month_on_a_lattice():
    grids = lattice(3)
    starts = pd.date_range("2023-01-01", periods=6, freq="MS", tz="Asia/Shanghai")
    months = starts + pd.Timedelta(days=14)
    incidents = pd.DataFrame(
        {
            "grid_code": ["g00"] * 6 + ["g11"] * 2 + ["nowhere"],
            "reported_at": list(months) + [months[-1], months[-2], months[0]],
        }
    )
    model = EmergingHotSpots(permutations=0).fit(incidents, grids)
    assert list(model.periods_) == list(starts)
    assert model.counts_.loc["g00"].tolist() == [1] * 6
    assert model.counts_.loc["g11"].tolist() == [0, 0, 0, 0, 1, 1]
    assert model.counts_.to_numpy().sum() == 8  # "nowhere" is no grid
    assert model.class_.shape == (9,) and set(model.class_) <= set(EMERGING_CLASSES)
    assert list(model.result_.columns) == [
        "code",
        "class",
        "count",
        "hot_steps",
        "cold_steps",
        "trend_tau",
        "trend_p",
        "geometry",
    ]
    with pytest.raises(ValidationError, match="3 time steps"):
        EmergingHotSpots(freq="QS").fit(incidents, grids)
    with pytest.raises(ValidationError, match="freq"):
        EmergingHotSpots(freq="fortnightly").fit(incidents, grids)


# -- the demo district ---------------------------------------------------------------
@pytest.fixture(scope="module")
def demo():
    return demo_district()


@pytest.fixture(scope="module")
def assigned(demo):
    """The demo incidents with their grid code (WGS84 after GCJ-02 conversion)."""
    codes = GridIndex(demo.grids).assign_xy(*incident_lonlat(demo.incidents))["code"]
    return demo.incidents.assign(grid_code=codes.to_numpy())


def _window(hotspot: dict) -> dict:
    end = pd.Timestamp(hotspot["end"]) + pd.Timedelta(days=1)  # the record's end is inclusive
    return {"start": hotspot["start"], "end": end, "category": hotspot["category"]}


def test_every_planted_hotspot_is_in_the_99_percent_bin(demo, assigned):
    assert len(demo.planted["hotspots"]) >= 3
    for hotspot in demo.planted["hotspots"]:
        counts = grid_counts(assigned, demo.grids, **_window(hotspot))
        for model in (HotSpots(permutations=499, seed=7), HotSpots(permutations=0, fdr=True)):
            bins = model.fit(counts).result_.set_index("code")["bin"]
            assert (bins[hotspot["grid_codes"]] == 3).all(), (hotspot["category"], model.fdr)
            assert (bins == 3).sum() < 20  # a cluster, not the district


def test_gi_star_on_the_demo_is_deterministic_with_a_seed(demo, assigned):
    counts = grid_counts(assigned, demo.grids, **_window(demo.planted["hotspots"][0]))
    first, second = (HotSpots(permutations=199, seed=3).fit(counts) for _ in range(2))
    assert (first.p_ == second.p_).all() and (first.bin_ == second.bin_).all()
    assert first.islands_ == []  # the demo's grids share exact edges


def test_counting_from_coordinates_matches_the_assigned_codes(demo, assigned):
    hotspot = demo.planted["hotspots"][1]
    from_xy = grid_counts(demo.incidents, demo.grids, **_window(hotspot))
    from_codes = grid_counts(assigned, demo.grids, **_window(hotspot))
    assert from_xy["count"].tolist() == from_codes["count"].tolist()
    assert from_xy.attrs == from_codes.attrs


def test_emerging_patterns_of_the_planted_hotspots(demo, assigned):
    model = EmergingHotSpots(alpha=0.05)
    for hotspot in demo.planted["hotspots"]:
        model.fit(
            assigned, demo.grids, start="2023-01-01", end="2024-01-01", category=hotspot["category"]
        )
        classes = model.result_.set_index("code")["class"][hotspot["grid_codes"]]
        months = pd.Timestamp(hotspot["start"]).month, pd.Timestamp(hotspot["end"]).month
        if months == (1, 12):
            assert (classes == "persistent").all(), hotspot
        elif months[1] == 12:  # started during the year, still going: a run to the end
            assert (classes == "consecutive").all(), hotspot
        else:  # over before the year ended: not a hot spot now
            assert (classes == "none").all(), hotspot
        assert (model.result_["class"] != "none").sum() < 20
