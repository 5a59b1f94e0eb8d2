"""The incident taxonomy in the database, versioned per deployment.

Every city's 12345 hotline sorts reports its own way, so the taxonomy is no
longer only ``data/taxonomy.csv`` in the repository: ``taxonomy_version``
holds each imported taxonomy (the newest is the one in use) and
``taxonomy_item`` its items. The upgrade seeds version 1 from the
repository's file and records it on the incidents already classified;
``incident.taxonomy_version`` keeps the version a report was classified under.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

from gis.taxonomy import TAXONOMY_COLUMNS, load_taxonomy

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "taxonomy_version",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("items", sa.Integer, nullable=False),
        sa.Column("created_at", TZ, nullable=False, server_default=sa.func.now()),
    )
    op.create_table(
        "taxonomy_item",
        sa.Column(
            "version_id",
            sa.Integer,
            sa.ForeignKey("taxonomy_version.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("code", sa.String(16), primary_key=True),
        sa.Column("major_code", sa.String(16), nullable=False),
        sa.Column("major_name_zh", sa.Text, nullable=False),
        sa.Column("major_name_en", sa.Text, nullable=False),
        sa.Column("name_zh", sa.Text, nullable=False),
        sa.Column("name_en", sa.Text, nullable=False),
        sa.Column("deadline_hours", sa.Integer, nullable=False),
        sa.CheckConstraint("deadline_hours > 0", name="taxonomy_item_deadline"),
        sa.CheckConstraint("code LIKE major_code || '%'", name="taxonomy_item_code_prefix"),
    )
    op.add_column(
        "incident",
        sa.Column("taxonomy_version", sa.Integer, sa.ForeignKey("taxonomy_version.id")),
    )
    _seed(op.get_bind())


def _seed(conn: sa.Connection) -> None:
    items = load_taxonomy()
    version = conn.execute(
        sa.text(
            "INSERT INTO taxonomy_version (source, items) VALUES ('data/taxonomy.csv', :n) "
            "RETURNING id"
        ),
        {"n": len(items)},
    ).scalar_one()
    columns = ", ".join(TAXONOMY_COLUMNS)
    values = ", ".join(f":{c}" for c in TAXONOMY_COLUMNS)
    conn.execute(
        sa.text(f"INSERT INTO taxonomy_item (version_id, {columns}) VALUES (:version, {values})"),
        [
            {"version": version, **row, "deadline_hours": int(row["deadline_hours"])}
            for row in items.to_dict("records")
        ],
    )
    # Reports classified before this migration were classified under the repository's file.
    conn.execute(
        sa.text("UPDATE incident SET taxonomy_version = :v WHERE category IS NOT NULL"),
        {"v": version},
    )


def downgrade() -> None:
    op.drop_column("incident", "taxonomy_version")
    op.drop_table("taxonomy_item")
    op.drop_table("taxonomy_version")
