"""Thematic layers (多格合一): import, list, export, delete, the crosswalk and snapping.

Called by the CLI (``gridmap layers``), the API (``/layers``, the OGC collections
``layer_{theme}``, ``/lookup``) and the maps. A theme file is validated in full
and stored all or nothing, like an area file (``app.services.area_import``); a
refusal is kept as an ``import_batch`` of kind ``layers`` with one ``rejected_row``
per problem.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from sqlalchemy import Connection, Engine

from app.db import layers as db
from app.db import repo
from app.errors import NotFoundError
from app.services.area_import import _sha256
from gis.areas import write_areas
from gis.errors import ValidationError
from gis.layers import (
    Crosswalk,
    build_crosswalk,
    check_theme,
    prepare_units,
    read_units,
    suggest_snapping,
)
from gis.tables import write_table

__all__ = [
    "BATCH_KIND",
    "LayerImportReport",
    "ThemeCrosswalk",
    "ThemeUnits",
    "crosswalk_of",
    "delete_layer",
    "export_layer",
    "generation_or_not_found",
    "grid_theme_units",
    "import_layer",
    "import_layer_file",
    "layer_of",
    "layers_of",
    "pairs_records",
    "split_records",
    "list_layers",
    "load_theme_units",
    "suggestion_of",
    "theme_units_at",
    "themes_on",
    "themes_stamp",
    "write_crosswalk",
]

#: ``import_batch.kind`` of theme imports (allowed by migration 0007).
BATCH_KIND = "layers"

#: Bilingual headers of the crosswalk table as officials open it (Chinese first).
CROSSWALK_HEADERS = {
    "unit_code": "专题单元编码 unit_code",
    "unit_name": "专题单元名称 unit_name",
    "grid_code": "网格编码 grid_code",
    "grid_name": "网格名称 grid_name",
    "shared_m2": "重叠面积(m²) shared_m2",
    "share_of_grid": "占网格比例 share_of_grid",
    "share_of_unit": "占单元比例 share_of_unit",
    "households": "户数 households",
    "household_share": "户数比例 household_share",
    "grid_status": "网格状态 grid_status",
}


@dataclass
class LayerImportReport:
    """What a theme import did; ``problems`` is empty when it loaded."""

    source: str
    theme: str
    generation: str
    rows_in: int
    stored: int = 0
    replaced: int = 0
    batch_id: int | None = None
    problems: list[dict] = field(default_factory=list)

    @property
    def loaded(self) -> bool:
        return not self.problems


# -- import ---------------------------------------------------------------------------
def import_layer_file(
    engine: Engine,
    path: str | Path,
    theme: str,
    *,
    crs: str | None = None,
    layer: str | None = None,
    encoding: str | None = None,
    generation: str | None = None,
    replace: bool = False,
    **prepare_options: Any,
) -> LayerImportReport:
    """Read, validate and store one theme file; see ``gridmap layers import --help``."""
    path = Path(path)
    check_theme(theme)
    gdf = read_units(path, crs=crs, layer=layer, encoding=encoding)
    return import_layer(
        engine,
        gdf,
        theme,
        source=str(path),
        file_sha256=_sha256(path),
        generation=generation,
        replace=replace,
        **prepare_options,
    )


def import_layer(
    engine: Engine,
    gdf: gpd.GeoDataFrame,
    theme: str,
    *,
    source: str,
    file_sha256: str | None = None,
    generation: str | None = None,
    replace: bool = False,
    **prepare_options: Any,
) -> LayerImportReport:
    """Validate ``gdf`` as theme ``theme`` of a generation and store all of it, or nothing."""
    check_theme(theme)
    with engine.connect() as conn:
        gen = generation_or_not_found(conn, generation)
    try:
        with engine.begin() as conn:
            stored = _store(conn, gdf, theme, gen, source, file_sha256, replace, prepare_options)
        return stored
    except ValidationError as exc:
        report = LayerImportReport(source, theme, gen.label, len(gdf), problems=exc.problems)
        with engine.begin() as conn:
            report.batch_id = repo.record_refusal(
                conn,
                BATCH_KIND,
                source,
                exc.problems,
                rows_in=len(gdf),
                generation_id=gen.id,
                file_sha256=file_sha256,
                report={"theme": theme},
            )
        return report


def _store(conn, gdf, theme, gen, source, file_sha256, replace, prepare_options):
    """Without ``replace`` the file adds units to an existing theme (every code must be new)."""
    existing = db.find_layer(conn, gen.id, theme)
    adding = existing is not None and not replace
    codes = db.unit_codes(conn, existing.id) if adding else set()
    prepared = prepare_units(gdf, existing_codes=codes, **prepare_options)
    if prepared.problems:
        raise ValidationError(f"{source}: refused", prepared.problems)
    replaced = db.delete_layer(conn, existing.id) if existing is not None and replace else 0
    batch = repo.start_batch(conn, BATCH_KIND, source, None, gen.id, file_sha256, len(gdf))
    layer_id = existing.id if adding else db.create_layer(conn, gen.id, theme, source, batch)
    stored = db.copy_units(conn, layer_id, prepared.units)
    repo.finish_batch(
        conn, batch, "loaded", stored=len(gdf), report={"theme": theme, "units": stored}
    )
    return LayerImportReport(
        source, theme, gen.label, len(gdf), stored=stored, replaced=replaced, batch_id=batch
    )


# -- list, export, delete -------------------------------------------------------------
def list_layers(engine: Engine, generation: str | None = None) -> list[db.LayerInfo]:
    """The themes of one generation, or of every generation when ``generation`` is "all"."""
    with engine.connect() as conn:
        if generation == "all":
            return db.list_layers(conn)
        return db.list_layers(conn, generation_or_not_found(conn, generation).id)


def layers_of(conn: Connection, generation_id: int) -> list[db.LayerInfo]:
    """The themes of one generation (for a caller holding a connection)."""
    return db.list_layers(conn, generation_id)


def layer_of(conn: Connection, theme: str, generation: str | None = None) -> db.LayerInfo:
    """The theme of a generation (the active one by default), or NotFoundError."""
    check_theme(theme)
    gen = generation_or_not_found(conn, generation)
    layer = db.find_layer(conn, gen.id, theme)
    if layer is None:
        known = ", ".join(x.theme for x in db.list_layers(conn, gen.id)) or "none"
        raise NotFoundError(
            f"专题图层不存在 no theme {theme!r} in generation {gen.label!r} (themes: {known}); "
            "load it with `gridmap layers import FILE --theme …`"
        )
    return layer


def export_layer(
    engine: Engine, theme: str, path: str | Path, generation: str | None = None
) -> tuple[db.LayerInfo, int]:
    """Write a theme's units to a file (the format follows the suffix)."""
    with engine.connect() as conn:
        layer = layer_of(conn, theme, generation)
        units = db.units_frame(conn, layer.id)
    write_areas(units, path)
    return layer, len(units)


