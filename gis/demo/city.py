"""A generated city of several districts (Tongling size), for benchmarks and city-view tests.

``build_city(seed, preset)`` calls the demo district generator
(:func:`gis.demo.district.build_district`) once per district, each with its
own GB/T 2260 code, centre and size and its own random streams spawned from
``seed``, and joins the results into one :class:`DemoCity`. Districts sit
side by side without touching, so codes nest by prefix and nothing overlaps
across districts. Incidents cover the twelve months up to ``end``, with their
histories as of the end of that day.

Presets:

* ``full`` — six districts, 30 streets, 300 communities, 3,900 grids, about
  39,000 micro-grids, 1,000,000 incidents (a prefecture-level city);
* ``small`` — two districts, about 370 micro-grids, 20,000 incidents (tests).

Same seed, preset and ``end``: same frames. The codes, names and counts do not
depend on ``end``; only the incidents' dates (and ticket numbers) move with it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd

from gis.demo.district import DemoDistrict, DistrictSpec, _streams, build_district
from gis.demo.incidents import _external_ids
from gis.errors import ValidationError
from gis.incidents import STEP_COLUMNS

__all__ = ["CITY_CODE", "CITY_NAME", "PRESETS", "DemoCity", "build_city", "city_specs"]

CITY_NAME = "铜陵市"
CITY_CODE = "340700"
PROVINCE_NAME = "安徽省"
CITY_CENTRE = (117.81, 30.94)
#: Metres between neighbouring district centres: wide enough that outlines never touch.
_SPACING_M = 17_000.0
_M_PER_DEG_LAT = 111_000.0

# (code, name, streets, communities, grids, micro-grids): the codes and names of
# Tongling's districts, present (铜官区, 义安区, 郊区, 枞阳县) and former (铜官山区,
# 狮子山区); the content is synthetic.
_FULL = (
    ("340705", "铜官区", 6, 58, 760, 7600),
    ("340706", "义安区", 5, 54, 700, 7000),
    ("340711", "郊区", 5, 50, 650, 6500),
    ("340722", "枞阳县", 5, 48, 620, 6200),
    ("340702", "铜官山区", 5, 46, 600, 6000),
    ("340703", "狮子山区", 4, 44, 570, 5700),
)
_SMALL = (
    ("340705", "铜官区", 4, 12, 36, 200),
    ("340706", "义安区", 4, 12, 30, 170),
)
PRESETS: dict[str, dict] = {
    "full": {"districts": _FULL, "incidents": 1_000_000},
    "small": {"districts": _SMALL, "incidents": 20_000},
}
#: The demo generator draws its incidents over this year; a city shifts them to end at ``end``.
_GENERATED_LAST_DAY = dt.date(2023, 12, 31)


@dataclass
class DemoCity(DemoDistrict):
    """A generated city: :class:`DemoDistrict`'s frames with several districts.

    ``district`` has one row per district; ``planted["hotspots"]`` records carry
    the ``district_code`` they were planted in. ``city_name`` and ``preset`` say
    what was built.
    """

    city_name: str = CITY_NAME
    preset: str = "small"


def city_specs(preset: str) -> list[DistrictSpec]:
    """The districts of ``preset``, laid out on a grid of three columns around the centre."""
    rows = PRESETS[preset]["districts"]
    columns = min(3, len(rows))
    n_rows = -(-len(rows) // columns)
    specs = []
    for i, (code, name, streets, communities, grids, micro) in enumerate(rows):
        col, row = i % columns, i // columns
        east = (col - (columns - 1) / 2) * _SPACING_M
        north = ((n_rows - 1) / 2 - row) * _SPACING_M
        lon = CITY_CENTRE[0] + east / (_M_PER_DEG_LAT * np.cos(np.radians(CITY_CENTRE[1])))
        lat = CITY_CENTRE[1] + north / _M_PER_DEG_LAT
        specs.append(
            DistrictSpec(
                code=code,
                name=name,
                responsible=f"{CITY_NAME}{name}人民政府",
                centre_lonlat=(round(lon, 4), round(lat, 4)),
                # the demo's density: 88 km² for 6,600 blocks; never below 6 km²
                area_m2=max(6.0e6, micro * 1.2 * 88.0e6 / 6600),
                level_counts={"street": streets, "community": communities, "grid": grids},
                faces=int(micro * 1.2),
                micro_grids=(int(micro * 0.98), int(micro * 1.02)),
            )
        )
    return specs


def build_city(
    seed: int = 340700,
    preset: str = "small",
    n_incidents: int | None = None,
    end: dt.date | None = None,
    progress=None,
) -> DemoCity:
    """Generate a city of ``preset`` (see the module docstring).

    Parameters
    ----------
    seed : int
        Seed of every random choice; each district draws from its own streams.
    preset : {"small", "full"}
    n_incidents : int, optional
        Incidents of the whole city (default: the preset's), shared between
        districts in proportion to their grids.
    end : date, optional
        Last day of the twelve months of incidents (default: today).
    progress : callable, optional
        ``progress(district_name, done, total)`` after each district.

    Raises
    ------
    ValidationError
        For an unknown preset, a negative seed or ``n_incidents`` outside 0–20,000,000.
    """
    if preset not in PRESETS:
        raise ValidationError(f"preset must be one of {', '.join(PRESETS)}, got {preset!r}")
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ValidationError(f"seed must be a non-negative integer, got {seed!r}")
    total = PRESETS[preset]["incidents"] if n_incidents is None else n_incidents
    if isinstance(total, bool) or not isinstance(total, int | np.integer):
        raise ValidationError(f"n_incidents must be an integer, got {total!r}")
    if not 0 <= total <= 20_000_000:
        raise ValidationError(f"n_incidents must be 0–20,000,000, got {total:,}")
    specs = city_specs(preset)
    shares = _split_total(int(total), [s.level_counts["grid"] for s in specs])
    roots = np.random.SeedSequence(int(seed)).spawn(len(specs))
    parts = []
    for i, (spec, root, n) in enumerate(zip(specs, roots, shares, strict=True)):
        district = build_district(_streams(root), spec, n, seed=int(seed))
        _rename_places(district, spec.name)
        for record in district.planted["hotspots"]:
            record["district_code"] = spec.code
        parts.append(district)
        if progress:
            progress(spec.name, i + 1, len(specs))
    return _join(parts, int(seed), preset, end or dt.date.today())


def _split_total(total: int, weights: list[int]) -> list[int]:
    """Integers proportional to ``weights`` summing to ``total`` (largest remainders)."""
    w = np.asarray(weights, dtype=float)
    exact = w / w.sum() * total
    out = np.floor(exact).astype(np.int64)
    out[np.argsort(-(exact - out), kind="stable")[: total - int(out.sum())]] += 1
    return [int(v) for v in out]


def _rename_places(district: DemoDistrict, name: str) -> None:
    """Addresses say this district and city, not the demo's Weidu district of Xuchang.

    The demo's address writer knows one district; the names are replaced here,
    longest first, so that a door plate in one district never reads like one
    in another (the gazetteer would otherwise hold the same address twice).
    """
    replacements = (
        ("河南省许昌市魏都区", f"{PROVINCE_NAME}{CITY_NAME}{name}"),
        ("许昌市魏都区", f"{CITY_NAME}{name}"),
        ("许昌市", CITY_NAME),
        ("魏都区", name),
    )
    for frame in (district.gazetteer, district.incidents):
        if len(frame) == 0:
            continue
        text = frame["address"].astype(str)
        for old, new in replacements:
            text = text.str.replace(old, new, regex=False)
        frame["address"] = pd.array(text, dtype="str")


def _join(parts: list[DemoDistrict], seed: int, preset: str, end: dt.date) -> DemoCity:
    def cat(name: str) -> pd.DataFrame:
        return pd.concat([getattr(p, name) for p in parts], ignore_index=True)

    def geo(name: str) -> gpd.GeoDataFrame:
        frame = gpd.GeoDataFrame(cat(name), geometry="geometry", crs="EPSG:4326")
        if "code" in frame:
            frame = frame.sort_values("code", kind="stable").reset_index(drop=True)
        return frame

    shift = pd.Timedelta(days=(end - _GENERATED_LAST_DAY).days)
    incidents = cat("incidents").drop(columns="external_id")
    # histories move with their reports: still open as of the end of the day ``end``
    for column in ("reported_at", *STEP_COLUMNS):
        incidents[column] = incidents[column] + shift
    incidents = incidents.sort_values(["reported_at", "source"], kind="stable")
    incidents = incidents.reset_index(drop=True)
    # ticket numbers run per source and day across the whole city, as one hotline issues them
    incidents.insert(0, "external_id", pd.array(_external_ids(incidents), dtype="str"))
    hotspots = [h for p in parts for h in p.planted["hotspots"]]
    for record in hotspots:
        for key in ("start", "end"):
            day = dt.date.fromisoformat(str(record[key])) + shift.to_pytimedelta()
            record[key] = day.isoformat()
    staff = cat("staff")
    return DemoCity(
        seed=seed,
        district=geo("district"),
        streets=geo("streets"),
        communities=geo("communities"),
        grids=geo("grids"),
        micro_grids=geo("micro_grids"),
        staff=staff,
        incidents=incidents,
        gazetteer=cat("gazetteer"),
        roads=geo("roads"),
        planted={"gap": None, "overlap": None, "unstaffed": [], "hotspots": hotspots},
        city_name=CITY_NAME,
        preset=preset,
    )
