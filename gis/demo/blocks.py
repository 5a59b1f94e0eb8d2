"""Demo district geometry: outline, road network, and the blocks it cuts out.

Private helper of :mod:`gis.demo`. Everything here works in a metric CRS
(EPSG:4547, CGCS2000 3-degree Gauss-Kruger, central meridian 114 E) so that
spacings and areas are in metres.

Real grid boundaries follow roads, rivers and walls, so the smallest unit (a
micro-grid) is a city block: a face of the planar graph of the road network.
The network is built top-down, as a city grows: a few gently curving
arterials, a meandering river and the old-town moat; secondary roads between
them (the faces of this major network are the *superblocks*); then, inside each
superblock, local streets and alleys laid out like bricks along the
superblock's main direction, denser in the old town. All lines are noded
together with snap rounding on a 0.5 m grid, so every block shares exactly the
same vertices with its neighbours and no vertex lies closer than a few
decimetres to a non-incident edge (rounding to 1e-7 degrees later cannot create
slivers or self-intersections).
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import shapely
import shapely.affinity
import shapely.ops
from pyproj import Transformer
from shapely.geometry import LineString, Polygon

from gis.demo.names import ARTERIAL_NAMES, RIVER_NAMES, SECONDARY_NAMES, local_street_names

METRIC_CRS = "EPSG:4547"
SNAP = 0.5  # metres: snap-rounding grid of the road network
STEP = 20.0  # metres between vertices of generated curves


@lru_cache(maxsize=2)
def transformer(to_wgs84: bool) -> Transformer:
    """Metric CRS <-> EPSG:4326 (lon, lat order); built once, it takes ~0.1 s."""
    if to_wgs84:
        return Transformer.from_crs(METRIC_CRS, "EPSG:4326", always_xy=True)
    return Transformer.from_crs("EPSG:4326", METRIC_CRS, always_xy=True)


@dataclass
class Blocks:
    """The district cut into blocks by its roads (metric coordinates)."""

    outline: Polygon
    centre: tuple[float, float]
    radius: float  # radius of the circle with the district's area
    roads: list[tuple[str, str, LineString]]  # (name, road_class, line)
    faces: np.ndarray  # blocks (Polygons)
    superblock: np.ndarray  # superblock id of each block
    spacing: np.ndarray  # local street spacing of each block's superblock (m)
    adjacency: dict[int, dict[int, float]]  # block -> {neighbour: shared edge length}
    major_edge: dict[tuple[int, int], str]  # (b1, b2), b1 < b2 -> class of the road between


def density_field(x: np.ndarray, y: np.ndarray, centre, radius, bumps) -> np.ndarray:
    """Relative household density: a dense old town, sparser edges, residential estates."""
    dx, dy = (x - centre[0]) / radius, (y - centre[1]) / radius
    d2 = dx * dx + dy * dy
    value = 0.35 + 2.2 * np.exp(-d2 / 0.08) + 0.9 * np.exp(-d2 / 0.45)
    for bx, by, sigma, height in bumps:
        value = value + height * np.exp(-((x - bx) ** 2 + (y - by) ** 2) / (2 * sigma**2))
    return value


def build_blocks(
    rng: np.random.Generator, centre: tuple[float, float], area_m2: float, target_faces: int
) -> tuple[Blocks, list]:
    """Outline, roads and blocks of the demo district; also returns the density bumps."""
    outline, radius = _outline(rng, centre, area_m2)
    bumps = _estates(rng, centre, radius)
    major = _major_roads(rng, centre, radius, outline)
    major_lines = [line for _, _, line in major]
    noded = shapely.union_all([outline.exterior, *major_lines], grid_size=SNAP)
    superblocks = shapely.get_parts(shapely.polygonize(shapely.get_parts(noded)))
    superblocks = superblocks[shapely.contains_xy(outline, *_xy(superblocks))]
    spacing = _spacing(superblocks, centre, radius, bumps, target_faces)
    local = _local_streets(rng, superblocks, spacing)
    names = local_street_names(rng, len(local))
    roads = major + [(names[i], "local", line) for i, line in enumerate(local)]

    noded = shapely.union_all([outline.exterior, *major_lines, *local], grid_size=SNAP)
    faces = shapely.get_parts(shapely.polygonize(shapely.get_parts(noded)))
    faces = faces[shapely.contains_xy(outline, *_xy(faces))]
    faces = faces[np.lexsort(_xy(faces))]  # a stable order independent of GEOS internals
    tree = shapely.STRtree(superblocks)
    face_idx, sb_idx = tree.query(shapely.point_on_surface(faces), predicate="within")
    superblock = np.full(len(faces), -1)
    superblock[face_idx] = sb_idx
    if (superblock < 0).any():  # a face straddling a snapped superblock edge: nearest one
        missing = np.flatnonzero(superblock < 0)
        superblock[missing] = tree.nearest(shapely.point_on_surface(faces[missing]))
    adjacency, major_edge = _adjacency(faces, superblock, major_lines, [c for _, c, _ in major])
    blocks = Blocks(
        outline,
        centre,
        radius,
        roads,
        faces,
        superblock,
        spacing[superblock],
        adjacency,
        major_edge,
    )
    return blocks, bumps


# -- outline and roads ----------------------------------------------------------------------
def _outline(rng, centre, area_m2) -> tuple[Polygon, float]:
    theta = np.linspace(0.0, 2 * np.pi, 360, endpoint=False)
    r = np.ones_like(theta)
    for k in range(2, 9):
        r += rng.uniform(0.02, 0.08) * (2.0 / k) ** 0.7 * np.cos(k * theta + rng.uniform(0, 6.3))
    # small-scale wiggles: real district boundaries follow field edges, ditches and walls
    noise = np.convolve(np.tile(rng.normal(0, 0.02, theta.size), 3), np.ones(9) / 9, "same")
    r += noise[theta.size : 2 * theta.size]
    x, y = 1.12 * r * np.cos(theta), r * np.sin(theta) / 1.12
    unit = Polygon(np.column_stack([x, y]))
    scale = np.sqrt(area_m2 / unit.area)
    ring = np.column_stack([x * scale + centre[0], y * scale + centre[1]])
    outline = Polygon(np.round(ring / SNAP) * SNAP)
    return outline, float(np.sqrt(area_m2 / np.pi))


def _estates(rng, centre, radius) -> list[tuple[float, float, float, float]]:
    """Residential estates and villages-in-the-city: bumps on the density field."""
    bumps = []
    for _ in range(14):
        r, a = radius * np.sqrt(rng.uniform(0.1, 0.8)), rng.uniform(0, 2 * np.pi)
        bumps.append(
            (
                centre[0] + r * np.cos(a),
                centre[1] + r * np.sin(a),
                rng.uniform(250, 700),
                rng.uniform(0.4, 1.4),
            )
        )
    return bumps


def _curve(rng, start, direction, length, amplitude, wavelength) -> LineString:
    """A gently curving line from ``start`` along unit vector ``direction``."""
    t = np.arange(-length / 2, length / 2 + STEP, STEP)
    phase = rng.uniform(0, 2 * np.pi)
    offset = amplitude * np.sin(2 * np.pi * t / wavelength + phase)
    offset += 0.3 * amplitude * np.sin(2 * np.pi * t / (wavelength / 2.7) + 1.7 * phase)
    nx, ny = -direction[1], direction[0]
    return LineString(
        np.column_stack(
            [start[0] + t * direction[0] + offset * nx, start[1] + t * direction[1] + offset * ny]
        )
    )


def _major_roads(rng, centre, radius, outline) -> list[tuple[str, str, LineString]]:
    cx, cy = centre
    length = 3.0 * radius
    moat = shapely.affinity.rotate(
        shapely.box(cx - 620, cy - 560, cx + 640, cy + 580).buffer(90, quad_segs=4),
        rng.uniform(-4, 4),
        origin=(cx, cy),
    )
    roads: list[tuple[str, str, LineString]] = []
    arterial = iter(ARTERIAL_NAMES)
    positions: dict[str, list[float]] = {}
    for axis, fractions in (("ns", (-0.72, -0.27, 0.27, 0.72)), ("ew", (-0.7, -0.25, 0.25, 0.7))):
        positions[axis] = []
        for f in fractions:
            pos = f * radius + rng.normal(0, 120)
            angle = np.deg2rad(rng.normal(0, 4))
            if axis == "ns":
                start, direction = (cx + pos, cy), (np.sin(angle), np.cos(angle))
            else:
                start, direction = (cx, cy + pos), (np.cos(angle), np.sin(angle))
            roads.append(
                (
                    next(arterial),
                    "arterial",
                    _curve(rng, start, direction, length, rng.uniform(40, 160), 7000),
                )
            )
            positions[axis].append(pos)
    angle = np.deg2rad(rng.uniform(35, 55))  # one diagonal avenue outside the old town
    start = (cx - 0.3 * radius, cy - 0.55 * radius)
    roads.append(
        (
            next(arterial),
            "arterial",
            _curve(rng, start, (np.cos(angle), np.sin(angle)), length, 60, 9000),
        )
    )
    river = _curve(rng, (cx + 0.5 * radius, cy), (0.08, 0.9968), 1.5 * length, 260, 3200)
    roads.append((RIVER_NAMES[0], "river", river))
    roads.append((RIVER_NAMES[1], "river", LineString(moat.exterior.coords)))
    roads += _old_town_streets(centre, moat)
    roads += _secondary_roads(rng, centre, radius, positions, moat)
    clipped = []
    for name, cls, line in roads:
        part = line if cls == "river" and name == RIVER_NAMES[1] else line.intersection(outline)
        for piece in shapely.get_parts(shapely.line_merge(part)):
            if piece.length > 50:
                clipped.append((name, cls, piece))
    return clipped


def _old_town_streets(centre, moat) -> list[tuple[str, str, LineString]]:
    cx, cy = centre
    # the historic cross of 东/西/南/北大街, meeting near the old town's centre
    ends = {
        "东大街": (cx + 2000, cy + 15),
        "西大街": (cx - 2000, cy - 15),
        "南大街": (cx - 10, cy - 2000),
        "北大街": (cx + 10, cy + 2000),
    }
    inner = moat.buffer(-1.0)
    return [
        (name, "secondary", LineString([(cx, cy), end]).intersection(inner))
        for name, end in ends.items()
    ]


def _secondary_roads(rng, centre, radius, positions, moat) -> list[tuple[str, str, LineString]]:
    names = iter(SECONDARY_NAMES)
    cx, cy = centre
    roads = []
    keep_out = moat.buffer(40)
    for axis in ("ns", "ew"):
        arterials = positions[axis]
        pos = -1.05 * radius + rng.uniform(0, 300)
        while pos < 1.05 * radius:
            pos += rng.uniform(560, 900)
            if min(abs(pos - a) for a in arterials) < 260:
                continue
            angle = np.deg2rad(rng.normal(0, 5))
            if axis == "ns":
                start, direction = (cx + pos, cy), (np.sin(angle), np.cos(angle))
            else:
                start, direction = (cx, cy + pos), (np.cos(angle), np.sin(angle))
            line = _curve(rng, start, direction, 3 * radius, rng.uniform(10, 60), 4000)
            # a secondary road runs for a few kilometres, not across the whole district
            t0 = rng.uniform(-1.4, 0.2) * radius
            t1 = t0 + rng.uniform(0.9, 2.2) * radius
            line = shapely.ops.substring(line, t0 + 1.5 * radius, t1 + 1.5 * radius)
            line = line.difference(keep_out)
            roads.append((next(names), "secondary", line))
    return roads


# -- local streets ---------------------------------------------------------------------------
def _spacing(superblocks, centre, radius, bumps, target_faces) -> np.ndarray:
    """Local street spacing per superblock: narrow lanes where people live densely."""
    density = density_field(*_xy(superblocks), centre, radius, bumps)
    relative = (density / density.mean()) ** -0.45
    areas = shapely.area(superblocks)
    base = np.sqrt(float(np.sum(areas / relative**2)) / target_faces)
    return np.clip(base * relative, 60.0, 260.0)


def _local_streets(rng, superblocks, spacing) -> list[LineString]:
    lines: list[LineString] = []
    for poly, s in zip(superblocks, spacing, strict=True):
        if poly.area < 2.5 * s * s:
            continue
        lines += _bricks(rng, poly, s)
    return lines


def _bricks(rng, poly: Polygon, s: float) -> list[LineString]:
    """Streets along the superblock's main direction, alleys staggered between them."""
    rect = np.asarray(shapely.oriented_envelope(poly).exterior.coords)
    edge = (
        rect[1] - rect[0]
        if np.hypot(*(rect[1] - rect[0])) > np.hypot(*(rect[2] - rect[1]))
        else rect[2] - rect[1]
    )
    angle = np.arctan2(edge[1], edge[0]) + np.deg2rad(rng.normal(0, 3))
    c, si = np.cos(angle), np.sin(angle)
    cx, cy = poly.centroid.x, poly.centroid.y
    coords = np.asarray(poly.exterior.coords) - (cx, cy)
    u, v = coords @ (c, si), coords @ (-si, c)  # rotated frame: u along, v across
    umin, umax, vmin, vmax = u.min(), u.max(), v.min(), v.max()
    rows = [vmin - 1.0]
    v_next = vmin + s * rng.uniform(0.5, 1.0)
    while v_next < vmax - 0.45 * s:
        rows.append(v_next)
        v_next += 0.85 * s * rng.uniform(0.8, 1.25)
    rows.append(vmax + 1.0)
    segs = [((umin - 1, r), (umax + 1, r)) for r in rows[1:-1]]
    for lo, hi in zip(rows[:-1], rows[1:], strict=True):
        uu = umin + 1.2 * s * rng.uniform(0.3, 1.0)
        while uu < umax - 0.5 * s:
            if rng.random() > 0.12:
                segs.append(((uu, lo), (uu, hi)))
            uu += 1.2 * s * rng.uniform(0.75, 1.3)
    if not segs:
        return []
    arr = np.asarray(segs, dtype=float)  # (n, 2 points, (u, v))
    xs = cx + arr[..., 0] * c - arr[..., 1] * si
    ys = cy + arr[..., 0] * si + arr[..., 1] * c
    lines = shapely.linestrings(np.stack([xs, ys], axis=-1))
    clipped = shapely.intersection(lines, poly)
    parts = shapely.get_parts(clipped)
    parts = parts[shapely.get_type_id(parts) == 1]
    return list(parts[shapely.length(parts) > 5.0])