def delete_layer(engine: Engine, theme: str, generation: str | None = None) -> int:
    """Delete a theme of a generation; returns the number of units deleted."""
    with engine.begin() as conn:
        deleted = db.delete_layer(conn, layer_of(conn, theme, generation).id)
    return deleted


# -- crosswalk and snapping ------------------------------------------------------------
@dataclass
class ThemeCrosswalk:
    """A theme's crosswalk with what it was computed from."""

    theme: str
    generation: str
    units: gpd.GeoDataFrame
    grids: gpd.GeoDataFrame
    crosswalk: Crosswalk

    def grid_layer(self) -> gpd.GeoDataFrame:
        """The grids with their class (aligned / split / uncovered), for a map or a file."""
        classes = self.crosswalk.grids.set_index("grid_code")
        codes = self.grids["code"].astype(str)
        out = classes.loc[codes.to_numpy()].reset_index()
        return gpd.GeoDataFrame(out, geometry=self.grids.geometry.to_numpy(), crs=4326)

    def summary(self) -> dict[str, Any]:
        score = self.crosswalk.score
        return {
            "theme": self.theme,
            "generation": self.generation,
            "units": len(self.units),
            "threshold": self.crosswalk.threshold,
            "tolerance_m": self.crosswalk.tolerance_m,
            **{k: _plain(v) for k, v in score.items()},
        }


