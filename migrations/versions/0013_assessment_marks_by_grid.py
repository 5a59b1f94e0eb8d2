"""The assessment's marks by grid: a small change marks the cells of the grids it touched,
not its whole month, so that the next read recounts those grids alone and patches them
into the stored month (``app.db.stats_rollup``).

``assessment_stale`` is where writers say what changed. A mark names

- the cells of one grid of a (generation, month) — ``grid_code``, '' for the cells of
  incidents outside every grid: a change of a few incidents, which the next read
  recounts by themselves and patches into the stored month;
- a whole (generation, month), NULL meaning every generation or every month;
- or, with ``first_id`` and ``last_id``, the months of the incidents in that id range.

Statement-level triggers with transition tables (as ``incident_deleted``, 0010) mark
what a statement changed: incidents inserted, updated (only when a column the figures
read changed) or deleted, and their assignments under each generation; a TRUNCATE
marks everything. A statement of up to :data:`PRECISE_ROWS` rows (an incident through
the API, a transition, a move) is marked by grid, its rows joined to their assignments
or incidents (a few index probes). A larger one (an import's or ``gridmap assign``'s
chunks of 100,000 and more, a bulk update) is marked by month, or by its id range,
which the next recount resolves once: joining every chunk to the incident table made a
1M-row import take 134 s instead of 86 s. A trigger takes no lock on the rollup, and a
mark already there is not repeated.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-03
"""

import importlib.util
from pathlib import Path
from types import ModuleType

from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

# The local month of a report time, as a date (its first day): gis.vocabulary.LOCAL_TIMEZONE.
MONTH = "date_trunc('month', timezone('Asia/Shanghai', {t}.reported_at))::date"
# Columns of incident the figures read (app.db.stats): a change to any other is no change.
COUNTED = (
    "reported_at",
    "status",
    "handling_level",
    "handled_at",
    "closed_at",
    "deadline_at",
    "category",
    "source",
    "assignee_staff_id",
)
ASSIGNED = ("street_code", "community_code", "grid_code")
#: Rows a statement may change and still be marked grid by grid.
PRECISE_ROWS = 10_000
NO_GRID = "''"


def _columns(alias: str, names: tuple[str, ...]) -> str:
    return ", ".join(f"{alias}.{n}" for n in names)


def _mark(triples: str) -> str:
    """Insert the (generation, month, grid) triples the SELECT ``triples`` gives as marks,
    but those already there: the table stays as small as what changed since the last read,
    however many statements changed it. (Two concurrent writers may add the same mark
    twice, which is harmless; a unique index would make them wait for each other's commit
    — an API transition for a bulk import's.)"""
    return (
        "INSERT INTO assessment_stale (generation_id, month, grid_code)"
        f" SELECT x.g, x.m, x.c FROM ({triples}) x(g, m, c)"
        " WHERE NOT EXISTS (SELECT 1 FROM assessment_stale s WHERE s.month = x.m"
        "  AND s.generation_id IS NOT DISTINCT FROM x.g"
        "  AND s.grid_code IS NOT DISTINCT FROM x.c); "
    )


def _large(table: str) -> str:
    """Whether the statement's transition table has more than PRECISE_ROWS rows."""
    rows = f"(SELECT count(*) FROM (SELECT FROM {table} LIMIT {PRECISE_ROWS + 1}) x)"
    return f"{rows} > {PRECISE_ROWS}"


def _precise_or(table: str, precise: str, coarse: str) -> str:
    return f"IF {_large(table)} THEN {coarse}ELSE {precise}END IF; "


def _incident_function() -> str:
    """Incidents count through their assignments: a small statement's incidents are marked
    by the grids they are assigned to under each generation (a new incident has none
    yet: its assignment marks it); a large one's by month (or id range, for an insert)."""
    old, new = MONTH.format(t="o"), MONTH.format(t="n")
    changed = f"({_columns('o', COUNTED)}) IS DISTINCT FROM ({_columns('n', COUNTED)})"
    # an id on one side only (changed) counts as a change
    both = (
        "FROM old_incident o FULL JOIN new_incident n ON n.id = o.id"
        f" CROSS JOIN LATERAL (VALUES ({old}), ({new})) AS m(month)"
    )
    kept = f"WHERE m.month IS NOT NULL AND (o.id IS NULL OR n.id IS NULL OR {changed})"
    return (
        "CREATE OR REPLACE FUNCTION assessment_incidents_changed() RETURNS trigger "
        "LANGUAGE plpgsql AS $$ "
        "BEGIN "
        "IF TG_OP = 'TRUNCATE' THEN "
        " INSERT INTO assessment_stale (generation_id, month) VALUES (NULL, NULL); "
        "ELSIF TG_OP = 'INSERT' THEN "
        + _precise_or(
            "new_incident",
            _mark(
                f"SELECT DISTINCT a.generation_id, {new}, coalesce(a.grid_code, {NO_GRID})"
                " FROM new_incident n JOIN incident_assignment a ON a.incident_id = n.id"
                " WHERE n.reported_at IS NOT NULL"
            ),
            "INSERT INTO assessment_stale (first_id, last_id)"
            " SELECT min(id), max(id) FROM new_incident; ",
        )
        + "ELSIF TG_OP = 'DELETE' THEN "
        # before incident_deleted (0010) removes the assignments: triggers fire by name
        + _precise_or(
            "old_incident",
            _mark(
                f"SELECT DISTINCT a.generation_id, {old}, coalesce(a.grid_code, {NO_GRID})"
                " FROM old_incident o JOIN incident_assignment a ON a.incident_id = o.id"
                " WHERE o.reported_at IS NOT NULL"
            ),
            _mark(
                f"SELECT DISTINCT NULL::integer, {old}, NULL::varchar FROM old_incident o"
                " WHERE o.reported_at IS NOT NULL"
            ),
        )
        + "ELSE "
        + _precise_or(
            "new_incident",
            _mark(
                f"SELECT DISTINCT a.generation_id, m.month, coalesce(a.grid_code, {NO_GRID})"
                f" {both} JOIN incident_assignment a ON a.incident_id = coalesce(n.id, o.id)"
                f" {kept}"
            ),
            _mark(f"SELECT DISTINCT NULL::integer, m.month, NULL::varchar {both} {kept}"),
        )
        + "END IF; "
        "RETURN NULL; END $$"
    )


