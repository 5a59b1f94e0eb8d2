"""API keys (stored hashed) and the incident status log of the closed loop.

Also indexes what the HTTP API filters on: assignments by street, community and
micro-grid, incidents by status, and areas by code (looked up one at a time).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)
STATUSES = "('reported', 'registered', 'dispatched', 'handled', 'verified', 'closed')"
LEVELS = "('grid', 'community', 'street')"


def upgrade() -> None:
    op.create_table(
        "api_key",
        sa.Column("id", sa.Integer, primary_key=True),
        # Only a SHA-256 of the key is kept: the key is 256 random bits, so a
        # plain hash is as safe as a slow one and costs microseconds per request.
        sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("prefix", sa.String(16), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("name", sa.Text),
        sa.Column("created_at", TZ, nullable=False, server_default=sa.func.now()),
        sa.Column("revoked_at", TZ),
        sa.CheckConstraint("role IN ('viewer', 'operator', 'admin')", name="api_key_role"),
    )

    op.create_table(
        "incident_status_log",
        sa.Column("id", sa.BigInteger, primary_key=True),
        sa.Column(
            "incident_id",
            sa.BigInteger,
            sa.ForeignKey("incident.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("from_status", sa.String(16)),
        sa.Column("to_status", sa.String(16), nullable=False),
        sa.Column("from_level", sa.String(16)),
        sa.Column("to_level", sa.String(16)),
        sa.Column("note", sa.Text),
        sa.Column("api_key_id", sa.Integer, sa.ForeignKey("api_key.id", ondelete="SET NULL")),
        sa.Column("at", TZ, nullable=False, server_default=sa.func.now()),
        sa.CheckConstraint(f"to_status IN {STATUSES}", name="status_log_to_status"),
        sa.CheckConstraint(f"to_level IS NULL OR to_level IN {LEVELS}", name="status_log_level"),
    )
    op.create_index("status_log_incident", "incident_status_log", ["incident_id", "id"])

    # The API selects incidents by the area they are assigned to at every level, not
    # only by grid (which 0001 indexes).
    for level in ("street", "community", "micro_grid"):
        op.create_index(
            f"incident_assignment_{level}",
            "incident_assignment",
            ["generation_id", f"{level}_code"],
        )
    op.create_index("incident_status", "incident", ["status"])
    op.create_index("area_code", "area", ["code"])


def downgrade() -> None:
    op.drop_index("area_code", table_name="area")
    op.drop_index("incident_status", table_name="incident")
    for level in ("street", "community", "micro_grid"):
        op.drop_index(f"incident_assignment_{level}", table_name="incident_assignment")
    op.drop_table("incident_status_log")
    op.drop_table("api_key")