def crosswalk_of(
    engine: Engine,
    theme: str,
    generation: str | None = None,
    *,
    threshold: float = 0.99,
    tolerance_m: float = 10.0,
) -> ThemeCrosswalk:
    """The crosswalk of a theme and the grids of its generation (the active one by default)."""
    if not 0 < threshold <= 1:
        raise ValidationError(f"threshold must be in (0, 1], got {threshold}")
    if tolerance_m < 0:
        raise ValidationError(f"tolerance must be ≥ 0 metres, got {tolerance_m}")
    with engine.connect() as conn:
        layer = layer_of(conn, theme, generation)
        units = db.units_frame(conn, layer.id)
        grids = repo.areas_frame(conn, layer.generation_id, "grid", ("code", "name", "households"))
        micro = repo.areas_frame(
            conn, layer.generation_id, "micro_grid", ("code", "parent_code", "households")
        )
    if len(grids) == 0:
        raise NotFoundError(f"generation {layer.generation!r} has no grids to compare with")
    crosswalk = build_crosswalk(
        units, grids, micro if len(micro) else None, threshold=threshold, tolerance_m=tolerance_m
    )
    return ThemeCrosswalk(theme, layer.generation, units, grids, crosswalk)


def themes_on(
    conn: Connection,
    generation_id: int,
    grids: gpd.GeoDataFrame,
    micro_grids: gpd.GeoDataFrame | None = None,
) -> dict[str, ThemeCrosswalk]:
    """Every theme of a generation with its crosswalk over ``grids`` already loaded (the maps)."""
    out: dict[str, ThemeCrosswalk] = {}
    for layer in db.list_layers(conn, generation_id):
        units = db.units_frame(conn, layer.id)
        micro = micro_grids if micro_grids is not None and len(micro_grids) else None
        out[layer.theme] = ThemeCrosswalk(
            layer.theme, layer.generation, units, grids, build_crosswalk(units, grids, micro)
        )
    return out


def themes_stamp(engine: Engine) -> tuple:
    """Changes whenever any theme of any generation changes (the maps' cache key)."""
    with engine.connect() as conn:
        return db.layer_stamp(conn)


def write_crosswalk(result: ThemeCrosswalk, path: str | Path) -> Path:
    """The pairs as .xlsx/.csv (bilingual headers), or the classed grids as .geojson."""
    path = Path(path)
    if path.suffix.lower() in (".geojson", ".json", ".gpkg"):
        return write_areas(result.grid_layer(), path)
    return write_table(result.crosswalk.pairs.rename(columns=CROSSWALK_HEADERS), path)


def suggestion_of(result: ThemeCrosswalk) -> gpd.GeoDataFrame:
    """Each unit redrawn along the grids, with the area and households changing hands."""
    return suggest_snapping(result.crosswalk, result.units, result.grids)


