"""Address gazetteer: building / door-plate addresses for geocoding address-only reports.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "address_point",
        sa.Column("id", sa.BigInteger, primary_key=True),
        sa.Column("address", sa.Text, nullable=False),
        sa.Column("lon", sa.Float, nullable=False),
        sa.Column("lat", sa.Float, nullable=False),
        sa.Column("micro_grid_code", sa.String(32)),
        sa.Column("source", sa.Text),
        sa.Column("geom", Geometry("POINT", srid=4326, spatial_index=False), nullable=False),
        sa.CheckConstraint(
            "lon BETWEEN -180 AND 180 AND lat BETWEEN -90 AND 90", name="address_point_range"
        ),
    )
    op.create_index("address_point_address", "address_point", ["address"])
    op.create_index("address_point_geom_gist", "address_point", ["geom"], postgresql_using="gist")


def downgrade() -> None:
    op.drop_table("address_point")
