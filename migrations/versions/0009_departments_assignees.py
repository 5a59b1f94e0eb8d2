"""Departments, who handles an incident, its deadline, its version, and 吹哨报到.

``department`` holds the district's functional departments (委办局: urban
management, market supervision, housing, police …), imported from the office's
table (``gridmap departments import``). An incident now records:

- ``assignee_staff_id`` / ``assignee_name``: the staff member of its grid it was
  dispatched to. Rosters are per generation and replaced on re-import, so the
  staff row may go (``ON DELETE SET NULL``); the name copied at dispatch keeps
  the record readable. A sign-in account (``app_user``) is not an assignee:
  not every grid worker has one, and the roster is what says who serves a grid.
- ``department_code``: the department it was dispatched to, if any.
- ``deadline_at``: reported_at + the handling deadline of its category in the
  taxonomy version it was classified under (backfilled here).
- ``version``: raised by every transition; a client sends the version it saw
  and a stale one is refused (optimistic concurrency).

``incident_whistle`` lists the departments a street whistled (吹哨) for an
incident and when each reported in by handling it (报到). The status log
records the action, the departments and the assignee of each step, and the
signed-in user who took it.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02
"""

import re

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)
BATCH_KIND = "departments"
# Statuses of an incident nobody has handled yet (gis.vocabulary.OPEN_STATUSES at 0009).
OPEN = "('reported', 'registered', 'dispatched')"


def _batch_kinds(conn: sa.Connection) -> list[str]:
    definition = conn.execute(
        sa.text(
            "SELECT pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conname = 'import_batch_kind'"
        )
    ).scalar_one()
    return re.findall(r"'([a-z_]+)'", definition)


def _allow_batch_kinds(kinds: list[str]) -> None:
    op.drop_constraint("import_batch_kind", "import_batch", type_="check")
    listed = ", ".join(f"'{k}'" for k in kinds)
    op.create_check_constraint("import_batch_kind", "import_batch", f"kind IN ({listed})")


def upgrade() -> None:
    op.create_table(
        "department",
        sa.Column("code", sa.String(64), primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("contact", sa.Text),
        sa.Column("created_at", TZ, nullable=False, server_default=sa.func.now()),
        sa.Column("updated_at", TZ, nullable=False, server_default=sa.func.now()),
        sa.CheckConstraint("code ~ '^[A-Za-z0-9][A-Za-z0-9_.-]*$'", name="department_code"),
    )
    _incident_columns()
    op.create_table(
        "incident_whistle",
        sa.Column(
            "incident_id",
            sa.BigInteger,
            sa.ForeignKey("incident.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column(
            "department_code",
            sa.String(64),
            sa.ForeignKey("department.code", onupdate="CASCADE"),
            primary_key=True,
        ),
        sa.Column("whistled_at", TZ, nullable=False, server_default=sa.func.now()),
        # 报到: when the department reported in by handling it; NULL until then.
        sa.Column("reported_at", TZ),
        sa.Column("report_note", sa.Text),
    )
    op.create_index("incident_whistle_department", "incident_whistle", ["department_code"])
    op.add_column("incident_status_log", sa.Column("action", sa.String(16)))
    op.add_column("incident_status_log", sa.Column("departments", sa.ARRAY(sa.String(64))))
    op.add_column("incident_status_log", sa.Column("assignee_name", sa.Text))
    op.add_column(
        "incident_status_log",
        sa.Column("user_id", sa.Integer, sa.ForeignKey("app_user.id", ondelete="SET NULL")),
    )
    _allow_batch_kinds([*_batch_kinds(op.get_bind()), BATCH_KIND])


def _incident_columns() -> None:
    op.add_column(
        "incident",
        sa.Column(
            "assignee_staff_id", sa.BigInteger, sa.ForeignKey("staff.id", ondelete="SET NULL")
        ),
    )
    op.add_column("incident", sa.Column("assignee_name", sa.Text))
    op.add_column(
        "incident",
        sa.Column(
            "department_code",
            sa.String(64),
            sa.ForeignKey("department.code", onupdate="CASCADE"),
        ),
    )
    op.add_column("incident", sa.Column("deadline_at", TZ))
    # A constant default: PostgreSQL adds it without rewriting the table.
    op.add_column("incident", sa.Column("version", sa.Integer, nullable=False, server_default="1"))
    op.execute(
        "UPDATE incident i "
        "SET deadline_at = i.reported_at + make_interval(hours => t.deadline_hours) "
        "FROM taxonomy_item t WHERE t.version_id = i.taxonomy_version AND t.code = i.category "
        "AND i.reported_at IS NOT NULL"
    )
    # The queue sorts open incidents by deadline and the overdue filter scans them.
    op.create_index(
        "incident_open_deadline",
        "incident",
        ["deadline_at"],
        postgresql_where=sa.text(f"status IN {OPEN}"),
    )
    op.create_index("incident_assignee", "incident", ["assignee_staff_id"])
    op.create_index("incident_department", "incident", ["department_code"])


def downgrade() -> None:
    conn = op.get_bind()
    conn.execute(sa.text("DELETE FROM import_batch WHERE kind = :k"), {"k": BATCH_KIND})
    _allow_batch_kinds([k for k in _batch_kinds(conn) if k != BATCH_KIND])
    for column in ("user_id", "assignee_name", "departments", "action"):
        op.drop_column("incident_status_log", column)
    op.drop_index("incident_whistle_department", table_name="incident_whistle")
    op.drop_table("incident_whistle")
    for index in ("incident_department", "incident_assignee", "incident_open_deadline"):
        op.drop_index(index, table_name="incident")
    for column in ("version", "deadline_at", "department_code", "assignee_name"):
        op.drop_column("incident", column)
    op.drop_column("incident", "assignee_staff_id")
    op.drop_table("department")