# -- topology --------------------------------------------------------------------------------
def _adjacency(faces, superblock, major_lines, major_classes):
    """Neighbours sharing an edge, from the identical noded segments of adjacent faces."""
    rings, ring_face = shapely.get_rings(faces, return_index=True)
    coords, ring_of = shapely.get_coordinates(rings, return_index=True)
    same = ring_of[1:] == ring_of[:-1]
    keys = np.round(coords * (1.0 / SNAP)).astype(np.int64)
    a, b = keys[:-1][same], keys[1:][same]
    face = ring_face[ring_of[:-1][same]]
    length = np.hypot(*(coords[1:][same] - coords[:-1][same]).T)
    swap = (a[:, 0] > b[:, 0]) | ((a[:, 0] == b[:, 0]) & (a[:, 1] > b[:, 1]))
    lo, hi = np.where(swap[:, None], b, a), np.where(swap[:, None], a, b)
    seg = np.column_stack([lo, hi])
    order = np.lexsort(seg.T[::-1])
    seg, face, length = seg[order], face[order], length[order]
    mid = (coords[:-1][same][order] + coords[1:][same][order]) / 2
    dup = np.flatnonzero((seg[1:] == seg[:-1]).all(axis=1))
    f1, f2 = face[dup], face[dup + 1]
    adjacency: dict[int, dict[int, float]] = {i: {} for i in range(len(faces))}
    for i, j, w in zip(f1.tolist(), f2.tolist(), length[dup].tolist(), strict=True):
        adjacency[i][j] = adjacency[i].get(j, 0.0) + w
        adjacency[j][i] = adjacency[j].get(i, 0.0) + w
    major_edge = _major_edges(f1, f2, mid[dup], superblock, major_lines, major_classes)
    return adjacency, major_edge


