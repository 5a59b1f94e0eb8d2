"""Area layers of the demo district: geometry, unified codes, names (private helper).

Geometry: blocks are projected to EPSG:4326 and rounded to 1e-7 degrees
*before* any union, so every level is a coverage union of the same rounded
polygons and neighbours keep bit-identical shared edges.
"""

from __future__ import annotations

from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gis.areas import AREA_COLUMNS
from gis.codes import DEFAULT_SCHEME
from gis.demo.blocks import transformer
from gis.demo.hierarchy import Hierarchy
from gis.demo.names import (
    COMMUNITY_STEMS,
    DISTRICT_NAME,
    DISTRICT_RESPONSIBLE,
    OTHER_STREET_NAMES,
    STREET_NAMES_BY_DIRECTION,
)

DECIMALS = 7  # 1e-7 degrees is about 1 cm
# The stored layer's columns, less area_m2 (the import computes it in metres).
COLUMNS = [c for c in AREA_COLUMNS if c != "area_m2"]


@dataclass
class Areas:
    """The five layers plus lookups the rest of the generator needs."""

    layers: dict[str, gpd.GeoDataFrame]  # level -> frame, sorted by code
    micro_code: np.ndarray  # code of each micro-grid (hierarchy index order)
    micro_geom: np.ndarray  # EPSG:4326 polygon of each micro-grid (index order)
    grid_code: np.ndarray  # code of each grid label
    street_name: np.ndarray  # per micro-grid
    community_name: np.ndarray  # per micro-grid


def to_wgs84(geoms: np.ndarray) -> np.ndarray:
    """Metric (EPSG:4547) geometries to EPSG:4326, rounded to 1e-7 degrees."""
    forward = transformer(to_wgs84=True)

    def project(coords: np.ndarray) -> np.ndarray:
        lon, lat = forward.transform(coords[:, 0], coords[:, 1])
        return np.round(np.column_stack([lon, lat]), DECIMALS)

    return shapely.transform(geoms, project)


def to_metric(geoms: np.ndarray) -> np.ndarray:
    """EPSG:4326 geometries to the metric CRS (for areas in m²)."""
    backward = transformer(to_wgs84=False)

    def project(coords: np.ndarray) -> np.ndarray:
        return np.column_stack(backward.transform(coords[:, 0], coords[:, 1]))

    return shapely.transform(geoms, project)


def build_areas(
    rng: np.random.Generator,
    h: Hierarchy,
    faces: np.ndarray,
    district_code: str,
    centre_xy: tuple[float, float],
    district_name: str = DISTRICT_NAME,
    district_responsible: str = DISTRICT_RESPONSIBLE,
) -> Areas:
    """Union the blocks level by level, number children W→E/N→S, and name everything."""
    faces = to_wgs84(faces)
    if not shapely.is_valid(faces).all():  # pragma: no cover - guarded by snap rounding
        raise RuntimeError("rounding the demo blocks made some of them invalid")
    micro = np.array(
        [
            faces[f[0]] if len(f) == 1 else shapely.coverage_union_all(faces[f])
            for f in h.micro_faces
        ],
        dtype=object,
    )
    grid = _unions(micro, h.grid)
    community = _unions(grid, _parent_of(h.grid, h.community))
    street = _unions(community, _parent_of(h.community, h.street))
    district = shapely.coverage_union_all(street)

    street_code = np.array(DEFAULT_SCHEME.number_children(district_code, list(street)))
    comm_parent = _parent_of(h.community, h.street)
    community_code = _number(community, street_code[comm_parent])
    grid_parent = _parent_of(h.grid, h.community)
    grid_code = _number(grid, community_code[grid_parent])
    micro_code = _number(micro, grid_code[h.grid])

    street_names = _street_names(rng, h, centre_xy)
    stems = [COMMUNITY_STEMS[i] for i in rng.permutation(len(COMMUNITY_STEMS))]
    community_names = np.array([stems[i] + "社区" for i in range(len(community))])

    hh, pop = h.households, h.population
    n_grid, n_comm, n_street = len(grid), len(community), len(street)
    grid_hh, grid_pop = _sum(hh, h.grid, n_grid), _sum(pop, h.grid, n_grid)
    comm_hh, comm_pop = _sum(grid_hh, grid_parent, n_comm), _sum(grid_pop, grid_parent, n_comm)
    street_hh, street_pop = (
        _sum(comm_hh, comm_parent, n_street),
        _sum(comm_pop, comm_parent, n_street),
    )

    office = np.array([n + "办事处" for n in street_names])
    layers = {
        "district": _frame(
            [district_code],
            [district_name],
            "district",
            ["administrative"],
            [None],
            [int(street_pop.sum())],
            [int(street_hh.sum())],
            [district_responsible],
            [district],
        ),
        "street": _frame(
            street_code,
            street_names,
            "street",
            "administrative",
            district_code,
            street_pop,
            street_hh,
            office,
            street,
        ),
    }
    comm_street_name = street_names[comm_parent]
    layers["community"] = _frame(
        community_code,
        community_names,
        "community",
        "administrative",
        street_code[comm_parent],
        comm_pop,
        comm_hh,
        [c + "居民委员会" for c in community_names],
        community,
    )
    grid_names, grid_kinds, grid_resp = [], [], []
    for g in range(n_grid):
        c = grid_parent[g]
        prefix = comm_street_name[c] + community_names[c]
        if g in h.grid_dedicated:
            _, institution = h.grid_dedicated[g]
            grid_names.append(prefix + institution + "专属网格")
            grid_kinds.append("dedicated")
            grid_resp.append(institution)
        else:
            grid_names.append(f"{prefix}第{int(grid_code[g][-3:])}网格")
            grid_kinds.append("comprehensive")
            grid_resp.append(office[comm_parent[c]])
    layers["grid"] = _frame(
        grid_code,
        grid_names,
        "grid",
        grid_kinds,
        community_code[grid_parent],
        grid_pop,
        grid_hh,
        grid_resp,
        grid,
    )
    micro_names = [
        f"{community_names[h.community[m]]}第{int(grid_code[h.grid[m]][-3:])}网格"
        f"第{int(micro_code[m][-3:])}微网格"
        for m in range(len(micro))
    ]
    layers["micro_grid"] = _frame(
        micro_code,
        micro_names,
        "micro_grid",
        "micro",
        grid_code[h.grid],
        pop,
        hh,
        np.asarray(grid_resp)[h.grid],
        micro,
    )
    return Areas(
        layers, micro_code, micro, grid_code, street_names[h.street], community_names[h.community]
    )


