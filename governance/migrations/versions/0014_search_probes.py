"""The probe face of each search, kept for the reviewers as long as its results.

Revision ID: 0014_search_probes
Revises: 0013_console
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014_search_probes"
down_revision = "0013_console"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "search_probes",
        sa.Column("search_id", sa.Uuid(), nullable=False),
        sa.Column("image", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["search_id"],
            ["searches.id"],
            name=op.f("fk_search_probes_search_id_searches"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("search_id", name=op.f("pk_search_probes")),
    )


def downgrade() -> None:
    op.drop_table("search_probes")
