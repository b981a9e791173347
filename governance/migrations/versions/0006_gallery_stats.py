"""Gallery size per recognizer, kept with each enrolment and removal.

Revision ID: 0006_gallery_stats
Revises: 0005_searches
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_gallery_stats"
down_revision = "0005_searches"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "gallery_stats",
        sa.Column("recognizer_sha256", sa.String(length=64), nullable=False),
        sa.Column("faces", sa.Integer(), nullable=False),
        sa.CheckConstraint("faces >= 0", name=op.f("ck_gallery_stats_faces")),
        sa.PrimaryKeyConstraint("recognizer_sha256", name=op.f("pk_gallery_stats")),
    )
    op.execute(
        "INSERT INTO gallery_stats (recognizer_sha256, faces) "
        "SELECT recognizer_sha256, count(*) FROM gallery_faces GROUP BY recognizer_sha256"
    )


def downgrade() -> None:
    op.drop_table("gallery_stats")
