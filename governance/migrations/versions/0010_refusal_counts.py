"""Refused searches counted per credential, window and reason, so that repeats are summarized.

Revision ID: 0010_refusal_counts
Revises: 0006_gallery_stats
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010_refusal_counts"
down_revision = "0008_erasure_requests"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "refusal_counts",
        sa.Column("credential_id", sa.Uuid(), nullable=False),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.String(length=64), nullable=False),
        sa.Column("account_id", sa.Uuid(), nullable=False),
        sa.Column("agency_id", sa.Uuid(), nullable=True),
        sa.Column("first_seq", sa.Integer(), nullable=True),
        sa.Column("repeats", sa.Integer(), nullable=False),
        sa.Column("summary_seq", sa.Integer(), nullable=True),
        sa.CheckConstraint("repeats >= 0", name=op.f("ck_refusal_counts_repeats")),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_refusal_counts_account_id_accounts")
        ),
        sa.ForeignKeyConstraint(
            ["agency_id"], ["agencies.id"], name=op.f("fk_refusal_counts_agency_id_agencies")
        ),
        sa.ForeignKeyConstraint(
            ["credential_id"],
            ["credentials.id"],
            name=op.f("fk_refusal_counts_credential_id_credentials"),
        ),
        sa.PrimaryKeyConstraint(
            "credential_id", "window_start", "reason", name=op.f("pk_refusal_counts")
        ),
    )
    op.create_index(
        op.f("ix_refusal_counts_window_start"), "refusal_counts", ["window_start"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_refusal_counts_window_start"), table_name="refusal_counts")
    op.drop_table("refusal_counts")
