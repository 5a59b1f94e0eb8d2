"""gridmap's pure core: areas, codes, coordinates, assignment and analysis on GeoDataFrames.

Nothing here touches a database or a web framework: ``app/`` reads the data,
hands GeoDataFrames to these modules and stores or shows what they return.

Modules and subpackages
-----------------------
* :mod:`gis.vocabulary` — the words of the domain (levels, statuses, roles, sources, clock);
* :mod:`gis.errors` — the exceptions every module raises;
* :mod:`gis.codes` — unified area codes (see "Unified codes" in ``docs/domain.md``);
* :mod:`gis.crs` — WGS84/CGCS2000/GCJ-02/BD-09 conversions and the metric CRS;
* :mod:`gis.areas` — reading, checking and numbering area layers;
* :mod:`gis.assign` — point-in-polygon assignment (``docs/assignment.md``);
* :mod:`gis.tables` — office tables in and out (CSV in UTF-8 or GB18030, Excel);
* :mod:`gis.incidents`, :mod:`gis.geocode`, :mod:`gis.taxonomy` — incident files,
  addresses and categories; :mod:`gis.times` — the accepted range of report times;
* :mod:`gis.staff` — staff rosters and the staffing rule;
* :mod:`gis.departments` — the district's departments (委办局) from an office table;
* :mod:`gis.coverage` — gaps, overlaps and nesting defects of a hierarchy;
* :mod:`gis.hotspots` — counts, rates, Gi* hot spots, density and trends;
* :mod:`gis.figures` — the statistics report's figures added up from counted cells
  (sums per row and month, exact medians, overdue at a moment);
* :mod:`gis.redesign` — redesigning grids for equal workload;
* :mod:`gis.layers` — departments' thematic layers and their crosswalk to the grids (多格合一);
* :mod:`gis.demo` — the deterministic demo district.

The main entry points are importable from here too (``from gis import GridIndex``).
Everything loads on first use, so ``import gis.codes`` stays light and Dask,
esda or scipy are imported only by the modules that need them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gis import (
        areas,
        assign,
        codes,
        coverage,
        crs,
        demo,
        departments,
        errors,
        figures,
        geocode,
        hotspots,
        incidents,
        layers,
        redesign,
        staff,
        tables,
        taxonomy,
        times,
        vocabulary,
    )
    from gis.assign import GridIndex, HierarchyIndex, assign_points
    from gis.codes import CodeScheme
    from gis.coverage import check_coverage
    from gis.crs import metric_crs
    from gis.demo import build_demo
    from gis.errors import GridmapError
    from gis.geocode import Gazetteer
    from gis.hotspots import HotSpots, kernel_density
    from gis.incidents import clean_incidents
    from gis.layers import build_crosswalk
    from gis.redesign import Redesign
    from gis.staff import validate_roster
    from gis.tables import read_table, write_table

__all__ = [
    # modules and subpackages
    "areas",
    "assign",
    "codes",
    "coverage",
    "crs",
    "demo",
    "departments",
    "errors",
    "figures",
    "geocode",
    "hotspots",
    "incidents",
    "layers",
    "redesign",
    "staff",
    "tables",
    "taxonomy",
    "times",
    "vocabulary",
    # entry points
    "CodeScheme",
    "Gazetteer",
    "GridIndex",
    "GridmapError",
    "HierarchyIndex",
    "HotSpots",
    "Redesign",
    "assign_points",
    "build_crosswalk",
    "build_demo",
    "check_coverage",
    "clean_incidents",
    "kernel_density",
    "metric_crs",
    "read_table",
    "validate_roster",
    "write_table",
]

#: Entry point → the module that defines it.
_ENTRY_POINTS = {
    "CodeScheme": "gis.codes",
    "Gazetteer": "gis.geocode",
    "GridIndex": "gis.assign",
    "GridmapError": "gis.errors",
    "HierarchyIndex": "gis.assign",
    "HotSpots": "gis.hotspots",
    "Redesign": "gis.redesign",
    "assign_points": "gis.assign",
    "build_crosswalk": "gis.layers",
    "build_demo": "gis.demo",
    "check_coverage": "gis.coverage",
    "clean_incidents": "gis.incidents",
    "kernel_density": "gis.hotspots",
    "metric_crs": "gis.crs",
    "read_table": "gis.tables",
    "validate_roster": "gis.staff",
    "write_table": "gis.tables",
}
_MODULES = frozenset(__all__) - _ENTRY_POINTS.keys()


def __getattr__(name: str) -> Any:
    """Import a module or entry point the first time it is asked for (PEP 562)."""
    if name in _MODULES:
        return importlib.import_module(f"gis.{name}")
    if name in _ENTRY_POINTS:
        value = getattr(importlib.import_module(_ENTRY_POINTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'gis' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
