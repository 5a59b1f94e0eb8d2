"""The console's counts per status, kept: the queue's tabs without counting a city's
incidents on every page.

``incident_count`` holds counts per status, each row a part of the sum:

- ``generation_id`` NULL and ``grid_code`` NULL: every incident (the unscoped tabs);
- ``generation_id`` and ``grid_code``: the incidents assigned to that grid under that
  generation (a scope is a prefix of grid codes: ``app.db.queries.code_in_scope``);
- ``status`` NULL: a mark, "count this again" — the totals (``generation_id`` NULL) or
  one generation's grids.

Statement-level triggers with transition tables (as 0010 and 0012) append what a
statement changed as rows of +n and -n (``delta``): appending takes no row lock, so two
operators acting in one grid never wait on a counter. The totals are grouped from the
incident rows alone, for any statement. A grid's count needs the incident's status
and its assignment, so a statement of up to :data:`PRECISE_ROWS` rows joins them (a
few index probes); a larger one (an import's chunk, ``gridmap assign --all``, a
redesign, a bulk update) marks the generations it touched instead, and the next reader
counts those again in one pass (``app.db.kept_counts``), which costs less than
joining each chunk. Deleting incidents is counted before ``incident_deleted`` (0010)
removes their assignments: triggers on one event fire in the order of their names.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-03
"""

from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

#: Rows a statement may change and still have its grids' counts moved by the trigger.
PRECISE_ROWS = 10_000

#: Append rows of (generation, grid, status, n) grouped from the SELECT ``rows``.
APPEND = (
    "INSERT INTO incident_count (generation_id, grid_code, status, n)"
    " SELECT g, c, s, sum(n) FROM ({rows}) x(g, c, s, n) GROUP BY g, c, s HAVING sum(n) <> 0; "
)
#: Marks: every generation (a large change of incidents), counted again when read.
MARK_GENERATIONS = "INSERT INTO incident_count (generation_id) SELECT id FROM generation; "


def _large(table: str) -> str:
    rows = f"(SELECT count(*) FROM (SELECT FROM {table} LIMIT {PRECISE_ROWS + 1}) x)"
    return f"{rows} > {PRECISE_ROWS}"


#: (generation, grid, status, -1) of the deleted incidents, through their assignments.
DELETED_FROM_GRIDS = (
    "SELECT a.generation_id, a.grid_code, o.status, -1"
    " FROM old_incident o JOIN incident_assignment a ON a.incident_id = o.id"
    " WHERE a.grid_code IS NOT NULL"
)


def _incident_function() -> str:
    def totals(alias: str, sign: str) -> str:
        every = "NULL::integer, NULL::varchar"
        table = {"o": "old_incident", "n": "new_incident"}[alias]
        return f"SELECT {every}, {alias}.status, {sign}1 FROM {table} {alias}"

    # an update moves an incident from its old status to its new one, in the totals and in
    # the grids it is assigned to (an id is never changed by the application)
    pairs = "FROM old_incident o JOIN new_incident n ON n.id = o.id"
    moved = "CROSS JOIN LATERAL (VALUES (o.status, -1), (n.status, 1)) s(status, n)"
    status_changed = "n.status IS DISTINCT FROM o.status"
    moved_totals = (
        f"SELECT NULL::integer, NULL::varchar, s.status, s.n {pairs} {moved} WHERE {status_changed}"
    )
    grid_moves = (
        f"SELECT a.generation_id, a.grid_code, s.status, s.n {pairs} {moved}"
        " JOIN incident_assignment a ON a.incident_id = n.id"
        f" WHERE {status_changed} AND a.grid_code IS NOT NULL"
    )
    return (
        "CREATE FUNCTION incident_counts_changed() RETURNS trigger LANGUAGE plpgsql AS $$ "
        "BEGIN "
        "IF TG_OP = 'TRUNCATE' THEN "
        " INSERT INTO incident_count (generation_id) VALUES (NULL); "
        + MARK_GENERATIONS
        + "ELSIF TG_OP = 'INSERT' THEN "
        # a new incident has no assignment yet: its assignment's trigger counts its grid
        + APPEND.format(rows=totals("n", ""))
        + "ELSIF TG_OP = 'DELETE' THEN "
        + APPEND.format(rows=totals("o", "-"))
        + f"IF {_large('old_incident')} THEN {MARK_GENERATIONS}"
        + f"ELSE {APPEND.format(rows=DELETED_FROM_GRIDS)}END IF; "
        + "ELSE "
        + APPEND.format(rows=moved_totals)
        + f"IF {_large('new_incident')} THEN {MARK_GENERATIONS}"
        + f"ELSE {APPEND.format(rows=grid_moves)}END IF; "
        + "END IF; "
        "RETURN NULL; END $$"
    )