# -- lookup and the grid page ------------------------------------------------------------
@dataclass(frozen=True)
class ThemeUnits:
    """One theme's units in memory (WGS84), for lookups: the lookup index
    (:class:`app.services.registry.GenerationView`) holds one per theme of its generation.
    """

    codes: np.ndarray
    names: np.ndarray
    geoms: np.ndarray
    tree: shapely.STRtree

    @classmethod
    def of(cls, units: gpd.GeoDataFrame) -> ThemeUnits:
        geoms = units.geometry.to_numpy()
        return cls(
            units["code"].to_numpy(), units["name"].to_numpy(), geoms, shapely.STRtree(geoms)
        )

    def at(self, lon: float, lat: float) -> dict[str, Any] | None:
        """``{"code", "name"}`` of the unit covering a WGS84 point, None outside every unit."""
        hits = self.tree.query(shapely.Point(lon, lat), predicate="intersects")
        if not len(hits):
            return None
        i = int(np.min(hits))  # overlapping units: the first by code, always the same
        return {"code": self.codes[i], "name": self.names[i]}

    def codes_at(self, lon: np.ndarray, lat: np.ndarray) -> list[str | None]:
        """The unit code covering each point (None outside every unit or for a NaN point)."""
        points = shapely.points(lon, lat)
        point_i, unit_i = self.tree.query(points, predicate="intersects")
        first = np.full(len(points), len(self.codes), dtype=np.int64)
        np.minimum.at(first, point_i, unit_i)
        codes = np.empty(len(self.codes) + 1, dtype=object)  # the last: no unit
        codes[:-1] = self.codes
        return codes[first].tolist()


def load_theme_units(conn: Connection, generation_id: int) -> dict[str, ThemeUnits]:
    """Every theme of a generation, in memory for lookups."""
    return {
        layer.theme: ThemeUnits.of(db.units_frame(conn, layer.id))
        for layer in db.list_layers(conn, generation_id)
    }


def theme_units_at(
    engine: Engine, generation_id: int, lon: float, lat: float
) -> dict[str, dict[str, Any] | None]:
    """For each theme of the generation, the unit (code, name) covering a WGS84 point.

    Reads the themes from the database; the API answers from its lookup index instead.
    """
    with engine.connect() as conn:
        themes = load_theme_units(conn, generation_id)
    return {theme: units.at(lon, lat) for theme, units in themes.items()}


def grid_theme_units(
    engine: Engine, generation_id: int, grid: gpd.GeoDataFrame
) -> list[dict[str, Any]]:
    """The units of every theme sharing area with one grid (``code``, geometry), largest first."""
    with engine.connect() as conn:
        themes = load_theme_units(conn, generation_id)
    rows: list[dict[str, Any]] = []
    for theme, units in themes.items():
        near = units.tree.query(grid.geometry.iloc[0], predicate="intersects")
        if not len(near):
            continue
        frame = gpd.GeoDataFrame(
            {"code": units.codes[near], "name": units.names[near]},
            geometry=units.geoms[near],
            crs=4326,
        )
        pairs = build_crosswalk(frame, grid).pairs
        for pair in pairs.itertuples():
            rows.append(
                {
                    "theme": theme,
                    "code": pair.unit_code,
                    "name": pair.unit_name,
                    "share_of_grid": float(pair.share_of_grid),
                    "shared_m2": float(pair.shared_m2),
                }
            )
    return sorted(rows, key=lambda r: (r["theme"], -r["share_of_grid"]))


# -- helpers ------------------------------------------------------------------------------
def generation_or_not_found(conn: Connection, ref: str | None) -> repo.GenerationInfo:
    """Generation ``ref`` (label or id), or the active one; NotFoundError when there is none."""
    gen = repo.get_generation(conn, ref) if ref else repo.active_generation(conn)
    if gen is None:
        raise NotFoundError(
            f"no generation {ref!r}"
            if ref
            else "no active generation: import areas or run `gridmap demo` first"
        )
    return gen


def _plain(value: Any) -> Any:
    """A JSON-safe number: NaN becomes None."""
    if isinstance(value, float | np.floating):
        return None if np.isnan(value) else float(value)
    return value


def pairs_records(result: ThemeCrosswalk) -> list[dict[str, Any]]:
    """The pairs as JSON-safe records (NaN as None)."""
    frame = result.crosswalk.pairs.astype(object)
    return frame.where(pd.notna(frame), None).to_dict("records")


def split_records(result: ThemeCrosswalk) -> list[dict[str, Any]]:
    """The split grids as JSON-safe records, largest first."""
    frame = result.crosswalk.split.astype(object)
    return frame.where(pd.notna(frame), None).to_dict("records")
