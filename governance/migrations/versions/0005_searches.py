"""Searches, their candidates and reviews.

Revision ID: 0005_searches
Revises: 0004_legal_bases
Create Date: 2026-11-27 18:48:56.069413
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_searches"
down_revision = "0004_legal_bases"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "searches",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("agency_id", sa.Uuid(), nullable=False),
        sa.Column("account_id", sa.Uuid(), nullable=False),
        sa.Column("legal_basis_id", sa.Uuid(), nullable=False),
        sa.Column("purpose", sa.Text(), nullable=False),
        sa.Column("probe_sha256", sa.String(length=64), nullable=False),
        sa.Column("x1", sa.Float(), nullable=False),
        sa.Column("y1", sa.Float(), nullable=False),
        sa.Column("x2", sa.Float(), nullable=False),
        sa.Column("y2", sa.Float(), nullable=False),
        sa.Column("detection_score", sa.Float(), nullable=False),
        sa.Column("size_px", sa.Float(), nullable=False),
        sa.Column("blur", sa.Float(), nullable=False),
        sa.Column("yaw", sa.Float(), nullable=False),
        sa.Column("pitch", sa.Float(), nullable=False),
        sa.Column("roll", sa.Float(), nullable=False),
        sa.Column("pack_name", sa.String(length=64), nullable=False),
        sa.Column("pack_version", sa.String(length=32), nullable=False),
        sa.Column("recognizer_sha256", sa.String(length=64), nullable=False),
        sa.Column("top_k", sa.Integer(), nullable=False),
        sa.Column("threshold", sa.Float(), nullable=False),
        sa.Column("gallery_collection", sa.String(length=64), nullable=False),
        sa.Column("gallery_size", sa.Integer(), nullable=False),
        sa.Column("ledger_seq", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("results_deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("results_deleted_reason", sa.String(length=32), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_searches_account_id_accounts")
        ),
        sa.ForeignKeyConstraint(
            ["agency_id"], ["agencies.id"], name=op.f("fk_searches_agency_id_agencies")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_searches")),
    )
    op.create_index(op.f("ix_searches_account_id"), "searches", ["account_id"], unique=False)
    op.create_index(op.f("ix_searches_agency_id"), "searches", ["agency_id"], unique=False)
    op.create_index(op.f("ix_searches_created_at"), "searches", ["created_at"], unique=False)
    op.create_index(
        op.f("ix_searches_legal_basis_id"), "searches", ["legal_basis_id"], unique=False
    )
    op.create_table(
        "search_candidates",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("search_id", sa.Uuid(), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.Column("face_id", sa.Uuid(), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("source_site", sa.String(length=253), nullable=False),
        sa.Column("views", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["search_id"],
            ["searches.id"],
            name=op.f("fk_search_candidates_search_id_searches"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_search_candidates")),
        sa.UniqueConstraint("search_id", "face_id", name=op.f("uq_search_candidates_search_id")),
    )
    op.create_index(
        op.f("ix_search_candidates_face_id"), "search_candidates", ["face_id"], unique=False
    )
    op.create_index(
        op.f("ix_search_candidates_search_id"), "search_candidates", ["search_id"], unique=False
    )
    op.create_table(
        "search_reviews",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("search_id", sa.Uuid(), nullable=False),
        sa.Column("face_id", sa.Uuid(), nullable=False),
        sa.Column("reviewer_id", sa.Uuid(), nullable=False),
        sa.Column("verdict", sa.String(length=16), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "verdict IN ('possible_match', 'no_match', 'inconclusive')",
            name=op.f("ck_search_reviews_verdict"),
        ),
        sa.ForeignKeyConstraint(
            ["reviewer_id"], ["accounts.id"], name=op.f("fk_search_reviews_reviewer_id_accounts")
        ),
        sa.ForeignKeyConstraint(
            ["search_id"],
            ["searches.id"],
            name=op.f("fk_search_reviews_search_id_searches"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_search_reviews")),
        sa.UniqueConstraint(
            "search_id", "face_id", "reviewer_id", name=op.f("uq_search_reviews_search_id")
        ),
    )
    op.create_index(
        op.f("ix_search_reviews_search_id"), "search_reviews", ["search_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_search_reviews_search_id"), table_name="search_reviews")
    op.drop_table("search_reviews")
    op.drop_index(op.f("ix_search_candidates_search_id"), table_name="search_candidates")
    op.drop_index(op.f("ix_search_candidates_face_id"), table_name="search_candidates")
    op.drop_table("search_candidates")
    op.drop_index(op.f("ix_searches_legal_basis_id"), table_name="searches")
    op.drop_index(op.f("ix_searches_created_at"), table_name="searches")
    op.drop_index(op.f("ix_searches_agency_id"), table_name="searches")
    op.drop_index(op.f("ix_searches_account_id"), table_name="searches")
    op.drop_table("searches")
