"""Redesign plans in their own table instead of JSON in ``generation.note``.

A plan is a generation made by a redesign: what it redesigned, the target
number of grids, the mode, the workload weights and the metrics before and
after. Until now these lived as a JSON document in ``generation.note``; the
upgrade moves each such document into ``redesign_plan`` and leaves a short
sentence in the note; the downgrade writes the documents back.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02
"""

import json

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)
MODES = "('merge', 'reshape')"


def upgrade() -> None:
    op.create_table(
        "redesign_plan",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "generation_id",
            sa.Integer,
            sa.ForeignKey("generation.id", ondelete="CASCADE"),
            nullable=False,
            unique=True,
        ),
        # The label is kept as well as the id: a plan still says what it redesigned
        # after that generation is deleted (the id then becomes NULL).
        sa.Column(
            "source_generation_id",
            sa.Integer,
            sa.ForeignKey("generation.id", ondelete="SET NULL"),
        ),
        sa.Column("source_label", sa.String(100), nullable=False),
        sa.Column("target", sa.Integer, nullable=False),
        sa.Column("mode", sa.String(16), nullable=False),
        sa.Column("weights", JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
        sa.Column("metrics", JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
        sa.Column("baseline", JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
        sa.Column("created_at", TZ, nullable=False, server_default=sa.func.now()),
        sa.CheckConstraint(f"mode IN {MODES}", name="redesign_plan_mode"),
        sa.CheckConstraint("target >= 1", name="redesign_plan_target"),
    )
    _move_plans_out_of_notes(op.get_bind())


def _move_plans_out_of_notes(conn: sa.Connection) -> None:
    """Each note that is a JSON object with "redesign_of" becomes a row; others stay as they are.

    Parsed in Python: a free-text note that merely starts with "{" must not fail a cast.
    """
    notes = conn.execute(sa.text("SELECT id, created_at, note FROM generation WHERE note <> ''"))
    for gen_id, created_at, note in notes.all():
        try:
            doc = json.loads(note)
        except json.JSONDecodeError:
            continue
        if not isinstance(doc, dict) or "redesign_of" not in doc:
            continue
        conn.execute(
            sa.text(
                "INSERT INTO redesign_plan (generation_id, source_generation_id, source_label, "
                "target, mode, weights, metrics, baseline, created_at) "
                "VALUES (:gen, (SELECT id FROM generation WHERE label = :source), :source, "
                ":target, :mode, CAST(:weights AS jsonb), CAST(:metrics AS jsonb), "
                "CAST(:baseline AS jsonb), :created_at)"
            ),
            {
                "gen": gen_id,
                "source": str(doc["redesign_of"]),
                "target": int(doc.get("target") or 1),
                "mode": str(doc.get("mode") or "merge"),
                "weights": json.dumps(doc.get("weights") or {}),
                "metrics": json.dumps(doc.get("metrics") or {}),
                "baseline": json.dumps(doc.get("baseline") or {}),
                "created_at": created_at,
            },
        )
        conn.execute(
            sa.text("UPDATE generation SET note = :note WHERE id = :gen"),
            {
                "note": f"{doc.get('mode') or 'merge'} redesign of {doc['redesign_of']}",
                "gen": gen_id,
            },
        )


def downgrade() -> None:
    op.execute(
        """
        UPDATE generation g SET note = jsonb_build_object(
            'redesign_of', p.source_label, 'mode', p.mode, 'target', p.target,
            'weights', p.weights, 'metrics', p.metrics, 'baseline', p.baseline)::text
        FROM redesign_plan p WHERE p.generation_id = g.id
        """
    )
    op.drop_table("redesign_plan")
