"""The assessment's monthly rollup: one row of figures per generation and local month, and
the marks that say which of them a change of the incidents has made stale.

``assessment_month`` holds, per (generation, month of the report time in local time),
the month's *cells* — counts per (street, community, grid, assignee) — and every closed
incident's hours to close and every open incident's deadline, as Arrow IPC streams
(``app.db.stats_rollup`` writes and reads them; why Arrow and not rows is said there).
``terms`` fingerprints what the cells were counted under (the taxonomy in use and the
layout): a month counted under another taxonomy is not used.

``assessment_stale`` is where writers say what changed. A mark names a (generation,
month), NULL meaning every generation or every month; or, with ``first_id`` and
``last_id``, the months of the incidents in that id range. Statement-level triggers
with transition tables (as ``incident_deleted``, 0010) mark the months of the incidents
a statement inserted, updated (only when a column the figures read changed) or deleted,
and of the incidents whose assignment under a generation changed; a TRUNCATE marks
everything. A trigger inserts a statement's distinct months, nothing per row, and takes
no lock on the rollup; a mark already there is not repeated.

Finding the months of changed *assignments* means reading their incidents. For a
statement of up to :data:`PRECISE_ROWS` assignments (an incident through the API, a
move) the trigger joins them; beyond (an import's or ``gridmap assign``'s chunks of
100,000 and more) it marks their id range per generation instead, and whoever recounts
finds the months once: joining each chunk to the incident table made a 1M-row import
half as slow again. The next read of the assessment consumes the marks and recounts the
months it needs (``app.db.stats.refresh_rollup``).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03
"""

from alembic import op

revision = "0012"
down_revision = "0011"
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
#: Assignments a statement may change and still have their months found by the trigger.
PRECISE_ROWS = 10_000


def _columns(alias: str, names: tuple[str, ...]) -> str:
    return ", ".join(f"{alias}.{n}" for n in names)


def _mark(pairs: str) -> str:
    """Insert the (generation, month) pairs the SELECT ``pairs`` gives as marks, but those
    already marked: the table stays as small as the months changed since the last read,
    however many statements changed them. (A concurrent writer may add the same mark
    twice; that is harmless. A unique index would make concurrent writers of one month
    wait for each other's commit — an API transition for a bulk import's.)"""
    return (
        "INSERT INTO assessment_stale (generation_id, month)"
        f" SELECT x.g, x.m FROM ({pairs}) x(g, m)"
        " WHERE NOT EXISTS (SELECT 1 FROM assessment_stale s"
        "  WHERE s.month = x.m AND s.generation_id IS NOT DISTINCT FROM x.g); "
    )


def _incident_function() -> str:
    old, new = MONTH.format(t="o"), MONTH.format(t="n")
    changed = f"({_columns('o', COUNTED)}) IS DISTINCT FROM ({_columns('n', COUNTED)})"
    return (
        "CREATE FUNCTION assessment_incidents_changed() RETURNS trigger LANGUAGE plpgsql AS $$ "
        "BEGIN "
        "IF TG_OP = 'TRUNCATE' THEN "
        " INSERT INTO assessment_stale (generation_id, month) VALUES (NULL, NULL); "
        "ELSIF TG_OP = 'INSERT' THEN "
        + _mark(
            f"SELECT DISTINCT NULL::integer, {new} FROM new_incident n"
            " WHERE n.reported_at IS NOT NULL"
        )
        + "ELSIF TG_OP = 'DELETE' THEN "
        + _mark(
            f"SELECT DISTINCT NULL::integer, {old} FROM old_incident o"
            " WHERE o.reported_at IS NOT NULL"
        )
        + "ELSE "
        # rows are matched by id; a row on one side only (an id changed) counts as changed
        + _mark(
            "SELECT DISTINCT NULL::integer, m.month"
            " FROM old_incident o FULL JOIN new_incident n ON n.id = o.id,"
            f" LATERAL (VALUES ({old}), ({new})) AS m(month)"
            f" WHERE m.month IS NOT NULL AND (o.id IS NULL OR n.id IS NULL OR {changed})"
        )
        + "END IF; "
        "RETURN NULL; END $$"
    )


