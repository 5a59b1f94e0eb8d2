"""Thematic layers (多格合一): departments' zones kept beside the grid hierarchy.

A ``thematic_layer`` is one theme (police, market, party, mediation or another
lower-case name) attached to one generation of the hierarchy; its units are in
``thematic_unit`` with the department's own codes. Deleting a generation or a
layer deletes its units.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02
"""

import re

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)
BATCH_KIND = "layers"


def _batch_kinds(conn: sa.Connection) -> list[str]:
    """The kinds ``import_batch_kind`` allows now (later migrations may have added some)."""
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
        "thematic_layer",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "generation_id",
            sa.Integer,
            sa.ForeignKey("generation.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("theme", sa.String(32), nullable=False),
        sa.Column("source", sa.Text),
        sa.Column("batch_id", sa.BigInteger, sa.ForeignKey("import_batch.id", ondelete="SET NULL")),
        sa.Column("created_at", TZ, nullable=False, server_default=sa.func.now()),
        sa.UniqueConstraint("generation_id", "theme", name="thematic_layer_theme"),
        # The theme names an OGC collection (layer_{theme}) and a URL segment.
        sa.CheckConstraint("theme ~ '^[a-z][a-z0-9_]{0,31}$'", name="thematic_layer_theme_name"),
    )
    op.create_table(
        "thematic_unit",
        sa.Column("id", sa.BigInteger, primary_key=True),
        sa.Column(
            "layer_id",
            sa.Integer,
            sa.ForeignKey("thematic_layer.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("code", sa.String(64), nullable=False),
        sa.Column("name", sa.Text),
        sa.Column("area_m2", sa.Float),
        sa.Column(
            "geom",
            Geometry("MULTIPOLYGON", srid=4326, spatial_index=False),
            nullable=False,
        ),
        sa.UniqueConstraint("layer_id", "code", name="thematic_unit_code"),
    )
    op.create_index("thematic_unit_geom", "thematic_unit", ["geom"], postgresql_using="gist")
    kinds = _batch_kinds(op.get_bind())
    if BATCH_KIND not in kinds:
        _allow_batch_kinds([*kinds, BATCH_KIND])


def downgrade() -> None:
    # The batches of theme imports go with the themes (their rejected rows cascade).
    op.execute(f"DELETE FROM import_batch WHERE kind = '{BATCH_KIND}'")
    _allow_batch_kinds([k for k in _batch_kinds(op.get_bind()) if k != BATCH_KIND])
    op.drop_index("thematic_unit_geom", table_name="thematic_unit")
    op.drop_table("thematic_unit")
    op.drop_table("thematic_layer")
