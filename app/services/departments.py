"""The district's departments (委办局): imported from an office table, all or nothing.

A department is what a street whistles (吹哨) for an incident it cannot solve,
and what an incident may be dispatched to (``app.services.handling``). The
table is read by :func:`gis.tables.read_table` (CSV in UTF-8 or GBK/GB18030,
detected; or XLSX) and checked as a whole by :func:`gis.departments.validate_departments`:
one bad row refuses the file, every bad row is listed and kept as a rejected
import batch. Importing a code already stored updates its name and contact.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Connection, Engine

from app.db import departments as rows
from app.db import repo
from gis.departments import validate_departments
from gis.errors import ValidationError
from gis.tables import read_table

BATCH_KIND = "departments"


@dataclass
class DepartmentImport:
    """What an import did: stored (new + updated) or refused with its problems."""

    source: str
    read_as: str
    rows_in: int
    added: int = 0
    updated: int = 0
    problems: list[dict] = field(default_factory=list)
    batch_id: int | None = None

    @property
    def loaded(self) -> bool:
        return not self.problems


def import_departments(
    engine: Engine, path: str | Path, *, sheet: str | None = None, encoding: str | None = None
) -> DepartmentImport:
    """Read, validate and store a department table; see ``gridmap departments import``."""
    path = Path(path)
    frame, read = read_table(path, sheet=sheet, encoding=encoding)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    report = DepartmentImport(str(path), read.describe(), len(frame))
    try:
        check = validate_departments(frame)
    except ValidationError as exc:  # a missing column: the table as a whole
        check = None
        report.problems = [{"row": None, "reason": str(exc)}]
    if check is not None and check.problems:
        report.problems = check.problems
    if not report.problems and check is not None:
        with engine.begin() as conn:
            _store(conn, check.departments.to_dict("records"), report, digest)
        return report
    with engine.begin() as conn:
        report.batch_id = repo.record_refusal(
            conn,
            BATCH_KIND,
            report.source,
            report.problems,
            rows_in=report.rows_in,
            file_sha256=digest,
        )
    return report


def _store(conn: Connection, departments: list[dict], report: DepartmentImport, digest: str):
    known = rows.existing_codes(conn)
    batch = repo.start_batch(conn, BATCH_KIND, report.source, None, None, digest, report.rows_in)
    rows.upsert_departments(conn, departments)
    report.updated = sum(1 for d in departments if d["code"] in known)
    report.added = len(departments) - report.updated
    report.batch_id = batch
    repo.finish_batch(
        conn,
        batch,
        "loaded",
        stored=len(departments),
        report={"added": report.added, "updated": report.updated},
    )


def list_departments(conn: Connection) -> list[dict]:
    """Every department (code, name, contact), by code."""
    return rows.list_departments(conn)