def _unions(geoms: np.ndarray, label: np.ndarray) -> np.ndarray:
    order = np.argsort(label, kind="stable")
    bounds = np.searchsorted(label[order], np.arange(label.max() + 2))
    return np.array(
        [
            shapely.coverage_union_all(geoms[order[bounds[i] : bounds[i + 1]]])
            for i in range(label.max() + 1)
        ],
        dtype=object,
    )


def _parent_of(child: np.ndarray, parent: np.ndarray) -> np.ndarray:
    """Parent label of each child label, read off any micro-grid of the child."""
    out = np.empty(child.max() + 1, dtype=np.int64)
    out[child] = parent
    return out


def _number(geoms: np.ndarray, parent_codes: np.ndarray) -> np.ndarray:
    codes = np.empty(len(geoms), dtype=object)
    for parent in np.unique(parent_codes):
        members = np.flatnonzero(parent_codes == parent)
        codes[members] = DEFAULT_SCHEME.number_children(parent, list(geoms[members]))
    return codes.astype(str)


def _sum(values: np.ndarray, label: np.ndarray, n: int) -> np.ndarray:
    return np.bincount(label, weights=values, minlength=n).round().astype(np.int64)


def _street_names(rng, h: Hierarchy, centre_xy) -> np.ndarray:
    """The four streets nearest the old town take the directional names."""
    n = int(h.street.max()) + 1
    w = h.micro_area
    cx = np.bincount(h.street, weights=w * h.micro_xy[:, 0], minlength=n) / np.bincount(
        h.street, weights=w, minlength=n
    )
    cy = np.bincount(h.street, weights=w * h.micro_xy[:, 1], minlength=n) / np.bincount(
        h.street, weights=w, minlength=n
    )
    dx, dy = cx - centre_xy[0], cy - centre_xy[1]
    near = np.argsort(np.hypot(dx, dy), kind="stable")[:4]
    names = np.empty(n, dtype=object)
    direction = {"east": (1, 0), "north": (0, 1), "west": (-1, 0), "south": (0, -1)}
    free = list(near)
    for key in ("east", "north", "west", "south"):
        ux, uy = direction[key]
        best = max(free, key=lambda s: (dx[s] * ux + dy[s] * uy) / (np.hypot(dx[s], dy[s]) + 1))
        names[best] = STREET_NAMES_BY_DIRECTION[key]
        free.remove(best)
    others = [OTHER_STREET_NAMES[i] for i in rng.permutation(len(OTHER_STREET_NAMES))]
    for s in range(n):
        if names[s] is None:
            names[s] = others.pop()
    return names.astype(str)


def _frame(
    code, name, level, kind, parent, population, households, responsible, geometry
) -> gpd.GeoDataFrame:
    n = len(code)

    def column(value):
        return list(value) if isinstance(value, list | tuple | np.ndarray) else [value] * n

    frame = pd.DataFrame(
        {
            "code": column(code),
            "name": column(name),
            "level": level,
            "kind": column(kind),
            "parent_code": column(parent),
            "population": np.asarray(population, dtype=np.int64),
            "households": np.asarray(households, dtype=np.int64),
            "responsible": column(responsible),
        }
    )
    for col in ("code", "name", "kind", "responsible"):
        frame[col] = frame[col].astype(str)
    frame["parent_code"] = frame["parent_code"].astype(object)
    gdf = gpd.GeoDataFrame(frame, geometry=gpd.GeoSeries(list(geometry), crs="EPSG:4326"))
    return gdf.sort_values("code", kind="stable").reset_index(drop=True)[COLUMNS]
