"""A year of incidents in the demo district, with planted hotspots (private helper).

Background incidents follow population; each source has its own mix of
categories and its own weekly and daily rhythm (patrols work office hours on
weekdays, 110 calls peak in the evening and at weekends). A few hotspots add
incidents of one category around a point, over a few adjacent grids, for part
of the year. Apps built on Amap/WeChat report GCJ-02; some hotline tickets
carry only an address, written the way people write addresses. Each incident
carries its history through the closed loop as of the end of the year
(:mod:`gis.demo.history`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import shapely

from gis.demo.blocks import transformer
from gis.demo.history import build_history
from gis.demo.people import Gazetteer, sample_in_polygons
from gis.taxonomy import load_taxonomy
from gis.vocabulary import LOCAL_TZ

#: Sources of demo incidents (names from KNOWN_SOURCES), in the order the seed draws them.
SOURCES = ("hotline_12345", "patrol", "police_110", "resident")
SOURCE_SHARE = np.array([0.42, 0.30, 0.16, 0.12])
GCJ02_SHARE = 0.15
ADDRESS_ONLY_SHARE = 0.05
YEAR = 2023
#: The end of the demo's year (local midnight): histories are as of then.
PERIOD_END = pd.Timestamp(f"{YEAR + 1}-01-01", tz=LOCAL_TZ)

# category: (share weight, {source: affinity}); unspecified affinities are 1
_CATEGORY_MIX: dict[str, tuple[float, dict[str, float]]] = {
    "0101": (3, {"patrol": 2, "police_110": 0.1}),
    "0102": (5, {"patrol": 2, "police_110": 0.1}),
    "0103": (5, {"patrol": 2, "police_110": 0.1}),
    "0104": (10, {"patrol": 2, "police_110": 0.1}),
    "0105": (2, {"police_110": 0.2}),
    "0106": (5, {"patrol": 2.5, "police_110": 0.05}),
    "0201": (12, {"patrol": 2, "police_110": 0.5}),
    "0202": (9, {"patrol": 2, "police_110": 0.3}),
    "0203": (3, {"patrol": 2, "police_110": 0.1}),
    "0204": (8, {"patrol": 0.3, "police_110": 3, "resident": 1.5}),
    "0205": (6, {"patrol": 0.2, "police_110": 3}),
    "0301": (4, {"patrol": 0.2, "police_110": 0.1}),
    "0302": (7, {"patrol": 0.2, "police_110": 0.1, "resident": 2}),
    "0303": (2, {"patrol": 0.3, "police_110": 0.1}),
    "0401": (5, {"patrol": 2, "resident": 1.5, "police_110": 0.3}),
    "0402": (4, {"patrol": 2}),
    "0403": (3, {"police_110": 0.3}),
    "0404": (1, {"patrol": 0.2, "police_110": 8}),
    "0405": (1.5, {"police_110": 2}),
    "0406": (3, {"patrol": 0.5, "police_110": 8}),
}
_DESCRIPTIONS = {
    "0101": ["{road}人行道井盖缺失，存在安全隐患", "{road}路面井盖破损松动"],
    "0102": ["{road}路面坑洼破损，影响通行", "{road}人行道地砖松动破损"],
    "0103": ["{road}路灯不亮，夜间出行不便", "{road}多盏路灯损坏"],
    "0104": ["{road}附近垃圾堆放未清运", "{road}有建筑垃圾乱堆乱放"],
    "0105": ["{road}雨后积水严重", "{road}下水道堵塞，路面积水"],
    "0106": ["{road}墙面张贴小广告", "{road}电线杆上乱贴小广告"],
    "0201": ["{road}车辆乱停乱放，堵塞通道", "{road}非机动车乱停，影响通行"],
    "0202": ["{road}流动摊贩占道经营", "{road}商户店外经营占用人行道"],
    "0203": ["{road}有居民违章搭建", "{road}楼顶私搭乱建"],
    "0204": ["{road}夜间施工噪声扰民", "{road}广场舞音响声音过大"],
    "0205": ["{road}邻里因漏水发生纠纷", "{road}邻居因占用楼道发生矛盾"],
    "0301": ["{road}停水未提前通知", "{road}燃气供应中断"],
    "0302": ["{road}小区物业不作为", "{road}小区电梯长期故障无人维修"],
    "0303": ["{road}独居老人需要帮扶", "{road}残疾人申请上门服务"],
    "0401": ["{road}居民楼飞线充电", "{road}电动车楼道内充电"],
    "0402": ["{road}消防通道被车辆堵塞", "{road}楼道堆放杂物堵塞消防通道"],
    "0403": ["{road}餐馆卫生状况差", "{road}流动摊点售卖过期食品"],
    "0404": ["{road}附近有老人走失", "{road}发现走失儿童"],
    "0405": ["{road}闻到燃气泄漏气味", "{road}餐馆违规使用液化气罐"],
    "0406": ["{road}有可疑人员出没", "{road}夜间有人聚集滋事"],
}
# relative activity by hour of day (0-23), per source
# fmt: off
_HOURS = {
    "hotline_12345": [.3, .2, .15, .1, .1, .2, .6, 1.2, 2, 2.6, 2.6, 2.2,
                      1.4, 1.3, 2, 2.3, 2.2, 2, 1.6, 1.6, 1.5, 1.2, .8, .5],
    "patrol":        [0, 0, 0, 0, 0, 0, 0, .3, 2, 3, 3, 2.5,
                      .6, .4, 2, 3, 3, 2.5, .5, 0, 0, 0, 0, 0],
    "police_110":    [1.2, 1, .8, .6, .5, .5, .7, .9, 1, 1.1, 1.1, 1.1,
                      1, 1, 1.1, 1.2, 1.3, 1.5, 1.8, 2, 2.2, 2.1, 1.8, 1.5],
    "resident":      [.3, .15, .1, .05, .05, .2, .7, 1.3, 1.6, 1.6, 1.5, 1.4,
                      1.3, 1.2, 1.3, 1.4, 1.4, 1.5, 1.8, 2.2, 2.4, 2.1, 1.4, .7],
}
# fmt: on
_WEEKDAY = {
    "hotline_12345": [1, 1, 1, 1, 0.95, 0.7, 0.65],
    "patrol": [1, 1, 1, 1, 1, 0.35, 0.15],
    "police_110": [0.95, 0.95, 0.95, 1, 1.1, 1.2, 1.15],
    "resident": [1, 1, 1, 1, 1, 1.1, 1.1],
}
# Spring Festival and National Day weeks: offices are closed, patrols thin out
_HOLIDAYS = [("2023-01-21", "2023-01-27"), ("2023-10-01", "2023-10-06")]
# (peak month, log-amplitude): rainstorms in July, e-bike charging and noise in summer,
# supply outages in the heating season
_SEASON = {"0105": (7, 1.5), "0401": (7, 0.4), "0204": (7, 0.3), "0301": (1, 0.35)}
_ID_FORMAT = {
    "hotline_12345": "12345-{date}-{seq:05d}",
    "patrol": "XC{date}{seq:04d}",
    "police_110": "JJ{date}{seq:04d}",
    "resident": "WX{date}{seq:04d}",
}
_HOTSPOT_CATEGORIES = ["0201", "0401", "0202", "0104", "0204"]
_HOTSPOT_PERIODS = [
    ("2023-01-01", "2023-12-31"),
    ("2023-09-01", "2023-12-31"),
    ("2023-05-01", "2023-09-30"),
    ("2023-03-01", "2023-12-31"),
]


def plan_hotspots(
    rng,
    micro_xy,
    micro_population,
    micro_grid,
    grid_area,
    grid_dedicated,
    avoid_grids,
    n_incidents: int,
) -> list[dict]:
    """Centres, radii, categories and sizes of 3–4 hotspots, far apart from each other.

    The radius follows the size of the grid at the centre, so a hotspot spans a
    handful of grids in the old town as in the suburbs.
    """
    n = int(rng.integers(3, 5))
    categories = rng.choice(_HOTSPOT_CATEGORIES, size=n, replace=False)
    eligible = (micro_population > np.quantile(micro_population, 0.5)) & ~np.isin(
        micro_grid, list(grid_dedicated) + list(avoid_grids)
    )
    candidates = rng.permutation(np.flatnonzero(eligible))
    centres: list[int] = []
    for m in candidates.tolist():
        if all(np.hypot(*(micro_xy[m] - micro_xy[c])) > 2500 for c in centres):
            centres.append(m)
        if len(centres) == n:
            break
    plans = []
    for i, m in enumerate(centres):
        start, end = _HOTSPOT_PERIODS[i % len(_HOTSPOT_PERIODS)]
        plans.append(
            {
                "category": str(categories[i]),
                "centre_xy": micro_xy[m].copy(),
                "radius_m": float(
                    np.clip(
                        round(rng.uniform(0.8, 1.05) * np.sqrt(grid_area[micro_grid[m]])), 160, 360
                    )
                ),
                "n_incidents": int(round(n_incidents * rng.uniform(0.010, 0.014))),
                "start": start,
                "end": end,
            }
        )
    return plans


def build_incidents(
    rng,
    n: int,
    micro_metric: np.ndarray,
    micro_population: np.ndarray,
    micro_grid_code: np.ndarray,
    gazetteer: Gazetteer,
    plans: list[dict],
    from_wgs84,
) -> tuple[pd.DataFrame, list[dict]]:
    """``n`` incidents over the year (hotspots included), each with its history as of
    :data:`PERIOD_END`, and the hotspot records.

    The history is drawn last, so the incidents themselves are what they were before
    incidents had one."""
    tree = shapely.STRtree(micro_metric)
    hot_xy, hot_cat, hot_days, hot_src, records = _hotspot_points(
        rng, plans, tree, micro_metric, micro_grid_code
    )
    n_bg = n - len(hot_xy)
    source = rng.choice(len(SOURCES), size=n_bg, p=SOURCE_SHARE / SOURCE_SHARE.sum())
    category = _categories(rng, source)
    weight = micro_population + 0.15 * micro_population.mean()  # shops, offices, passers-by
    micro = rng.choice(len(micro_metric), size=n_bg, p=weight / weight.sum())
    xy = np.vstack([sample_in_polygons(rng, micro_metric, micro), hot_xy])
    source = np.concatenate([source, hot_src])
    category = np.concatenate([category, hot_cat])
    days = np.concatenate([_days(rng, source[:n_bg], category[:n_bg]), hot_days])
    hours = _hours(rng, source)
    seconds = days * 86400 + hours * 3600 + rng.integers(0, 3600, n)
    reported = pd.Timestamp(f"{YEAR}-01-01") + pd.to_timedelta(seconds, unit="s")
    xy = _keep_inside(xy, micro_metric, transformer(to_wgs84=True), from_wgs84)
    frame = _located_frame(rng, xy, source, category, reported, gazetteer, n_bg, from_wgs84)
    frame = frame.sort_values(["reported_at", "source"], kind="stable").reset_index(drop=True)
    frame.insert(0, "external_id", pd.array(_external_ids(frame), dtype="str"))
    taxonomy = load_taxonomy()  # the deadlines of the taxonomy the demo's categories are from
    deadlines = dict(zip(taxonomy["code"], taxonomy["deadline_hours"], strict=True))
    history = build_history(rng, frame["reported_at"], frame["category"], PERIOD_END, deadlines)
    return pd.concat([frame, history], axis=1), records


def _categories(rng, source: np.ndarray) -> np.ndarray:
    codes = list(_CATEGORY_MIX)
    out = np.empty(len(source), dtype=object)
    for s, name in enumerate(SOURCES):
        p = np.array([w * aff.get(name, 1.0) for w, aff in _CATEGORY_MIX.values()])
        mask = source == s
        out[mask] = rng.choice(codes, size=int(mask.sum()), p=p / p.sum())
    return out


def _days(rng, source: np.ndarray, category: np.ndarray) -> np.ndarray:
    """Day of the year (0-based) per incident, by weekday, holidays and season."""
    dates = pd.date_range(f"{YEAR}-01-01", f"{YEAR}-12-31", freq="D")
    weekday = dates.day_of_week.to_numpy()
    holiday = np.zeros(len(dates), dtype=bool)
    for start, end in _HOLIDAYS:
        holiday |= (dates >= start) & (dates <= end)
    month = dates.month.to_numpy()
    out = np.empty(len(source), dtype=np.int64)
    for s, name in enumerate(SOURCES):
        base = np.asarray(_WEEKDAY[name])[weekday] * np.where(holiday, 0.45 if s < 2 else 1.1, 1)
        for code in np.unique(category[source == s]):
            mask = (source == s) & (category == code)
            peak, amplitude = _SEASON.get(code, (7, 0.08))
            season = np.exp(amplitude * np.cos(2 * np.pi * (month - peak) / 12))
            p = base * season
            out[mask] = rng.choice(len(dates), size=int(mask.sum()), p=p / p.sum())
    return out


def _hours(rng, source: np.ndarray) -> np.ndarray:
    out = np.empty(len(source), dtype=np.int64)
    for s, name in enumerate(SOURCES):
        mask = source == s
        p = np.asarray(_HOURS[name], dtype=float)
        out[mask] = rng.choice(24, size=int(mask.sum()), p=p / p.sum())
    return out


def _hotspot_points(rng, plans, tree, micro_metric, micro_grid_code):
    xy_parts, cat_parts, day_parts, src_parts, records = [], [], [], [], []
    for plan in plans:
        k = plan["n_incidents"]
        cx, cy = plan["centre_xy"]
        pts = np.empty((0, 2))
        while len(pts) < k:  # inside the district only
            r = plan["radius_m"] * rng.random(2 * k) ** 0.7  # denser towards the centre
            a = rng.uniform(0, 2 * np.pi, 2 * k)
            cand = np.column_stack([cx + r * np.cos(a), cy + r * np.sin(a)])
            hit = tree.query(shapely.points(cand), predicate="within")
            inside = np.zeros(len(cand), dtype=bool)
            inside[hit[0]] = True
            pts = np.vstack([pts, cand[inside]])[:k]
        first, last = (
            pd.Timestamp(plan["start"]).day_of_year - 1,
            pd.Timestamp(plan["end"]).day_of_year - 1,
        )
        xy_parts.append(pts)
        cat_parts.append(np.full(k, plan["category"], dtype=object))
        day_parts.append(rng.integers(first, last + 1, k))
        src_parts.append(rng.choice([0, 1, 3], size=k, p=[0.5, 0.3, 0.2]))
        hit = tree.query(shapely.points(pts), predicate="within")
        grids, counts = np.unique(
            micro_grid_code[hit[1][np.unique(hit[0], return_index=True)[1]]], return_counts=True
        )
        # the core: grids taking at least a tenth of the hotspot's incidents
        covered = sorted(str(g) for g, c in zip(grids, counts, strict=True) if c >= 0.1 * k)
        records.append(
            {
                "category": plan["category"],
                "centre_xy": (float(cx), float(cy)),
                "radius_m": plan["radius_m"],
                "n_incidents": k,
                "start": plan["start"],
                "end": plan["end"],
                "grid_codes": covered,
                "grid_counts": {str(g): int(c) for g, c in zip(grids, counts, strict=True)},
            }
        )
    if not xy_parts:
        return np.empty((0, 2)), np.empty(0, object), np.empty(0, int), np.empty(0, int), []
    return (
        np.vstack(xy_parts),
        np.concatenate(cat_parts),
        np.concatenate(day_parts),
        np.concatenate(src_parts),
        records,
    )


def _located_frame(
    rng, xy, source, category, reported, gazetteer: Gazetteer, n_bg, from_wgs84
) -> pd.DataFrame:
    n = len(xy)
    near = shapely.STRtree(shapely.points(gazetteer.xy)).query_nearest(
        shapely.points(xy), all_matches=False, return_distance=False
    )
    entry = np.empty(n, dtype=np.int64)
    entry[near[0]] = near[1]
    names = np.asarray(SOURCES)[source]
    # address-only: hotline and 110 tickets from the background (a hotspot stays located)
    w = np.where(
        names[:n_bg] == "hotline_12345", 4.0, np.where(names[:n_bg] == "police_110", 1.0, 0.0)
    )
    address_only = np.zeros(n, dtype=bool)
    address_only[:n_bg] = _pick(rng, w, int(round(ADDRESS_ONLY_SHARE * n)))
    xy = xy.copy()
    xy[address_only] = gazetteer.xy[entry[address_only]]  # the true place is the door plate
    to_wgs = transformer(to_wgs84=True)
    true_lon, true_lat = to_wgs.transform(xy[:, 0], xy[:, 1])
    true_lon, true_lat = np.round(true_lon, 7), np.round(true_lat, 7)
    w = (
        np.select(
            [names == "resident", names == "hotline_12345", names == "police_110"],
            [6.0, 1.6, 0.3],
            0.2,
        )
        * ~address_only
    )
    gcj = _pick(rng, w, int(round(GCJ02_SHARE * n)))
    lon, lat = true_lon.copy(), true_lat.copy()
    if gcj.any():
        glon, glat = from_wgs84(true_lon[gcj], true_lat[gcj], "gcj02")
        lon[gcj], lat[gcj] = np.asarray(glon), np.asarray(glat)
    lon, lat = np.round(lon, 6), np.round(lat, 6)  # what a phone or a GPS reports
    lon[address_only], lat[address_only] = np.nan, np.nan
    crs = np.where(gcj, "gcj02", "wgs84").astype(object)
    crs[address_only] = None
    address = gazetteer.frame["address"].to_numpy(dtype=object)[entry]
    written = gazetteer.parts.iloc[entry[address_only]].itertuples(index=False)
    address[address_only] = [address_variant(rng, p) for p in written]
    road = gazetteer.parts["road"].to_numpy(dtype=object)[entry]
    variant = rng.integers(0, 2, n)
    description = [
        _DESCRIPTIONS[c][v].format(road=r) for c, v, r in zip(category, variant, road, strict=True)
    ]
    return pd.DataFrame(
        {
            "source": pd.array(names, dtype="str"),
            "category": pd.array(category, dtype="str"),
            "description": pd.array(description, dtype="str"),
            "address": pd.array(address, dtype="str"),
            "reported_at": pd.DatetimeIndex(reported).tz_localize(LOCAL_TZ),
            "lon": lon,
            "lat": lat,
            "crs": pd.Series(crs, dtype=object),
            "true_lon": true_lon,
            "true_lat": true_lat,
        }
    )


def _pick(rng, weights: np.ndarray, k: int) -> np.ndarray:
    """Mask of ``k`` distinct rows drawn with probability proportional to ``weights``."""
    mask = np.zeros(len(weights), dtype=bool)
    k = min(k, int((weights > 0).sum()))
    if k > 0:
        mask[rng.choice(len(weights), size=k, replace=False, p=weights / weights.sum())] = True
    return mask


_FULL_WIDTH = str.maketrans("0123456789", "０１２３４５６７８９")


def address_variant(rng, parts) -> str:
    """An address as a caller or a form writes it: prefixes dropped, 栋/幢, 单元, spaces."""
    prefix = [
        f"魏都区{parts.street}{parts.community}",
        "魏都区",
        "许昌市魏都区",
        "",
        parts.community,
        f"许昌市{parts.community}",
        "河南省许昌市魏都区",
    ][rng.integers(0, 7)]
    number = str(parts.number)
    if rng.random() < 0.35:
        number = number.translate(_FULL_WIDTH)
    door = f"{number}号" + ("院" if rng.random() < 0.1 else "")
    pieces = [prefix, parts.road, door]
    if parts.building:
        b = str(parts.building)
        if rng.random() < 0.35:
            b = b.translate(_FULL_WIDTH)
        pieces.append(b + ["号楼", "栋", "幢", "#楼", "号楼"][rng.integers(0, 5)])
        if rng.random() < 0.4:
            pieces.append(f"{rng.integers(1, 5)}单元")
            if rng.random() < 0.5:
                pieces.append(f"{rng.integers(1, 7)}0{rng.integers(1, 4)}室")
    if rng.random() < 0.35:
        return "".join(p + (" " * int(rng.integers(1, 3)) if p else "") for p in pieces).strip()
    return "".join(pieces)


def _external_ids(frame: pd.DataFrame) -> list[str]:
    """Ticket numbers: per source, the date and a running number within the day."""
    date = frame["reported_at"].dt.strftime("%Y%m%d").to_numpy()
    seq = frame.groupby([frame["source"], date]).cumcount().to_numpy() + 1
    return [
        _ID_FORMAT[s].format(date=d, seq=q)
        for s, d, q in zip(frame["source"].to_numpy(), date, seq, strict=True)
    ]


def _keep_inside(xy: np.ndarray, micro_metric: np.ndarray, to_wgs, from_wgs84) -> np.ndarray:
    """Nudge the few points whose *reported* coordinates would fall outside the district.

    Phones report 6 decimals (~0.1 m); a point sampled within centimetres of the
    district's outer edge can round to just outside it, and the clean demo would then
    hold an incident outside every grid. Such points move 1 m towards the district's
    centre (no random numbers are drawn, so everything else stays as it was).
    """
    outline = shapely.coverage_union_all(micro_metric)
    centre = np.array(shapely.get_coordinates(outline.centroid)[0])

    def to_lonlat(coords: np.ndarray) -> np.ndarray:
        lon, lat = to_wgs.transform(coords[:, 0], coords[:, 1])
        return np.column_stack([lon, lat])

    outline_wgs = shapely.transform(outline, to_lonlat)
    shapely.prepare(outline_wgs)
    xy = xy.copy()
    for _ in range(5):
        lon, lat = to_wgs.transform(xy[:, 0], xy[:, 1])
        rounded = [(np.round(lon, 7), np.round(lat, 7)), (np.round(lon, 6), np.round(lat, 6))]
        glon, glat = from_wgs84(lon, lat, "gcj02")
        back = _gcj_roundtrip(np.round(np.asarray(glon), 6), np.round(np.asarray(glat), 6))
        outside = np.zeros(len(xy), dtype=bool)
        for x, y in [*rounded, back]:
            outside |= ~shapely.intersects_xy(outline_wgs, x, y)
        if not outside.any():
            break
        step = centre - xy[outside]
        xy[outside] += step / np.linalg.norm(step, axis=1)[:, None]
    return xy


def _gcj_roundtrip(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    from gis.crs import to_wgs84

    back_lon, back_lat = to_wgs84(lon, lat, "gcj02")
    return np.asarray(back_lon), np.asarray(back_lat)
