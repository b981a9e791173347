"""Probe erasures as requests: previewed under a data-subject request, confirmed by a second admin.

Revision ID: 0008
Revises: 0006_gallery_stats
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008_erasure_requests"
down_revision = "0007_persons_and_mail"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "erasure_requests",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("request_reference", sa.String(length=128), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("probe_sha256", sa.String(length=64), nullable=False),
        sa.Column("threshold", sa.Float(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("requested_by", sa.Uuid(), nullable=False),
        sa.Column("confirmer_id", sa.Uuid(), nullable=True),
        sa.Column("erasure_id", sa.Uuid(), nullable=True),
        sa.Column("ledger_seq", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('pending', 'confirmed')", name=op.f("ck_erasure_requests_status")
        ),
        sa.CheckConstraint(
            "confirmer_id IS NULL OR confirmer_id <> requested_by",
            name=op.f("ck_erasure_requests_four_eyes"),
        ),
        sa.ForeignKeyConstraint(
            ["requested_by"],
            ["accounts.id"],
            name=op.f("fk_erasure_requests_requested_by_accounts"),
        ),
        sa.ForeignKeyConstraint(
            ["confirmer_id"],
            ["accounts.id"],
            name=op.f("fk_erasure_requests_confirmer_id_accounts"),
        ),
        sa.ForeignKeyConstraint(
            ["erasure_id"],
            ["erasures.id"],
            name=op.f("fk_erasure_requests_erasure_id_erasures"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_erasure_requests")),
    )
    op.create_table(
        "erasure_request_faces",
        sa.Column("request_id", sa.Uuid(), nullable=False),
        sa.Column("face_id", sa.Uuid(), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["erasure_requests.id"],
            name=op.f("fk_erasure_request_faces_request_id_erasure_requests"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("request_id", "face_id", name=op.f("pk_erasure_request_faces")),
    )


def downgrade() -> None:
    op.drop_table("erasure_request_faces")
    op.drop_table("erasure_requests")
