"""Staff roster and door-plate gazetteer of the demo district (private helper).

Door plates follow the Chinese pattern: a compound (one micro-grid, a 院) has a
number on the road it faces — odd on one side, even on the other, increasing
along the road — and its buildings are 1号楼, 2号楼, …
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import shapely

from gis.demo.blocks import transformer
from gis.demo.names import DISTRICT_NAME, person_names, phone_numbers
from gis.vocabulary import STAFF_ROLES


@dataclass
class Gazetteer:
    """The public frame plus the parts addresses are made of (for incident text)."""

    frame: pd.DataFrame  # address, lon, lat, micro_grid_code
    xy: np.ndarray  # metric coordinates of each entry
    micro: np.ndarray  # micro-grid index of each entry
    parts: pd.DataFrame  # street, community, road, number, building (0 = none)


def sample_in_polygons(
    rng: np.random.Generator, polygons: np.ndarray, which: np.ndarray
) -> np.ndarray:
    """One uniform random point inside ``polygons[which[i]]`` for every i (rejection)."""
    bounds = shapely.bounds(polygons)
    shapely.prepare(polygons)
    out = np.empty((len(which), 2))
    pending = np.arange(len(which))
    while len(pending):
        b = bounds[which[pending]]
        x = rng.uniform(b[:, 0], b[:, 2])
        y = rng.uniform(b[:, 1], b[:, 3])
        inside = shapely.contains_xy(polygons[which[pending]], x, y)
        out[pending[inside], 0] = x[inside]
        out[pending[inside], 1] = y[inside]
        pending = pending[~inside]
    return out


def build_staff(
    rng: np.random.Generator, grids: pd.DataFrame, micro: pd.DataFrame, skip_grids: list[str]
) -> pd.DataFrame:
    """Grid leaders and workers per grid, building heads for most micro-grids.

    A comprehensive grid has one leader and one worker per ~350 households
    (at least one); a dedicated grid has the institution's own leader and one
    worker. Grids in ``skip_grids`` get nobody at all (a planted defect).
    """
    leader, worker, micro_worker, dedicated_leader = STAFF_ROLES
    rows: list[tuple[str, str]] = []
    for code, kind, hh in zip(grids["code"], grids["kind"], grids["households"], strict=True):
        if kind == "dedicated":
            rows += [(dedicated_leader, code), (worker, code)]
        else:
            workers = 1 + int(hh > 380) + int(hh > 720)
            rows += [(leader, code)] + [(worker, code)] * workers
    heads = (micro["households"].to_numpy() >= 8) & (rng.random(len(micro)) < 0.85)
    rows += [(micro_worker, code) for code in micro["code"].to_numpy()[heads]]
    skip = tuple(skip_grids)
    if skip:
        rows = [r for r in rows if not r[1].startswith(skip)]
    names = person_names(rng, len(rows))
    phones = phone_numbers(rng, len(rows))
    staff = pd.DataFrame(
        {
            "name": names,
            "role": [r[0] for r in rows],
            "area_code": [r[1] for r in rows],
            "phone": phones,
        }
    )
    staff["name"] = staff["name"].astype(str)
    staff["role"] = staff["role"].astype(str)
    staff["area_code"] = staff["area_code"].astype(str)
    staff["phone"] = staff["phone"].astype(str)
    rank = staff["role"].map({r: i for i, r in enumerate(STAFF_ROLES)})
    order = np.lexsort((np.arange(len(staff)), rank.to_numpy(), staff["area_code"].to_numpy()))
    return staff.iloc[order].reset_index(drop=True)


def build_gazetteer(
    rng,
    micro_metric: np.ndarray,
    micro_code: np.ndarray,
    households: np.ndarray,
    street_name: np.ndarray,
    community_name: np.ndarray,
    roads,
) -> Gazetteer:
    """Door plates of every compound and its buildings (about one per 25 households)."""
    plates = _door_plates(micro_metric, roads)
    n_build = np.where(
        households > 0,
        np.maximum(1, np.round(households / rng.uniform(15, 40, len(households)))),
        0,
    ).astype(np.int64)
    micro = np.repeat(np.arange(len(micro_metric)), n_build)
    building = np.concatenate(
        [np.arange(1, n + 1) if n > 1 else np.zeros(n, dtype=np.int64) for n in n_build]
    )
    # buildings stand back from the street: a point on the edge would round outside
    inner = shapely.buffer(micro_metric, -6.0)
    usable = shapely.area(inner) > 0.3 * shapely.area(micro_metric)
    xy = sample_in_polygons(rng, np.where(usable, inner, micro_metric), micro)
    road, number = plates[0][micro], plates[1][micro]
    parts = pd.DataFrame(
        {
            "street": street_name[micro],
            "community": community_name[micro],
            "road": road,
            "number": number,
            "building": building,
        }
    )
    address = [canonical_address(*p) for p in parts.itertuples(index=False)]
    lon, lat = transformer(to_wgs84=True).transform(xy[:, 0], xy[:, 1])
    frame = pd.DataFrame(
        {
            "address": pd.array(address, dtype="str"),
            "lon": np.round(lon, 7),
            "lat": np.round(lat, 7),
            "micro_grid_code": pd.array(micro_code[micro], dtype="str"),
        }
    )
    return Gazetteer(frame, xy, micro, parts)


def canonical_address(street: str, community: str, road: str, number: int, building: int) -> str:
    """魏都区新兴街道裴山庙社区建设路12号3号楼 (no 号楼 for a single-building compound)."""
    tail = f"{building}号楼" if building else ""
    return f"{DISTRICT_NAME}{street}{community}{road}{number}号{tail}"


def _door_plates(micro_metric: np.ndarray, roads) -> tuple[np.ndarray, np.ndarray]:
    """Road and house number of each compound's gate: the nearest road, numbered along it."""
    names = np.array([name for name, cls, _ in roads if cls != "river"])
    lines = np.array([line for _, cls, line in roads if cls != "river"], dtype=object)
    gates = shapely.point_on_surface(micro_metric)
    # query two-point pieces: a long curved road has a huge envelope, its pieces do not
    coords, line_of = shapely.get_coordinates(lines, return_index=True)
    same = line_of[1:] == line_of[:-1]
    pieces = shapely.linestrings(np.stack([coords[:-1][same], coords[1:][same]], axis=1))
    nearest = shapely.STRtree(pieces).query_nearest(gates, all_matches=False, return_distance=False)
    road_idx = np.empty(len(gates), dtype=np.int64)
    road_idx[nearest[0]] = line_of[:-1][same][nearest[1]]
    line = lines[road_idx]
    along = shapely.line_locate_point(line, gates)
    here = shapely.get_coordinates(shapely.line_interpolate_point(line, along))
    ahead = shapely.get_coordinates(shapely.line_interpolate_point(line, along + 1.0))
    behind = shapely.get_coordinates(shapely.line_interpolate_point(line, along - 1.0))
    direction = ahead - behind
    to_gate = shapely.get_coordinates(gates) - here
    left = direction[:, 0] * to_gate[:, 1] - direction[:, 1] * to_gate[:, 0] > 0
    number = 2 * (along // 12.0).astype(np.int64) + np.where(left, 1, 2)
    used: dict[str, set[int]] = {}
    for i in np.argsort(along, kind="stable"):  # a clash takes the next free number
        taken = used.setdefault(names[road_idx[i]], set())
        while number[i] in taken:
            number[i] += 2
        taken.add(int(number[i]))
    return names[road_idx], number
