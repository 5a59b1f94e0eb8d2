"""The demo district: Weidu district, Xuchang, built from a seed, bit for bit.

:func:`build_demo` (in :mod:`gis.demo.district`) orchestrates the modules of
this package, each one step of the construction:

* :mod:`~gis.demo.names` — street, community and person names, phone numbers;
* :mod:`~gis.demo.blocks` — the road network, polygonized into blocks;
* :mod:`~gis.demo.partition` — balanced region growing on the block graph;
* :mod:`~gis.demo.hierarchy` — streets, communities, grids and micro-grids;
* :mod:`~gis.demo.areas` — the area frame of every level;
* :mod:`~gis.demo.people` — staff roster and door-plate gazetteer;
* :mod:`~gis.demo.incidents` — a year of incidents with planted hotspots;
* :mod:`~gis.demo.history` — each incident's way through the closed loop;
* :mod:`~gis.demo.defects` — planted coverage defects, on request.
"""

from __future__ import annotations

from gis.demo.district import (
    AREA_COLUMNS,
    DISTRICT_CODE,
    LEVEL_COUNTS,
    DemoDistrict,
    build_demo,
)

__all__ = ["AREA_COLUMNS", "DISTRICT_CODE", "LEVEL_COUNTS", "DemoDistrict", "build_demo"]