def _assignment_function() -> str:
    """An assignment's cells are its generation's, grid's and incident's month: a small
    statement marks those (the old grid and the new); a large one its id range."""
    month = MONTH.format(t="i")
    changed = f"({_columns('o', ASSIGNED)}) IS DISTINCT FROM ({_columns('n', ASSIGNED)})"

    def marks(rows: str, table: str) -> str:
        """``rows``: (generation_id, incident_id, grid) of the assignments changed."""
        return _precise_or(
            table,
            _mark(
                f"SELECT DISTINCT a.generation_id, {month}, a.grid"
                f" FROM ({rows}) a(generation_id, incident_id, grid)"
                " JOIN incident i ON i.id = a.incident_id WHERE i.reported_at IS NOT NULL"
            ),
            "INSERT INTO assessment_stale (generation_id, first_id, last_id)"
            "  SELECT a.generation_id, min(a.incident_id), max(a.incident_id)"
            f"  FROM ({rows}) a(generation_id, incident_id, grid) GROUP BY a.generation_id; ",
        )

    def rows(table: str) -> str:
        return f"SELECT generation_id, incident_id, coalesce(grid_code, {NO_GRID}) FROM {table}"

    # an assignment updated: its old grid and its new one (a row on one side only: that side)
    updated = (
        "SELECT coalesce(n.generation_id, o.generation_id),"
        " coalesce(n.incident_id, o.incident_id), g.grid"
        " FROM old_assignment o FULL JOIN new_assignment n"
        " ON n.generation_id = o.generation_id AND n.incident_id = o.incident_id"
        f" CROSS JOIN LATERAL (VALUES (CASE WHEN o.incident_id IS NOT NULL"
        f" THEN coalesce(o.grid_code, {NO_GRID}) END),"
        f" (CASE WHEN n.incident_id IS NOT NULL THEN coalesce(n.grid_code, {NO_GRID}) END))"
        " AS g(grid)"
        f" WHERE g.grid IS NOT NULL AND (o.incident_id IS NULL OR n.incident_id IS NULL"
        f" OR {changed})"
    )
    return (
        "CREATE OR REPLACE FUNCTION assessment_assignments_changed() RETURNS trigger "
        "LANGUAGE plpgsql AS $$ "
        "BEGIN "
        "IF TG_OP = 'TRUNCATE' THEN "
        " INSERT INTO assessment_stale (generation_id, month) VALUES (NULL, NULL); "
        "ELSIF TG_OP = 'INSERT' THEN "
        + marks(rows("new_assignment"), "new_assignment")
        + "ELSIF TG_OP = 'DELETE' THEN "
        + marks(rows("old_assignment"), "old_assignment")
        + "ELSE "
        + marks(updated, "new_assignment")
        + "END IF; "
        "RETURN NULL; END $$"
    )


def upgrade() -> None:
    # Marks made before this revision name whole months (grid_code NULL): still valid.
    op.execute("ALTER TABLE assessment_stale ADD COLUMN grid_code varchar(32)")
    op.execute(_incident_function())
    op.execute(_assignment_function())


def _revision_0012() -> ModuleType:
    """The previous revision's module, whose trigger functions a downgrade puts back."""
    path = Path(__file__).with_name("0012_assessment_rollup.py")
    spec = importlib.util.spec_from_file_location("gridmap_migration_0012", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def downgrade() -> None:
    previous = _revision_0012()
    for function in (previous._incident_function(), previous._assignment_function()):
        op.execute(function.replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION", 1))
    # a grid's mark becomes its whole month's: the previous reader knows no grid
    op.execute("ALTER TABLE assessment_stale DROP COLUMN grid_code")
