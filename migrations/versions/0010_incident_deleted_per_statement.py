"""``incident_deleted`` fires once per statement: bulk deletes are not row by row.

``incident_assignment`` has no foreign key to ``incident`` (bulk COPY speed, see
0001); a trigger deletes an incident's assignments with it. As a row-level
trigger it ran one ``DELETE … WHERE incident_id = $1`` — an index probe — per
deleted incident: replacing a million incidents meant a million of them. The
statement-level trigger sees every deleted incident at once in a transition
table (``REFERENCING OLD TABLE``) and deletes their assignments in one join.
Same behaviour otherwise: after any ``DELETE FROM incident``, within the same
statement, no assignment of a deleted incident is left.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02
"""

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("DROP TRIGGER incident_deleted ON incident")
    op.execute("DROP FUNCTION incident_assignment_cascade()")
    op.execute(
        "CREATE FUNCTION incident_assignment_cascade() RETURNS trigger LANGUAGE plpgsql AS $$ "
        "BEGIN DELETE FROM incident_assignment a USING deleted_incident d "
        "WHERE a.incident_id = d.id; RETURN NULL; END $$"
    )
    op.execute(
        "CREATE TRIGGER incident_deleted AFTER DELETE ON incident "
        "REFERENCING OLD TABLE AS deleted_incident FOR EACH STATEMENT "
        "EXECUTE FUNCTION incident_assignment_cascade()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER incident_deleted ON incident")
    op.execute("DROP FUNCTION incident_assignment_cascade()")
    op.execute(
        "CREATE FUNCTION incident_assignment_cascade() RETURNS trigger LANGUAGE plpgsql AS $$ "
        "BEGIN DELETE FROM incident_assignment WHERE incident_id = OLD.id; RETURN OLD; END $$"
    )
    op.execute(
        "CREATE TRIGGER incident_deleted AFTER DELETE ON incident FOR EACH ROW "
        "EXECUTE FUNCTION incident_assignment_cascade()"
    )
