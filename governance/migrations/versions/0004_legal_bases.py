"""Legal bases: the recorded case, offence, authorisation and quota every search requires.

Revision ID: 0004_legal_bases
Revises: 0003_gallery
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_legal_bases"
down_revision = "0003_gallery"
branch_labels = None
depends_on = None

_STATUSES = "('pending', 'approved', 'rejected', 'revoked', 'expired', 'lapsed')"


def _ts(name: str, *, nullable: bool = True) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _account_fk(column: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [column], ["accounts.id"], name=op.f(f"fk_legal_bases_{column}_accounts")
    )


def upgrade() -> None:
    op.create_table(
        "legal_bases",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("agency_id", sa.Uuid(), nullable=False),
        sa.Column("created_by", sa.Uuid(), nullable=False),
        _ts("created_at", nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("case_number", sa.String(64), nullable=False),
        sa.Column("offence_category", sa.String(64), nullable=False),
        sa.Column("legal_provision", sa.String(500), nullable=False),
        sa.Column("authorisation_kind", sa.String(16), nullable=False),
        sa.Column("authorisation_reference", sa.String(200), nullable=True),
        sa.Column("authorising_authority", sa.String(200), nullable=True),
        _ts("authorisation_issued_at", nullable=False),
        _ts("expires_at", nullable=False),
        sa.Column("justification", sa.Text(), nullable=False),
        sa.Column("max_searches", sa.Integer(), nullable=False),
        sa.Column("searches_used", sa.Integer(), nullable=False),
        _ts("decided_at"),
        sa.Column("decided_by", sa.Uuid(), nullable=True),
        sa.Column("decision_reason", sa.Text(), nullable=True),
        _ts("ratification_deadline"),
        sa.Column("ratification_outcome", sa.String(16), nullable=True),
        _ts("ratified_at"),
        sa.Column("ratified_by", sa.Uuid(), nullable=True),
        sa.Column("ratification_reason", sa.Text(), nullable=True),
        _ts("revoked_at"),
        sa.Column("revoked_by", sa.Uuid(), nullable=True),
        sa.Column("revocation_reason", sa.Text(), nullable=True),
        _ts("expired_at"),
        _ts("lapsed_at"),
        sa.Column("lapse_cause", sa.String(16), nullable=True),
        sa.Column("results_deleted", sa.Integer(), nullable=True),
        sa.CheckConstraint(f"status IN {_STATUSES}", name=op.f("ck_legal_bases_status")),
        sa.CheckConstraint(
            "authorisation_kind IN ('judicial', 'administrative', 'urgent')",
            name=op.f("ck_legal_bases_authorisation_kind"),
        ),
        sa.CheckConstraint(
            "max_searches > 0 AND searches_used >= 0 AND searches_used <= max_searches",
            name=op.f("ck_legal_bases_quota"),
        ),
        sa.CheckConstraint(
            "expires_at > authorisation_issued_at", name=op.f("ck_legal_bases_expires_after_issued")
        ),
        sa.CheckConstraint(
            "authorisation_kind = 'urgent' OR (authorisation_reference IS NOT NULL "
            "AND authorising_authority IS NOT NULL)",
            name=op.f("ck_legal_bases_authorisation_named"),
        ),
        sa.CheckConstraint(
            "(authorisation_kind = 'urgent') = (ratification_deadline IS NOT NULL)",
            name=op.f("ck_legal_bases_deadline_iff_urgent"),
        ),
        sa.CheckConstraint(
            "ratification_outcome IS NULL OR ratification_outcome IN ('granted', 'refused')",
            name=op.f("ck_legal_bases_ratification_outcome"),
        ),
        sa.CheckConstraint(
            "lapse_cause IS NULL OR lapse_cause IN ('deadline', 'refused')",
            name=op.f("ck_legal_bases_lapse_cause"),
        ),
        sa.CheckConstraint(
            "decided_by IS NULL OR decided_by <> created_by", name=op.f("ck_legal_bases_four_eyes")
        ),
        sa.CheckConstraint(
            "status NOT IN ('approved', 'rejected') OR decided_at IS NOT NULL",
            name=op.f("ck_legal_bases_decided"),
        ),
        sa.ForeignKeyConstraint(
            ["agency_id"], ["agencies.id"], name=op.f("fk_legal_bases_agency_id_agencies")
        ),
        _account_fk("created_by"),
        _account_fk("decided_by"),
        _account_fk("ratified_by"),
        _account_fk("revoked_by"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_legal_bases")),
    )
    op.create_index(op.f("ix_legal_bases_agency_id"), "legal_bases", ["agency_id"], unique=False)
    op.create_index(op.f("ix_legal_bases_status"), "legal_bases", ["status"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_legal_bases_status"), table_name="legal_bases")
    op.drop_index(op.f("ix_legal_bases_agency_id"), table_name="legal_bases")
    op.drop_table("legal_bases")
