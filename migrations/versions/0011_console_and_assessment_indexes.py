"""What the console's queue and assessment pages read on a city of a million incidents.

- ``incident_deadline``: every incident by (deadline, id), the queue's order. The
  partial ``incident_open_deadline`` (0009) serves only a filter on open statuses;
  without this index the first page of an unfiltered queue sorted every incident.
- ``incident_id_status``: id with status and deadline beside it, so the queue's counts
  per status (and overdue) read a narrow index instead of the wide incident rows: the
  whole territory in one index-only scan, a scope by one probe per incident in it.
- ``incident_assignment_grid`` gains the incident id (INCLUDE), so a scope's incidents
  are found from the index alone.
- ``incident_report_month``: statistics on the local month of the report time, the
  grouping key of the assessment's monthly counts. Without them the planner takes the
  month to have as many values as report times (a million) and sorts every row to group
  them; with them it knows a year has twelve and hashes a few thousand groups. The
  expression is spelled as ``app.db.stats`` spells it (constants, not parameters).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02
"""

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

MONTH = "to_char(timezone('Asia/Shanghai', reported_at), 'YYYY-MM')"


def upgrade() -> None:
    op.create_index("incident_deadline", "incident", ["deadline_at", "id"])
    op.create_index(
        "incident_id_status", "incident", ["id"], postgresql_include=["status", "deadline_at"]
    )
    op.drop_index("incident_assignment_grid", table_name="incident_assignment")
    op.create_index(
        "incident_assignment_grid",
        "incident_assignment",
        ["generation_id", "grid_code"],
        postgresql_include=["incident_id"],
    )
    op.execute(f"CREATE STATISTICS incident_report_month ON ({MONTH}) FROM incident")
    op.execute("ANALYZE incident")


def downgrade() -> None:
    op.execute("DROP STATISTICS incident_report_month")
    op.drop_index("incident_assignment_grid", table_name="incident_assignment")
    op.create_index(
        "incident_assignment_grid", "incident_assignment", ["generation_id", "grid_code"]
    )
    op.drop_index("incident_id_status", table_name="incident")
    op.drop_index("incident_deadline", table_name="incident")