def _assignment_function() -> str:
    month = MONTH.format(t="i")
    changed = f"({_columns('o', ASSIGNED)}) IS DISTINCT FROM ({_columns('n', ASSIGNED)})"
    updated = (
        "SELECT coalesce(n.generation_id, o.generation_id), coalesce(n.incident_id, o.incident_id)"
        " FROM old_assignment o FULL JOIN new_assignment n"
        " ON n.generation_id = o.generation_id AND n.incident_id = o.incident_id"
        f" WHERE o.incident_id IS NULL OR n.incident_id IS NULL OR {changed}"
    )

    def marks(rows: str, table: str) -> str:
        """The months of ``rows`` (generation, incident) — or, for a large statement (as many
        rows in ``table``), their id range per generation."""
        large = f"(SELECT count(*) FROM (SELECT FROM {table} LIMIT {PRECISE_ROWS + 1}) x)"
        return (
            f"IF {large} > {PRECISE_ROWS} THEN "
            " INSERT INTO assessment_stale (generation_id, first_id, last_id)"
            "  SELECT a.generation_id, min(a.incident_id), max(a.incident_id)"
            f"  FROM ({rows}) a(generation_id, incident_id) GROUP BY a.generation_id; "
            "ELSE "
            + _mark(
                f"SELECT DISTINCT a.generation_id, {month}"
                f" FROM ({rows}) a(generation_id, incident_id)"
                " JOIN incident i ON i.id = a.incident_id WHERE i.reported_at IS NOT NULL"
            )
            + "END IF; "
        )

    return (
        "CREATE FUNCTION assessment_assignments_changed() RETURNS trigger "
        "LANGUAGE plpgsql AS $$ "
        "BEGIN "
        "IF TG_OP = 'TRUNCATE' THEN "
        " INSERT INTO assessment_stale (generation_id, month) VALUES (NULL, NULL); "
        "ELSIF TG_OP = 'INSERT' THEN "
        + marks("SELECT generation_id, incident_id FROM new_assignment", "new_assignment")
        + "ELSIF TG_OP = 'DELETE' THEN "
        + marks("SELECT generation_id, incident_id FROM old_assignment", "old_assignment")
        + "ELSE "
        + marks(updated, "new_assignment")
        + "END IF; "
        "RETURN NULL; END $$"
    )


def _triggers(table: str, function: str, rows: str) -> list[str]:
    """One trigger per event: PostgreSQL allows transition tables on single-event triggers only."""
    old, new = f"old_{rows}", f"new_{rows}"
    run = f"FOR EACH STATEMENT EXECUTE FUNCTION {function}()"
    return [
        f"CREATE TRIGGER assessment_inserted AFTER INSERT ON {table} "
        f"REFERENCING NEW TABLE AS {new} {run}",
        f"CREATE TRIGGER assessment_updated AFTER UPDATE ON {table} "
        f"REFERENCING OLD TABLE AS {old} NEW TABLE AS {new} {run}",
        f"CREATE TRIGGER assessment_deleted AFTER DELETE ON {table} "
        f"REFERENCING OLD TABLE AS {old} {run}",
        f"CREATE TRIGGER assessment_truncated AFTER TRUNCATE ON {table} {run}",
    ]


def upgrade() -> None:
    op.execute(
        "CREATE TABLE assessment_month ("
        " generation_id integer NOT NULL REFERENCES generation(id) ON DELETE CASCADE,"
        " month date NOT NULL,"
        " terms varchar(64) NOT NULL,"
        " cells bytea NOT NULL,"
        " closed bytea NOT NULL,"
        " open bytea NOT NULL,"
        " computed_at timestamptz NOT NULL DEFAULT now(),"
        " PRIMARY KEY (generation_id, month))"
    )
    # Arrow streams are read whole: stored out of line without pglz, whose decompression
    # would cost more than the bytes it saves.
    for column in ("cells", "closed", "open"):
        op.execute(f"ALTER TABLE assessment_month ALTER COLUMN {column} SET STORAGE EXTERNAL")
    op.execute(
        "CREATE TABLE assessment_stale "
        "(generation_id integer, month date, first_id bigint, last_id bigint)"
    )
    op.execute("CREATE INDEX assessment_stale_month ON assessment_stale (month)")
    op.execute(_incident_function())
    op.execute(_assignment_function())
    for statement in _triggers("incident", "assessment_incidents_changed", "incident"):
        op.execute(statement)
    for statement in _triggers(
        "incident_assignment", "assessment_assignments_changed", "assignment"
    ):
        op.execute(statement)


def downgrade() -> None:
    for table in ("incident", "incident_assignment"):
        for event in ("inserted", "updated", "deleted", "truncated"):
            op.execute(f"DROP TRIGGER assessment_{event} ON {table}")
    op.execute("DROP FUNCTION assessment_incidents_changed()")
    op.execute("DROP FUNCTION assessment_assignments_changed()")
    op.execute("DROP TABLE assessment_stale")
    op.execute("DROP TABLE assessment_month")
