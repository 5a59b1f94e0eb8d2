"""Initial schema: generations, areas, staff, incidents with history, lineage, imports.

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry
from sqlalchemy.dialects.postgresql import JSONB

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def upgrade() -> None:
    op.execute("CREATE EXTENSION IF NOT EXISTS postgis")
    # btree_gist lets one exclusion constraint say "a code appears once per generation"
    # across the generation_low..generation_high ranges of MapIt-style areas.
    op.execute("CREATE EXTENSION IF NOT EXISTS btree_gist")

    op.create_table(
        "generation",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("label", sa.String(100), nullable=False, unique=True),
        sa.Column("created_at", TZ, nullable=False, server_default=sa.func.now()),
        sa.Column("activated_at", TZ),
        sa.Column("is_active", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("note", sa.Text),
    )
    # At most one active generation; activation switches it inside one transaction.
    op.create_index(
        "generation_one_active",
        "generation",
        ["is_active"],
        unique=True,
        postgresql_where=sa.text("is_active"),
    )

    op.create_table(
        "import_batch",
        sa.Column("id", sa.BigInteger, primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("source", sa.Text),
        sa.Column("file_sha256", sa.String(64)),
        sa.Column("level", sa.String(16)),
        sa.Column("generation_id", sa.Integer, sa.ForeignKey("generation.id")),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("started_at", TZ, nullable=False, server_default=sa.func.now()),
        sa.Column("finished_at", TZ),
        sa.Column("rows_in", sa.Integer, nullable=False, server_default="0"),
        sa.Column("rows_stored", sa.Integer, nullable=False, server_default="0"),
        sa.Column("rows_rejected", sa.Integer, nullable=False, server_default="0"),
        sa.Column("rows_unlocated", sa.Integer, nullable=False, server_default="0"),
        sa.Column("report", JSONB),
        sa.CheckConstraint("kind IN ('areas', 'incidents', 'staff')", name="import_batch_kind"),
        sa.CheckConstraint(
            "status IN ('running', 'loaded', 'rejected', 'failed')", name="import_batch_status"
        ),
    )

    op.create_table(
        "rejected_row",
        sa.Column("id", sa.BigInteger, primary_key=True),
        sa.Column(
            "batch_id",
            sa.BigInteger,
            sa.ForeignKey("import_batch.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("row_number", sa.Integer),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("raw", JSONB),
    )
    op.create_index("rejected_row_batch", "rejected_row", ["batch_id"])

    levels = ("district", "street", "community", "grid", "micro_grid")
    op.create_table(
        "area",
        sa.Column("id", sa.BigInteger, primary_key=True),
        sa.Column("level", sa.String(16), nullable=False),
        sa.Column("kind", sa.String(32)),
        sa.Column("code", sa.String(32), nullable=False),
        sa.Column("name", sa.Text),
        sa.Column("parent_code", sa.String(32)),
        sa.Column("generation_low", sa.Integer, sa.ForeignKey("generation.id"), nullable=False),
        sa.Column("generation_high", sa.Integer, sa.ForeignKey("generation.id"), nullable=False),
        sa.Column("population", sa.Integer),
        sa.Column("households", sa.Integer),
        sa.Column("responsible", sa.Text),
        sa.Column("area_m2", sa.Float),
        sa.Column("geom", Geometry("MULTIPOLYGON", srid=4326, spatial_index=False), nullable=False),
        sa.Column("batch_id", sa.BigInteger, sa.ForeignKey("import_batch.id")),
        sa.CheckConstraint(_in("level", levels), name="area_level"),
        sa.CheckConstraint("generation_low <= generation_high", name="area_generation_range"),
        sa.CheckConstraint("code ~ '^[0-9]+$'", name="area_code_digits"),
        sa.CheckConstraint(
            "parent_code IS NULL OR starts_with(code, parent_code)", name="area_code_in_parent"
        ),
        sa.CheckConstraint("NOT ST_IsEmpty(geom) AND ST_IsValid(geom)", name="area_geom_valid"),
        sa.CheckConstraint("population IS NULL OR population >= 0", name="area_population"),
        sa.CheckConstraint("households IS NULL OR households >= 0", name="area_households"),
    )
    op.execute(
        "ALTER TABLE area ADD CONSTRAINT area_code_unique_per_generation EXCLUDE USING gist "
        "(code WITH =, int4range(generation_low, generation_high, '[]') WITH &&)"
    )
    op.create_index("area_geom_gist", "area", ["geom"], postgresql_using="gist")
    op.create_index("area_level_generation", "area", ["level", "generation_low", "generation_high"])
    op.create_index("area_parent", "area", ["parent_code"])

    op.create_table(
        "staff",
        sa.Column("id", sa.BigInteger, primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("role", sa.String(32), nullable=False),
        sa.Column("area_code", sa.String(32), nullable=False),
        sa.Column("generation_id", sa.Integer, sa.ForeignKey("generation.id"), nullable=False),
        sa.Column("phone", sa.String(32)),
        sa.CheckConstraint(
            _in(
                "role", ("grid_leader", "grid_worker", "micro_grid_worker", "dedicated_grid_leader")
            ),
            name="staff_role",
        ),
    )
    op.create_index("staff_area", "staff", ["generation_id", "area_code"])

    op.create_table(
        "incident",
        sa.Column("id", sa.BigInteger, primary_key=True),
        sa.Column("source", sa.String(64), nullable=False),
        sa.Column("external_id", sa.String(128), nullable=False),
        sa.Column("category", sa.String(16)),
        sa.Column("description", sa.Text),
        sa.Column("address", sa.Text),
        sa.Column("reported_at", TZ),
        sa.Column("status", sa.String(16), nullable=False, server_default="reported"),
        sa.Column("handling_level", sa.String(16)),
        sa.Column("registered_at", TZ),
        sa.Column("dispatched_at", TZ),
        sa.Column("handled_at", TZ),
        sa.Column("verified_at", TZ),
        sa.Column("closed_at", TZ),
        sa.Column("raw_lon", sa.Float),
        sa.Column("raw_lat", sa.Float),
        sa.Column("raw_crs", sa.String(16)),
        sa.Column("location", Geometry("POINT", srid=4326, spatial_index=False)),
        sa.Column("location_status", sa.String(16), nullable=False),
        sa.Column("unlocated_reason", sa.Text),
        sa.Column("batch_id", sa.BigInteger, sa.ForeignKey("import_batch.id")),
        sa.Column("created_at", TZ, nullable=False, server_default=sa.func.now()),
        # Re-importing the same file is idempotent: a source never repeats an id.
        sa.UniqueConstraint("source", "external_id", name="incident_source_external_id"),
        sa.CheckConstraint(
            _in(
                "status", ("reported", "registered", "dispatched", "handled", "verified", "closed")
            ),
            name="incident_status",
        ),
        sa.CheckConstraint(
            "handling_level IS NULL OR " + _in("handling_level", ("grid", "community", "street")),
            name="incident_handling_level",
        ),
        sa.CheckConstraint(
            _in("location_status", ("located", "geocoded", "unlocated")),
            name="incident_location_status",
        ),
        sa.CheckConstraint(
            "(location IS NULL) = (location_status = 'unlocated')", name="incident_location_known"
        ),
    )
    op.create_index("incident_location_gist", "incident", ["location"], postgresql_using="gist")
    op.create_index("incident_reported_at", "incident", ["reported_at"])
    op.create_index("incident_category", "incident", ["category"])

    # One row per incident and generation. The current assignment is the row of the
    # active generation; rows of earlier generations are the history a redesign must
    # never rewrite. A narrow table of its own makes bulk (re)assignment a COPY of
    # new rows instead of an UPDATE of every wide incident row and its five indexes
    # (measured: ~15x faster for 1M incidents).
    op.create_table(
        "incident_assignment",
        # No foreign keys on purpose: their per-row checks doubled the time of a bulk
        # COPY of a million assignments. Rows are written only by app/assignment.py and
        # app/incidents.py for ids they just read or inserted; the trigger below keeps
        # the cascade on incident deletion.
        sa.Column("generation_id", sa.Integer, nullable=False),
        sa.Column("incident_id", sa.BigInteger, nullable=False),
        sa.Column("street_code", sa.String(32)),
        sa.Column("community_code", sa.String(32)),
        sa.Column("grid_code", sa.String(32)),
        sa.Column("micro_grid_code", sa.String(32)),
        sa.Column("assign_status", sa.String(16), nullable=False),
        sa.Column("distance_m", sa.Float),
        sa.Column("assigned_at", TZ, nullable=False, server_default=sa.func.now()),
        sa.PrimaryKeyConstraint("generation_id", "incident_id", name="incident_assignment_pkey"),
        sa.CheckConstraint(
            _in("assign_status", ("inside", "boundary", "snapped", "outside")),
            name="incident_assignment_status",
        ),
        sa.CheckConstraint(
            "(grid_code IS NULL) = (assign_status = 'outside')",
            name="incident_assignment_outside_has_no_grid",
        ),
    )
    op.create_index(
        "incident_assignment_grid", "incident_assignment", ["generation_id", "grid_code"]
    )
    op.create_index("incident_assignment_incident", "incident_assignment", ["incident_id"])
    op.execute(
        "CREATE FUNCTION incident_assignment_cascade() RETURNS trigger LANGUAGE plpgsql AS $$ "
        "BEGIN DELETE FROM incident_assignment WHERE incident_id = OLD.id; RETURN OLD; END $$"
    )
    op.execute(
        "CREATE TRIGGER incident_deleted AFTER DELETE ON incident FOR EACH ROW "
        "EXECUTE FUNCTION incident_assignment_cascade()"
    )
    # The incident as docs/architecture.md ("Data model") describes it: with its assignment
    # under the active generation (NULLs when it has none yet, e.g. unlocated).
    op.execute(
        "CREATE VIEW incident_current AS SELECT i.*, a.street_code, a.community_code, "
        "a.grid_code, a.micro_grid_code, a.generation_id, a.assign_status, a.distance_m, "
        "a.assigned_at FROM incident i LEFT JOIN incident_assignment a "
        "ON a.incident_id = i.id AND a.generation_id = "
        "(SELECT g.id FROM generation g WHERE g.is_active)"
    )

    op.create_table(
        "lineage",
        sa.Column("id", sa.BigInteger, primary_key=True),
        sa.Column("from_generation", sa.Integer, sa.ForeignKey("generation.id"), nullable=False),
        sa.Column("to_generation", sa.Integer, sa.ForeignKey("generation.id"), nullable=False),
        sa.Column("old_code", sa.String(32), nullable=False),
        sa.Column("new_code", sa.String(32), nullable=False),
        sa.Column("area_share", sa.Float, nullable=False),
        sa.Column("household_share", sa.Float),
        sa.CheckConstraint("area_share >= 0 AND area_share <= 1.000001", name="lineage_area_share"),
        sa.UniqueConstraint(
            "from_generation", "to_generation", "old_code", "new_code", name="lineage_pair"
        ),
    )


def downgrade() -> None:
    op.execute("DROP VIEW incident_current")
    op.execute("DROP TRIGGER incident_deleted ON incident")
    op.execute("DROP FUNCTION incident_assignment_cascade()")
    for table in (
        "lineage",
        "incident_assignment",
        "incident",
        "staff",
        "area",
        "rejected_row",
        "import_batch",
        "generation",
    ):
        op.drop_table(table)
