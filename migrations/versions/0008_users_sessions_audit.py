"""Users, sign-in sessions, the audit log, and an area scope on API keys.

``app_user`` holds people who sign in through ``/login``: an argon2id hash of the
password (never the password), a role, an optional area scope (a unified code:
the user sees incidents whose grid code starts with it) and an optional
department code (plain text until a departments table exists). Failed sign-ins
are counted per user; ``locked_until`` stops sign-ins for a while after too many.

``user_session`` rows are server-side sessions: the id is the SHA-256 of the
random token in the cookie, so a copy of the table cannot be replayed. Deleting
a user deletes its sessions.

``audit_log`` records sign-ins, sign-outs, user and key management and every
write through the API: who (actor kind, id and label), when, what (action,
target, detail), from which address, and the outcome.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)
ROLES = "('viewer', 'operator', 'admin')"


def upgrade() -> None:
    op.create_table(
        "app_user",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("username", sa.String(64), nullable=False),
        sa.Column("display_name", sa.Text),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("area", sa.String(64)),
        sa.Column("department", sa.String(64)),
        sa.Column("password_hash", sa.Text, nullable=False),
        sa.Column("disabled_at", TZ),
        sa.Column("failed_attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("locked_until", TZ),
        sa.Column("created_at", TZ, nullable=False, server_default=sa.func.now()),
        sa.Column("password_changed_at", TZ, nullable=False, server_default=sa.func.now()),
        sa.CheckConstraint(f"role IN {ROLES}", name="app_user_role"),
        sa.CheckConstraint("failed_attempts >= 0", name="app_user_failed_attempts"),
    )
    # One account per name whatever the case: "Zhang" and "zhang" are the same person.
    op.create_index("app_user_username", "app_user", [sa.text("lower(username)")], unique=True)

    op.create_table(
        "user_session",
        # SHA-256 (hex) of the token in the cookie; the token itself is never stored.
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column(
            "user_id",
            sa.Integer,
            sa.ForeignKey("app_user.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("csrf_token", sa.String(64), nullable=False),
        sa.Column("created_at", TZ, nullable=False, server_default=sa.func.now()),
        sa.Column("expires_at", TZ, nullable=False),
        sa.Column("last_seen_at", TZ, nullable=False, server_default=sa.func.now()),
        sa.Column("address", sa.Text),
        sa.Column("user_agent", sa.Text),
    )
    op.create_index("user_session_user", "user_session", ["user_id"])

    op.create_table(
        "audit_log",
        sa.Column("id", sa.BigInteger, primary_key=True),
        sa.Column("at", TZ, nullable=False, server_default=sa.func.now()),
        # user, key, cli or anonymous
        sa.Column("actor_kind", sa.String(16), nullable=False),
        sa.Column("actor_id", sa.Integer),
        sa.Column("actor_label", sa.Text),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("target", sa.Text),
        sa.Column("detail", JSONB),
        sa.Column("address", sa.Text),
        # ok, failed (bad input, wrong password), denied (401/403), error (5xx); pending:
        # an API write recorded before it ran whose outcome could not be written after
        sa.Column("outcome", sa.String(16), nullable=False),
        # The HTTP status of an API write; NULL for what did not come over HTTP.
        sa.Column("status", sa.SmallInteger),
        sa.CheckConstraint(
            "actor_kind IN ('user', 'key', 'cli', 'anonymous')", name="audit_log_actor_kind"
        ),
        sa.CheckConstraint(
            "outcome IN ('ok', 'failed', 'denied', 'error', 'pending')", name="audit_log_outcome"
        ),
    )
    op.create_index("audit_log_at", "audit_log", ["at"])

    op.add_column("api_key", sa.Column("area", sa.String(64)))


def downgrade() -> None:
    op.drop_column("api_key", "area")
    op.drop_index("audit_log_at", table_name="audit_log")
    op.drop_table("audit_log")
    op.drop_index("user_session_user", table_name="user_session")
    op.drop_table("user_session")
    op.drop_index("app_user_username", table_name="app_user")
    op.drop_table("app_user")
