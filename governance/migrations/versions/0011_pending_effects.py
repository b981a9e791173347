"""Effects outside the database (vectors, files) recorded with their change, until applied.

Revision ID: 0011_pending_effects
Revises: 0010_refusal_counts
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011_pending_effects"
down_revision = "0010_refusal_counts"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "pending_effects",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=64), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pending_effects")),
    )


def downgrade() -> None:
    op.drop_table("pending_effects")
