"""Staff rosters: import a city's roster file all or nothing, export it, and the roles.

A refused roster stores none of its rows, but the refusal is kept: an
``import_batch`` (kind ``staff``, status ``rejected``) with one ``rejected_row``
per refused row, written after the data transaction rolled back — the way
area imports keep theirs (``app/services/area_import.py``).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from sqlalchemy import Connection, Engine

from app.db import repo
from app.db import staff as staff_rows
from app.errors import ConflictError, NotFoundError
from gis.errors import ValidationError
from gis.staff import DEFAULT_ROLES, ROSTER_COLUMNS, ROSTER_HEADERS, StaffRole, validate_roster
from gis.tables import read_table, write_table
from gis.vocabulary import AREA_LEVELS


@dataclass
class StaffImportReport:
    """What a roster import did; ``problems`` is empty when it loaded."""

    source: str
    read_as: str
    generation: str
    rows_in: int
    stored: int = 0
    replaced: int = 0
    batch_id: int | None = None
    problems: list[dict] = field(default_factory=list)

    @property
    def loaded(self) -> bool:
        return not self.problems


def staff_roles(conn: Connection) -> list[StaffRole]:
    """The roles every deployment knows, then those this deployment added."""
    return [*DEFAULT_ROLES, *staff_rows.added_roles(conn)]


def add_role(engine: Engine, role: StaffRole) -> None:
    """Add a deployment role; its code and words must not name a known role already."""
    if not re.fullmatch(r"[a-z][a-z0-9_]*", role.code):
        raise ValidationError(f"a role code is lower-case ASCII and _, not {role.code!r}")
    if role.staffs not in (None, "grid", "micro_grid"):
        raise ValidationError(f"a role staffs a grid, a micro_grid or nothing, not {role.staffs!r}")
    with engine.begin() as conn:
        known = {w for r in staff_roles(conn) for w in (r.code, r.name_zh, r.name_en, *r.words)}
        taken = sorted(known & {role.code, role.name_zh, role.name_en, *role.words})
        if taken:
            raise ConflictError(f"岗位已存在 / these role names are taken: {', '.join(taken)}")
        staff_rows.store_role(conn, role)


def import_staff_file(
    engine: Engine,
    path: str | Path,
    *,
    sheet: str | None = None,
    encoding: str | None = None,
    replace: bool = False,
    generation: str | None = None,
) -> StaffImportReport:
    """Read, validate and store a roster; see ``gridmap staff import --help``."""
    path = Path(path)
    frame, read = read_table(path, sheet=sheet, encoding=encoding)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    report = StaffImportReport(str(path), read.describe(), generation or "(active)", len(frame))
    try:
        with engine.begin() as conn:
            _import_on(conn, frame, report, digest, replace=replace, generation=generation)
    except ValidationError as exc:
        report.problems = exc.problems or [{"row": None, "reason": str(exc)}]
        report.stored = report.replaced = 0
        with engine.begin() as conn:
            report.batch_id = _keep_refusal(conn, report, digest)
    return report


def _import_on(
    conn: Connection,
    frame: pd.DataFrame,
    report: StaffImportReport,
    digest: str,
    *,
    replace: bool,
    generation: str | None,
) -> None:
    gen = _generation(conn, generation)
    report.generation = gen.label
    areas = {code: level for level in AREA_LEVELS for code in repo.area_codes(conn, gen.id, level)}
    check = validate_roster(frame, areas, staff_roles(conn))
    problems = check.problems
    if not problems:
        problems = _already_stored(conn, gen.id, check.staff, replace)
    if problems:
        raise ValidationError(f"{report.source}: refused", problems)
    if replace:
        codes = set(check.staff["area_code"])
        report.replaced = staff_rows.delete_staff_of_areas(conn, gen.id, codes)
    batch = repo.start_batch(conn, "staff", report.source, None, gen.id, digest, len(frame))
    report.stored = staff_rows.copy_staff(conn, check.staff, gen.id, batch)
    report.batch_id = batch
    repo.finish_batch(
        conn,
        batch,
        "loaded",
        stored=report.stored,
        report={"generation": gen.label, "replaced": report.replaced},
    )


def _generation(conn: Connection, ref: str | None) -> repo.GenerationInfo:
    gen = repo.get_generation(conn, ref) if ref else repo.active_generation(conn)
    if gen is None:
        raise NotFoundError(
            f"no generation {ref!r}" if ref else "no active generation: import areas first"
        )
    return gen


def _already_stored(
    conn: Connection, generation_id: int, staff: pd.DataFrame, replace: bool
) -> list[dict]:
    """Rows repeating a person already on the roster (of an area the file does not replace)."""
    stored = staff_rows.staff_keys(conn, generation_id)
    if replace:
        stored = stored[~stored["area_code"].isin(set(staff["area_code"]))]
    people = set(zip(stored["name"], stored["role"], stored["area_code"], strict=True))
    numbers = set(stored["external_id"].dropna())
    problems = []
    for offset, row in enumerate(staff.to_dict("records")):
        if (row["name"], row["role"], row["area_code"]) in people or (
            row["external_id"] is not None and row["external_id"] in numbers
        ):
            problems.append(
                {
                    "row": offset + 2,
                    "reason": "已在花名册中 / already on the roster (use --replace)",
                    "raw": {k: _jsonable(v) for k, v in row.items()},
                }
            )
    return problems


def _keep_refusal(conn: Connection, report: StaffImportReport, digest: str) -> int:
    return repo.record_refusal(
        conn,
        "staff",
        report.source,
        report.problems,
        rows_in=report.rows_in,
        file_sha256=digest,
        report={"generation": report.generation},
    )


def export_staff(engine: Engine, path: str | Path, generation: str | None = None) -> int:
    """Write a generation's roster as .csv (with a BOM) or .xlsx, headers "中文 / english"."""
    with engine.connect() as conn:
        gen = _generation(conn, generation)
        roster = staff_rows.roster_frame(conn, gen.id)
        names = {role.code: role.name_zh for role in staff_roles(conn)}
    roster["role"] = roster["role"].map(names).fillna(roster["role"])
    roster = roster.rename(columns={c: f"{ROSTER_HEADERS[c]} / {c}" for c in ROSTER_COLUMNS})
    write_table(roster, path)
    return len(roster)


def _jsonable(value: object) -> object:
    return value if value is None or isinstance(value, str | int | float) else str(value)
