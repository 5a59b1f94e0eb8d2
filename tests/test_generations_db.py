"""Generations share unchanged areas (MapIt ranges); replacing one generation's level never
changes a later generation's areas."""

from __future__ import annotations

import geopandas as gpd
import pytest
from shapely.geometry import box

from app.db import repo
from app.services.area_import import import_areas

pytestmark = pytest.mark.db


def _district(name: str) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {"code": ["411002"], "name": [name]}, geometry=[box(113.80, 34.00, 113.84, 34.04)], crs=4326
    )


def _names(engine, label: str) -> list[str]:
    with engine.connect() as conn:
        gen = repo.get_generation(conn, label)
        assert gen is not None
        frame = repo.areas_frame(conn, gen.id, "district", columns=("code", "name"))
    return sorted(frame["name"])


def test_replacing_a_level_keeps_the_later_generation_that_carried_it(clean_db):
    options = {"code_field": "code", "name_field": "name"}
    first = import_areas(
        clean_db, _district("old"), "district", source="t", generation="a", **options
    )
    assert first.stored == 1
    with clean_db.begin() as conn:
        a = repo.get_generation(conn, "a")
        b = repo.create_generation(conn, "b")
        assert a is not None and b.id == a.id + 1  # adjacent: the row's range is extended
        assert repo.carry_areas(conn, a.id, b.id, ["district"]) == 1

    again = import_areas(
        clean_db, _district("new"), "district", source="t", generation="a", replace=True, **options
    )

    assert again.stored == 1, again.problems
    assert _names(clean_db, "a") == ["new"]
    assert _names(clean_db, "b") == ["old"]