def _major_edges(f1, f2, mid, superblock, major_lines, major_classes):
    """Class of the road separating two blocks of different superblocks."""
    cross = superblock[f1] != superblock[f2]
    # Short pieces make the nearest-line query fast; long curves have huge envelopes.
    coords, line_of = shapely.get_coordinates(major_lines, return_index=True)
    same = line_of[1:] == line_of[:-1]
    pieces = shapely.linestrings(np.stack([coords[:-1][same], coords[1:][same]], axis=1))
    piece_class = np.asarray(major_classes)[line_of[:-1][same]]
    tree = shapely.STRtree(pieces)
    points = shapely.points(mid[cross])
    nearest = tree.query_nearest(points, all_matches=False, return_distance=False)[1]
    rank = {"arterial": 3, "river": 3, "secondary": 2}
    out: dict[tuple[int, int], str] = {}
    for i, j, k in zip(f1[cross].tolist(), f2[cross].tolist(), nearest.tolist(), strict=True):
        key = (min(i, j), max(i, j))
        cls = str(piece_class[k])
        if key not in out or rank[cls] > rank[out[key]]:
            out[key] = cls
    return out


def _xy(geoms) -> tuple[np.ndarray, np.ndarray]:
    points = shapely.point_on_surface(geoms)
    return shapely.get_x(points), shapely.get_y(points)


