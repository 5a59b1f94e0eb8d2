"""Import orchestration shared by the CLI and the API: validate, then store all or nothing.

A refused file stores none of its areas, but the refusal itself is kept: an
``import_batch`` with status ``rejected`` and one ``rejected_row`` per problem,
written in a transaction of its own after the data transaction rolled back.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
from sqlalchemy import Connection, Engine

from app.db import repo
from gis.areas import parent_level, prepare_areas, read_areas
from gis.errors import ValidationError


@dataclass
class AreaImportReport:
    """What an area import did; ``problems`` is empty when it loaded."""

    source: str
    level: str
    generation: str
    rows_in: int
    stored: int = 0
    batch_id: int | None = None
    created_generation: bool = False
    problems: list[dict] = field(default_factory=list)

    @property
    def loaded(self) -> bool:
        return not self.problems


def import_area_file(
    engine: Engine,
    path: str | Path,
    level: str,
    *,
    code_field: str | None = None,
    parent_field: str | None = None,
    name_field: str | None = None,
    kind_field: str | None = None,
    parent_code: str | None = None,
    crs: str | None = None,
    layer: str | None = None,
    generation: str | None = None,
    repair: bool = False,
    replace: bool = False,
) -> AreaImportReport:
    """Read, validate and store one boundary file; see ``gridmap areas import --help``."""
    path = Path(path)
    gdf = read_areas(path, crs=crs, layer=layer)
    return import_areas(
        engine,
        gdf,
        level,
        source=str(path),
        file_sha256=_sha256(path),
        code_field=code_field,
        parent_field=parent_field,
        name_field=name_field,
        kind_field=kind_field,
        parent_code=parent_code,
        generation=generation,
        repair=repair,
        replace=replace,
    )


def import_areas(
    engine: Engine,
    gdf: gpd.GeoDataFrame,
    level: str,
    *,
    source: str,
    file_sha256: str | None = None,
    generation: str | None = None,
    replace: bool = False,
    **prepare_options,
) -> AreaImportReport:
    """Validate ``gdf`` against the target generation and COPY it in one transaction."""
    try:
        with engine.begin() as conn:
            return import_areas_on(
                conn,
                gdf,
                level,
                source=source,
                file_sha256=file_sha256,
                generation=generation,
                replace=replace,
                **prepare_options,
            )
    except ValidationError as exc:
        report = AreaImportReport(
            source, level, generation or "(active)", len(gdf), problems=exc.problems
        )
        with engine.begin() as conn:
            report.batch_id = repo.record_refusal(
                conn,
                "areas",
                source,
                exc.problems,
                rows_in=len(gdf),
                level=level,
                file_sha256=file_sha256,
                report={"level": level},
            )
        return report


def import_areas_on(
    conn: Connection,
    gdf: gpd.GeoDataFrame,
    level: str,
    *,
    source: str,
    file_sha256: str | None = None,
    generation: str | None = None,
    replace: bool = False,
    **prepare_options,
) -> AreaImportReport:
    """The work of :func:`import_areas` inside the caller's transaction.

    Raises ValidationError (with every problem) instead of storing part of the
    layer; the caller's transaction must then be rolled back.
    """
    gen, created = repo.resolve_generation(conn, generation)
    above = parent_level(level)
    parents = repo.areas_frame(conn, gen.id, above, columns=("code",)) if above else None
    existing = set() if replace else repo.area_codes(conn, gen.id, level)
    prepared = prepare_areas(
        gdf, level, parents=parents, existing_codes=existing, **prepare_options
    )
    if prepared.problems:
        raise ValidationError(f"{source}: refused", prepared.problems)
    if replace:
        repo.delete_level(conn, gen.id, level)
    batch = repo.start_batch(conn, "areas", source, level, gen.id, file_sha256, len(gdf))
    stored = repo.copy_areas(conn, prepared.areas, gen.id, batch)
    repo.finish_batch(
        conn, batch, "loaded", stored=stored, report={"generation": gen.label, "level": level}
    )
    return AreaImportReport(
        source,
        level,
        gen.label,
        len(gdf),
        stored=stored,
        batch_id=batch,
        created_generation=created,
    )


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