def _assignment_function() -> str:
    def counted(table: str, sign: str) -> str:
        return (
            f"SELECT a.generation_id, a.grid_code, i.status, {sign}1 FROM {table} a"
            " JOIN incident i ON i.id = a.incident_id WHERE a.grid_code IS NOT NULL"
        )

    def either(table: str, precise: str) -> str:
        marks = (
            "INSERT INTO incident_count (generation_id)"
            f" SELECT DISTINCT generation_id FROM {table}; "
        )
        return f"IF {_large(table)} THEN {marks}ELSE {precise}END IF; "

    return (
        "CREATE FUNCTION incident_count_assignments_changed() RETURNS trigger "
        "LANGUAGE plpgsql AS $$ "
        "BEGIN "
        "IF TG_OP = 'TRUNCATE' THEN "
        + MARK_GENERATIONS
        + "ELSIF TG_OP = 'INSERT' THEN "
        + either("new_assignment", APPEND.format(rows=counted("new_assignment", "")))
        + "ELSIF TG_OP = 'DELETE' THEN "
        # an incident deleted is gone from the join: its own trigger counted it
        + either("old_assignment", APPEND.format(rows=counted("old_assignment", "-")))
        + "ELSE "
        + either(
            "new_assignment",
            APPEND.format(
                rows=counted("old_assignment", "-") + " UNION ALL " + counted("new_assignment", "")
            ),
        )
        + "END IF; "
        "RETURN NULL; END $$"
    )


def _triggers(table: str, function: str, rows: str) -> list[str]:
    """One trigger per event (transition tables need single-event triggers), named to fire
    before ``incident_deleted``."""
    old, new = f"old_{rows}", f"new_{rows}"
    run = f"FOR EACH STATEMENT EXECUTE FUNCTION {function}()"
    return [
        f"CREATE TRIGGER incident_count_inserted AFTER INSERT ON {table} "
        f"REFERENCING NEW TABLE AS {new} {run}",
        f"CREATE TRIGGER incident_count_updated AFTER UPDATE ON {table} "
        f"REFERENCING OLD TABLE AS {old} NEW TABLE AS {new} {run}",
        f"CREATE TRIGGER incident_count_deleted AFTER DELETE ON {table} "
        f"REFERENCING OLD TABLE AS {old} {run}",
        f"CREATE TRIGGER incident_count_truncated AFTER TRUNCATE ON {table} {run}",
    ]


def upgrade() -> None:
    op.execute(
        "CREATE TABLE incident_count ("
        # no foreign key: a generation's assignments are deleted (and counted) as it is
        " generation_id integer,"
        " grid_code varchar(32),"
        " status varchar(16),"
        " n bigint NOT NULL DEFAULT 0,"
        " delta boolean NOT NULL DEFAULT true)"
    )
    op.execute("CREATE INDEX incident_count_scope ON incident_count (generation_id, grid_code)")
    op.execute(_incident_function())
    op.execute(_assignment_function())
    for statement in _triggers("incident", "incident_counts_changed", "incident"):
        op.execute(statement)
    for statement in _triggers(
        "incident_assignment", "incident_count_assignments_changed", "assignment"
    ):
        op.execute(statement)
    # counted on the first read: the totals and every generation
    op.execute("INSERT INTO incident_count (generation_id) VALUES (NULL)")
    op.execute(MARK_GENERATIONS.rstrip("; "))


def downgrade() -> None:
    for table in ("incident", "incident_assignment"):
        for event in ("inserted", "updated", "deleted", "truncated"):
            op.execute(f"DROP TRIGGER incident_count_{event} ON {table}")
    op.execute("DROP FUNCTION incident_counts_changed()")
    op.execute("DROP FUNCTION incident_count_assignments_changed()")
    op.execute("DROP TABLE incident_count")
