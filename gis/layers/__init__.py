"""Thematic layers (多格合一): department zones kept beside the grid hierarchy.

Police districts, market-supervision zones, party-building grids and mediation
areas are each a *theme*: a set of units with a department's own codes. They are
not forced into the hierarchy; instead :mod:`gis.layers.crosswalk` relates every
unit to the comprehensive grids (shares of area and of households, aligned and
split grids, an alignment score) and :mod:`gis.layers.snapping` proposes the
boundary each unit would have if it followed the grids.

* :mod:`gis.layers.units` — reading and validating a theme's file, all or nothing;
* :mod:`gis.layers.crosswalk` — unit × grid pairs, grid classes, the alignment score;
* :mod:`gis.layers.clip` — shared areas of convex grids and units, many pairs at once;
* :mod:`gis.layers.vertices` — polygons projected as arrays of vertices, boxes that meet;
* :mod:`gis.layers.snapping` — the union of the grids mostly inside each unit.
"""

from __future__ import annotations

from gis.layers.crosswalk import (
    CROSSWALK_COLUMNS,
    Crosswalk,
    GridClass,
    alignment_score,
    build_crosswalk,
    shared_areas,
)
from gis.layers.snapping import SUGGESTION_COLUMNS, suggest_snapping
from gis.layers.units import (
    KNOWN_THEMES,
    UNIT_COLUMNS,
    PreparedUnits,
    check_theme,
    prepare_units,
    read_units,
)

__all__ = [
    "CROSSWALK_COLUMNS",
    "KNOWN_THEMES",
    "SUGGESTION_COLUMNS",
    "UNIT_COLUMNS",
    "Crosswalk",
    "GridClass",
    "PreparedUnits",
    "alignment_score",
    "build_crosswalk",
    "check_theme",
    "prepare_units",
    "read_units",
    "shared_areas",
    "suggest_snapping",
]
