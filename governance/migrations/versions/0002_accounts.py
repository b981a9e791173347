"""Agencies, accounts, registrations, account requests and API credentials.

Revision ID: 0002_accounts
Revises: 0001_ledger
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_accounts"
down_revision = "0001_ledger"
branch_labels = None
depends_on = None

_ROLES = "('admin', 'oversight', 'supervisor', 'investigator', 'curator')"
_DECISIONS = "('pending', 'approved', 'rejected', 'claimed')"
_KINDS = "('police', 'prosecution', 'border', 'other')"


def _ts(name: str, *, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _person() -> list[sa.Column[object]]:
    return [
        sa.Column("first_name", sa.String(100), nullable=False),
        sa.Column("last_name", sa.String(100), nullable=False),
        sa.Column("phone", sa.String(20), nullable=False),
        sa.Column("email", sa.String(254), nullable=False),
        sa.Column("job_title", sa.String(200), nullable=False),
    ]


def _fk(table: str, column: str, target: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [column], [f"{target}.id"], name=op.f(f"fk_{table}_{column}_{target}")
    )


def upgrade() -> None:
    op.create_table(
        "agencies",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("country", sa.String(2), nullable=False),
        sa.Column("jurisdiction", sa.String(200), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("status_reason", sa.Text(), nullable=True),
        _ts("created_at"),
        _ts("status_changed_at"),
        sa.CheckConstraint(f"kind IN {_KINDS}", name=op.f("ck_agencies_kind")),
        sa.CheckConstraint("status IN ('active', 'suspended')", name=op.f("ck_agencies_status")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_agencies")),
    )
    op.create_table(
        "accounts",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("agency_id", sa.Uuid(), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("status_reason", sa.Text(), nullable=True),
        sa.Column("name", sa.String(300), nullable=False),
        sa.Column("email", sa.String(254), nullable=False),
        sa.Column("phone", sa.String(20), nullable=True),
        sa.Column("job_title", sa.String(200), nullable=True),
        _ts("created_at"),
        _ts("status_changed_at"),
        sa.CheckConstraint(
            "(role IN ('supervisor', 'investigator') AND agency_id IS NOT NULL) OR "
            "(role IN ('admin', 'oversight', 'curator') AND agency_id IS NULL)",
            name=op.f("ck_accounts_agency_matches_role"),
        ),
        sa.CheckConstraint(f"role IN {_ROLES}", name=op.f("ck_accounts_role")),
        sa.CheckConstraint("status IN ('active', 'suspended')", name=op.f("ck_accounts_status")),
        _fk("accounts", "agency_id", "agencies"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_accounts")),
    )
    op.create_index(op.f("ix_accounts_agency_id"), "accounts", ["agency_id"])

    op.create_table(
        "registrations",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("agency_name", sa.String(200), nullable=False),
        sa.Column("agency_name_key", sa.String(200), nullable=False),
        sa.Column("agency_kind", sa.String(16), nullable=False),
        sa.Column("country", sa.String(2), nullable=False),
        sa.Column("jurisdiction", sa.String(200), nullable=False),
        *_person(),
        sa.Column("intended_use", sa.Text(), nullable=False),
        sa.Column("claim_hash", sa.LargeBinary(32), nullable=False),
        _ts("submitted_at"),
        _ts("decided_at", nullable=True),
        sa.Column("decided_by", sa.Uuid(), nullable=True),
        sa.Column("decision_reason", sa.Text(), nullable=True),
        sa.Column("agency_id", sa.Uuid(), nullable=True),
        sa.Column("account_id", sa.Uuid(), nullable=True),
        _ts("claimed_at", nullable=True),
        sa.CheckConstraint(
            "(status = 'pending') = (decided_at IS NULL)",
            name=op.f("ck_registrations_decided_iff_not_pending"),
        ),
        sa.CheckConstraint(f"agency_kind IN {_KINDS}", name=op.f("ck_registrations_agency_kind")),
        sa.CheckConstraint(f"status IN {_DECISIONS}", name=op.f("ck_registrations_status")),
        _fk("registrations", "account_id", "accounts"),
        _fk("registrations", "agency_id", "agencies"),
        _fk("registrations", "decided_by", "accounts"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_registrations")),
    )
    op.create_index(op.f("ix_registrations_status"), "registrations", ["status"])
    op.create_index(
        "uq_registrations_pending",
        "registrations",
        ["agency_name_key", "email"],
        unique=True,
        sqlite_where=sa.text("status = 'pending'"),
        postgresql_where=sa.text("status = 'pending'"),
    )

    op.create_table(
        "account_requests",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("agency_id", sa.Uuid(), nullable=True),
        sa.Column("requested_by", sa.Uuid(), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        *_person(),
        sa.Column("claim_hash", sa.LargeBinary(32), nullable=False),
        _ts("requested_at"),
        _ts("decided_at", nullable=True),
        sa.Column("decided_by", sa.Uuid(), nullable=True),
        sa.Column("decision_reason", sa.Text(), nullable=True),
        sa.Column("account_id", sa.Uuid(), nullable=True),
        _ts("claimed_at", nullable=True),
        sa.CheckConstraint(
            "(status = 'pending') = (decided_at IS NULL)",
            name=op.f("ck_account_requests_decided_iff_not_pending"),
        ),
        sa.CheckConstraint(f"role IN {_ROLES}", name=op.f("ck_account_requests_role")),
        sa.CheckConstraint(f"status IN {_DECISIONS}", name=op.f("ck_account_requests_status")),
        _fk("account_requests", "account_id", "accounts"),
        _fk("account_requests", "agency_id", "agencies"),
        _fk("account_requests", "decided_by", "accounts"),
        _fk("account_requests", "requested_by", "accounts"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_account_requests")),
    )
    op.create_index(op.f("ix_account_requests_agency_id"), "account_requests", ["agency_id"])
    op.create_index(op.f("ix_account_requests_status"), "account_requests", ["status"])

    op.create_table(
        "credentials",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("lookup_id", sa.String(16), nullable=False),
        sa.Column("account_id", sa.Uuid(), nullable=False),
        sa.Column("secret_hash", sa.LargeBinary(32), nullable=False),
        sa.Column("label", sa.String(100), nullable=True),
        _ts("created_at"),
        _ts("expires_at"),
        _ts("last_used_at", nullable=True),
        _ts("revoked_at", nullable=True),
        sa.Column("revoked_by", sa.Uuid(), nullable=True),
        sa.CheckConstraint(
            "expires_at > created_at", name=op.f("ck_credentials_expires_after_created")
        ),
        _fk("credentials", "account_id", "accounts"),
        _fk("credentials", "revoked_by", "accounts"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_credentials")),
        sa.UniqueConstraint("lookup_id", name=op.f("uq_credentials_lookup_id")),
    )
    op.create_index(op.f("ix_credentials_account_id"), "credentials", ["account_id"])


def downgrade() -> None:
    op.drop_table("credentials")
    op.drop_table("account_requests")
    op.drop_table("registrations")
    op.drop_table("accounts")
    op.drop_table("agencies")