# -- merging blocks into micro-grids ---------------------------------------------------------
def merge_faces(blocks: Blocks, target: int) -> list[list[int]]:
    """Merge slivers and the smallest blocks into a neighbour until ``target`` remain.

    Only blocks of the same superblock merge, so a micro-grid never straddles a
    major road. A block joins the neighbour it shares the longest edge with,
    which keeps the merged shapes compact. Returns the face indices per group.
    """
    faces = blocks.faces
    area = shapely.area(faces)
    perimeter = shapely.length(faces)
    expected = blocks.spacing**2
    parent = list(range(len(faces)))
    members: dict[int, list[int]] = {i: [i] for i in range(len(faces))}
    adj = {i: dict(nbrs) for i, nbrs in blocks.adjacency.items()}
    sb = blocks.superblock

    def key(i: int) -> float:
        # small relative to the local block size, or thin (a sliver along a road)
        compact = 4 * np.pi * area[i] / perimeter[i] ** 2
        return area[i] / expected[i] * min(1.0, compact / 0.3)

    heap = [(key(i), i) for i in range(len(faces))]
    heapq.heapify(heap)
    count = len(faces)
    while heap:
        k, i = heapq.heappop(heap)
        if parent[i] != i or k != key(i):
            continue  # stale entry
        if count <= target and k >= 0.35:
            break
        options = [(length, j) for j, length in adj[i].items() if sb[j] == sb[i]]
        if not options:
            continue
        _, j = max(options)
        shared = adj[i][j]
        # j absorbs i
        parent[i] = j
        members[j] += members.pop(i)
        area[j] += area[i]
        perimeter[j] += perimeter[i] - 2 * shared
        for n, length in adj.pop(i).items():
            if n == j:
                continue
            adj[n].pop(i)
            adj[n][j] = adj[n].get(j, 0.0) + length
            adj[j][n] = adj[j].get(n, 0.0) + length
        adj[j].pop(i)
        count -= 1
        heapq.heappush(heap, (key(j), j))
    return [sorted(m) for _, m in sorted(members.items())]
