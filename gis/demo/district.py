"""Deterministic demo district: Weidu district, Xuchang, with synthetic content.

``build_demo()`` returns one district (GB/T 2260 code 411002, 魏都区) around
113.82 E, 34.03 N, about 88 km², with 8 streets, 89 communities, exactly 620
grids (some dedicated to an enterprise, school or hospital) and about 5,600
micro-grids; a staff roster; a year of incidents with planted hotspots; a
door-plate gazetteer; the road network; and, on request, planted coverage
defects. Same seed, same output, bit for bit.

How the boundaries are made (details in the modules of :mod:`gis.demo`):

1. roads — arterials, a meandering river, the old-town moat, secondary roads,
   then local streets and alleys inside every superblock, denser in the old
   town — are noded with snap rounding on a 0.5 m grid and polygonized into
   blocks, in EPSG:4547 (CGCS2000 / 3-degree GK, CM 114 E);
2. slivers and the smallest blocks merge into a neighbour within their
   superblock: the micro-grids;
3. top-down seeded region growing on the block adjacency graph, balanced on
   households, with a penalty for crossing major roads: streets (groups of
   superblocks), communities, grids — so the counts are exact and every area
   nests in its parent by construction;
4. blocks are projected to EPSG:4326 and rounded to 1e-7 degrees, then each
   level is the coverage union of the level below: no gaps, no overlaps,
   bit-identical shared edges.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gis.codes import DEFAULT_SCHEME
from gis.demo import defects as defects_
from gis.demo.areas import COLUMNS, build_areas, to_metric, to_wgs84
from gis.demo.blocks import build_blocks, merge_faces, transformer
from gis.demo.hierarchy import build_hierarchy
from gis.demo.incidents import build_incidents, plan_hotspots
from gis.demo.names import DISTRICT_NAME, DISTRICT_RESPONSIBLE
from gis.demo.people import build_gazetteer, build_staff
from gis.errors import ValidationError

__all__ = [
    "AREA_COLUMNS",
    "DemoDistrict",
    "DistrictSpec",
    "build_demo",
    "build_district",
    "DISTRICT_CODE",
    "LEVEL_COUNTS",
    "WEIDU",
]

#: Columns of every area frame, in order.
AREA_COLUMNS = COLUMNS

DISTRICT_CODE = "411002"
CENTRE_LONLAT = (113.82, 34.03)
AREA_M2 = 88.0e6
#: Exact number of areas per level below the district (micro-grids: about 5,600).
LEVEL_COUNTS = {"street": 8, "community": 89, "grid": 620}
GRID_WORKLOAD_CV = 0.5  # spread of households between grids, before any redesign
_STREAMS = ("geometry", "hierarchy", "names", "staff", "defects", "gazetteer", "incidents")


@dataclass(frozen=True)
class DistrictSpec:
    """What one generated district looks like: where, how big, how many areas per level.

    ``faces`` is the number of blocks the roads cut (before slivers merge) and
    ``micro_grids`` the range the micro-grid count is drawn from.
    """

    code: str
    name: str
    responsible: str
    centre_lonlat: tuple[float, float]
    area_m2: float
    level_counts: dict[str, int]
    faces: int
    micro_grids: tuple[int, int]


#: The demo district: Weidu district, Xuchang.
WEIDU = DistrictSpec(
    DISTRICT_CODE,
    DISTRICT_NAME,
    DISTRICT_RESPONSIBLE,
    CENTRE_LONLAT,
    AREA_M2,
    LEVEL_COUNTS,
    faces=6600,
    micro_grids=(5450, 5750),
)


@dataclass
class DemoDistrict:
    """The generated district.

    Attributes
    ----------
    seed : int
    district, streets, communities, grids, micro_grids : GeoDataFrame
        :data:`AREA_COLUMNS` (``code, name, level, kind, parent_code,
        population, households, responsible, geometry``), EPSG:4326, sorted by
        code. Kinds: ``administrative`` down to communities, ``comprehensive``
        or ``dedicated`` for grids, ``micro`` for micro-grids.
    staff : DataFrame
        ``name, role, area_code, phone``; roles ``grid_leader``,
        ``grid_worker``, ``micro_grid_worker``, ``dedicated_grid_leader``.
    incidents : DataFrame
        ``external_id, source, category, description, address, reported_at,
        lon, lat, crs, true_lon, true_lat``, sorted by ``reported_at``
        (Asia/Shanghai). ``lon``/``lat`` are in the CRS named by ``crs``
        ("wgs84" or "gcj02"); address-only reports have NaN and ``crs`` None.
        ``true_lon``/``true_lat`` are the WGS84 truth (for an address-only
        report: its door plate in the gazetteer). Then each one's history
        through the closed loop as of the end of the year
        (:mod:`gis.demo.history`): ``status, handling_level, registered_at,
        dispatched_at, handled_at, verified_at, closed_at`` (NaN / NaT for
        what has not happened yet).
    gazetteer : DataFrame
        ``address, lon, lat, micro_grid_code`` (WGS84), one row per door plate
        or building; the code is missing for a door plate inside a planted gap.
    roads : GeoDataFrame
        LineStrings with ``name`` and ``road_class`` (arterial, secondary,
        local, river), EPSG:4326.
    planted : dict
        What was planted, for tests to find again:

        - ``gap``: None, or ``grid_code`` (the grid cut), ``micro_grid_code``
          (the micro-grid cut with it), ``neighbor_code`` (the grid across the
          gap's edge), ``community_code``, ``geometry`` (shapely, EPSG:4326),
          ``wkt``, ``area_m2``;
        - ``overlap``: None, or ``grid_code`` (the grid that grew),
          ``neighbor_code`` (the grid it grew into, same community),
          ``community_code``, ``geometry``, ``wkt``, ``area_m2``,
          ``neighbor_share`` (overlap / neighbour area);
        - ``unstaffed``: sorted grid codes left without any staff ([] when clean);
        - ``hotspots``: one dict per hotspot (also in a clean demo):
          ``category``, ``centre`` (lon, lat), ``centre_lon``, ``centre_lat``,
          ``radius_m``, ``n_incidents``, ``start``/``end`` (dates),
          ``grid_codes`` (grids taking at least 10 % of its incidents) and
          ``grid_counts`` (incidents per grid).
    """

    seed: int
    district: gpd.GeoDataFrame
    streets: gpd.GeoDataFrame
    communities: gpd.GeoDataFrame
    grids: gpd.GeoDataFrame
    micro_grids: gpd.GeoDataFrame
    staff: pd.DataFrame
    incidents: pd.DataFrame
    gazetteer: pd.DataFrame
    roads: gpd.GeoDataFrame
    planted: dict = field(default_factory=dict)

    def areas(self) -> gpd.GeoDataFrame:
        """All levels in one frame, district first, then streets, … micro-grids."""
        frames = [self.district, self.streets, self.communities, self.grids, self.micro_grids]
        return gpd.GeoDataFrame(
            pd.concat(frames, ignore_index=True), geometry="geometry", crs="EPSG:4326"
        )

    def summary(self) -> dict[str, int]:
        """Counts per level, dedicated grids, staff, incidents and gazetteer entries."""
        return {
            "districts": len(self.district),
            "streets": len(self.streets),
            "communities": len(self.communities),
            "grids": len(self.grids),
            "dedicated_grids": int((self.grids["kind"] == "dedicated").sum()),
            "micro_grids": len(self.micro_grids),
            "staff": len(self.staff),
            "incidents": len(self.incidents),
            "gazetteer": len(self.gazetteer),
            "households": int(self.district["households"].sum()),
            "population": int(self.district["population"].sum()),
        }


def build_demo(
    seed: int = 411002, defects: bool = False, n_incidents: int = 50_000
) -> DemoDistrict:
    """Generate the demo district.

    Parameters
    ----------
    seed : int
        Seed of every random choice; the same seed gives identical frames.
        Each part (geometry, names, staff, incidents, …) draws from its own
        stream, so ``defects`` and ``n_incidents`` change nothing else.
    defects : bool
        Plant one coverage gap, one overlap and three unstaffed grids, and
        record them in ``planted``.
    n_incidents : int
        Incidents over 2023, hotspot incidents included (0 for none).

    Returns
    -------
    DemoDistrict

    Raises
    ------
    ValidationError
        For a negative or non-integer seed, a non-bool ``defects`` or an
        ``n_incidents`` outside 0–5,000,000.
    """
    _check_arguments(seed, defects, n_incidents)
    return build_district(_streams(int(seed)), WEIDU, n_incidents, defects=defects, seed=int(seed))


def build_district(
    rng: dict[str, np.random.Generator],
    spec: DistrictSpec,
    n_incidents: int,
    *,
    defects: bool = False,
    seed: int = 0,
) -> DemoDistrict:
    """One district of ``spec`` drawn from the streams ``rng`` (see :func:`build_demo`).

    The demo district and every district of a generated city
    (:func:`gis.demo.city.build_city`) are made here.
    """
    from gis.crs import from_wgs84  # GCJ-02 lives in one place

    blocks, groups, h, areas = _district(rng, spec)
    micro_metric = np.array(
        [
            blocks.faces[f[0]] if len(f) == 1 else shapely.coverage_union_all(blocks.faces[f])
            for f in groups
        ]
    )
    gazetteer = build_gazetteer(
        rng["gazetteer"],
        micro_metric,
        areas.micro_code,
        h.households,
        areas.street_name,
        areas.community_name,
        blocks.roads,
    )
    sites = defects_.choose_sites(rng["defects"], h)
    incidents, hotspots = _incidents(
        rng["incidents"], n_incidents, h, areas, micro_metric, gazetteer, sites, from_wgs84
    )
    planted: dict = {"gap": None, "overlap": None, "unstaffed": [], "hotspots": hotspots}
    if defects:
        planted.update(_apply_defects(sites, areas, gazetteer.frame))
    staff = build_staff(
        rng["staff"], areas.layers["grid"], areas.layers["micro_grid"], planted["unstaffed"]
    )
    layers = areas.layers
    return DemoDistrict(
        seed=seed,
        district=layers["district"],
        streets=layers["street"],
        communities=layers["community"],
        grids=layers["grid"],
        micro_grids=layers["micro_grid"],
        staff=staff,
        incidents=incidents,
        gazetteer=gazetteer.frame,
        roads=_roads_frame(blocks.roads),
        planted=planted,
    )


def _check_arguments(seed, defects, n_incidents) -> None:
    def whole(value) -> bool:
        return isinstance(value, int | np.integer) and not isinstance(value, bool)

    if not whole(seed) or seed < 0:
        raise ValidationError(f"seed must be a non-negative integer, got {seed!r}")
    if not isinstance(defects, bool | np.bool_):
        raise ValidationError(f"defects must be True or False, got {defects!r}")
    if not whole(n_incidents) or not 0 <= n_incidents <= 5_000_000:
        raise ValidationError(f"n_incidents must be an integer 0–5,000,000, got {n_incidents!r}")


def _streams(seed: int | np.random.SeedSequence) -> dict[str, np.random.Generator]:
    """One independent generator per part, all derived from ``seed``."""
    root = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
    children = root.spawn(len(_STREAMS))
    return {
        name: np.random.default_rng(child) for name, child in zip(_STREAMS, children, strict=True)
    }


def _district(rng, spec: DistrictSpec):
    """Blocks, micro-grid groups, the hierarchy and the area layers."""
    x, y = transformer(to_wgs84=False).transform(*spec.centre_lonlat)
    centre = (float(round(x)), float(round(y)))
    blocks, bumps = build_blocks(rng["geometry"], centre, spec.area_m2, target_faces=spec.faces)
    groups = merge_faces(blocks, target=int(rng["geometry"].integers(*spec.micro_grids)))
    h = build_hierarchy(
        rng["hierarchy"], blocks, groups, bumps, spec.level_counts, GRID_WORKLOAD_CV
    )
    areas = build_areas(
        rng["names"], h, blocks.faces, spec.code, centre, spec.name, spec.responsible
    )
    return blocks, groups, h, areas


def _incidents(rng, n, h, areas, micro_metric, gazetteer, sites, from_wgs84):
    """Incidents and hotspot records; hotspots keep away from the defect sites."""
    grid_area = np.bincount(h.grid, weights=h.micro_area)
    plans = plan_hotspots(
        rng, h.micro_xy, h.population, h.grid, grid_area, h.grid_dedicated, sites.grids(), n
    )
    incidents, hotspots = build_incidents(
        rng,
        n,
        micro_metric,
        h.population.astype(float),
        areas.grid_code[h.grid],
        gazetteer,
        plans,
        from_wgs84,
    )
    to_lonlat = transformer(to_wgs84=True)
    for record in hotspots:
        lon, lat = to_lonlat.transform(*record.pop("centre_xy"))
        record["centre_lon"], record["centre_lat"] = round(lon, 7), round(lat, 7)
        record["centre"] = (record["centre_lon"], record["centre_lat"])
    return incidents, hotspots


def _apply_defects(sites: defects_.DefectSites, areas, gazetteer: pd.DataFrame) -> dict:
    """Edit the grid and micro-grid layers in place; return the ``planted`` records."""
    grids, micro = areas.layers["grid"], areas.layers["micro_grid"]
    code = [str(c) for c in areas.grid_code]
    row = {c: i for i, c in enumerate(grids["code"])}
    micro_row = {c: i for i, c in enumerate(micro["code"])}
    gcol, mcol = grids.columns.get_loc("geometry"), micro.columns.get_loc("geometry")

    gap_code, micro_code = code[sites.gap_grid], str(areas.micro_code[sites.gap_micro])
    piece, grid_new, micro_new = defects_.cut_gap(
        grids.geometry.iloc[row[gap_code]],
        grids.geometry.iloc[row[code[sites.gap_neighbor]]],
        micro.geometry.iloc[micro_row[micro_code]],
    )
    grids.iat[row[gap_code], gcol] = grid_new
    micro.iat[micro_row[micro_code], mcol] = micro_new
    inside = shapely.contains_xy(piece, gazetteer["lon"].to_numpy(), gazetteer["lat"].to_numpy())
    gazetteer.loc[inside, "micro_grid_code"] = None

    grow_code, into_code = code[sites.overlap_grid], code[sites.overlap_neighbor]
    overlap, grown, share = defects_.grow_overlap(
        grids.geometry.iloc[row[grow_code]], grids.geometry.iloc[row[into_code]]
    )
    grids.iat[row[grow_code], gcol] = grown
    gap = {
        "grid_code": gap_code,
        "micro_grid_code": micro_code,
        "neighbor_code": code[sites.gap_neighbor],
        "community_code": DEFAULT_SCHEME.parent(gap_code),
        "geometry": piece,
        "wkt": piece.wkt,
        "area_m2": _area_m2(piece),
    }
    over = {
        "grid_code": grow_code,
        "neighbor_code": into_code,
        "community_code": DEFAULT_SCHEME.parent(grow_code),
        "geometry": overlap,
        "wkt": overlap.wkt,
        "area_m2": _area_m2(overlap),
        "neighbor_share": share,
    }
    unstaffed = sorted(str(code[g]) for g in sites.unstaffed)
    return {"gap": gap, "overlap": over, "unstaffed": unstaffed}


def _area_m2(geom) -> float:
    return float(shapely.area(to_metric(np.array([geom]))[0]))


def _roads_frame(roads) -> gpd.GeoDataFrame:
    lines = to_wgs84(np.array([line for _, _, line in roads], dtype=object))
    return gpd.GeoDataFrame(
        {
            "name": pd.array([n for n, _, _ in roads], dtype="str"),
            "road_class": pd.array([c for _, c, _ in roads], dtype="str"),
        },
        geometry=gpd.GeoSeries(lines, crs="EPSG:4326"),
    )
