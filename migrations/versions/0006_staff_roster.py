"""Staff rosters from a city's files, deployment roles, and the redesign's workload window.

A roster row may carry the office's own staff number, department and dates of
service, and the import batch it came in. Roles are no longer a CHECK list:
``gis.staff.DEFAULT_ROLES`` names the roles every deployment knows and the
``staff_role`` table those a deployment adds (``gridmap staff add-role``); a
roster import checks each row against both. A redesign plan records the window
of incidents its workload was counted over, and how many there were.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)
# The roles 0001's CHECK allowed: what a downgrade can keep.
FIRST_ROLES = ("grid_leader", "grid_worker", "micro_grid_worker", "dedicated_grid_leader")
ROSTER_COLUMNS = ("external_id", "department", "start_date", "end_date", "batch_id")
WINDOW_COLUMNS = ("window_start", "window_end", "window_incidents")


def upgrade() -> None:
    op.create_table(
        "staff_role",
        sa.Column("code", sa.String(32), primary_key=True),
        sa.Column("name_zh", sa.Text, nullable=False),
        sa.Column("name_en", sa.Text, nullable=False),
        sa.Column("staffs", sa.String(16)),
        sa.Column("words", sa.ARRAY(sa.Text), nullable=False, server_default="{}"),
        sa.CheckConstraint("staffs IN ('grid', 'micro_grid')", name="staff_role_staffs"),
        sa.CheckConstraint("code ~ '^[a-z][a-z0-9_]*$'", name="staff_role_code"),
    )
    op.drop_constraint("staff_role", "staff", type_="check")
    op.add_column("staff", sa.Column("external_id", sa.String(64)))
    op.add_column("staff", sa.Column("department", sa.Text))
    op.add_column("staff", sa.Column("start_date", sa.Date))
    op.add_column("staff", sa.Column("end_date", sa.Date))
    op.add_column(
        "staff",
        sa.Column("batch_id", sa.BigInteger, sa.ForeignKey("import_batch.id", ondelete="SET NULL")),
    )
    op.create_check_constraint(
        "staff_dates", "staff", "end_date IS NULL OR start_date IS NULL OR end_date >= start_date"
    )
    op.add_column("redesign_plan", sa.Column("window_start", TZ))
    op.add_column("redesign_plan", sa.Column("window_end", TZ))
    op.add_column("redesign_plan", sa.Column("window_incidents", sa.Integer))


def downgrade() -> None:
    for column in WINDOW_COLUMNS:
        op.drop_column("redesign_plan", column)
    # Staff of roles 0001 did not know cannot be kept under its CHECK.
    roles = ", ".join(f"'{r}'" for r in FIRST_ROLES)
    op.execute(f"DELETE FROM staff WHERE role NOT IN ({roles})")
    op.drop_constraint("staff_dates", "staff", type_="check")
    for column in ROSTER_COLUMNS:
        op.drop_column("staff", column)
    op.create_check_constraint("staff_role", "staff", f"role IN ({roles})")
    op.drop_table("staff_role")
