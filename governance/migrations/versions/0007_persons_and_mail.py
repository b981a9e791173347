"""Persons behind accounts, expiring claims, two-administrator proposals, the mail outbox.

Revision ID: 0007
Revises: 0006_gallery_stats
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_persons_and_mail"
down_revision = "0006_gallery_stats"
branch_labels = None
depends_on = None


def _ts(name: str, *, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _backfill_persons() -> None:
    # The same normalisation as governance.identity.persons.person_key: the stored (already
    # validated) address, case-folded. Two active accounts of one
    # person in one scope stop the upgrade.
    bind = op.get_bind()
    accounts = sa.table(
        "accounts",
        sa.column("id", sa.Uuid()),
        sa.column("agency_id", sa.Uuid()),
        sa.column("email", sa.String()),
        sa.column("status", sa.String()),
        sa.column("person_key", sa.String()),
        sa.column("scope_key", sa.String()),
    )
    seen: dict[tuple[str, str], str] = {}
    for row in bind.execute(sa.select(accounts)).all():
        person = str(row.email).casefold()
        scope = str(row.agency_id) if row.agency_id is not None else "platform"
        if row.status == "active":
            twin = seen.setdefault((scope, person), str(row.id))
            if twin != str(row.id):
                raise RuntimeError(
                    f"accounts {twin} and {row.id} are two active accounts of one person in "
                    "one agency: suspend one, then run the upgrade again"
                )
        bind.execute(
            accounts.update()
            .where(accounts.c.id == row.id)
            .values(person_key=person, scope_key=scope)
        )


def upgrade() -> None:
    op.add_column(
        "accounts", sa.Column("person_key", sa.String(254), nullable=False, server_default="")
    )
    op.add_column(
        "accounts", sa.Column("scope_key", sa.String(36), nullable=False, server_default="")
    )
    _backfill_persons()
    if op.get_bind().dialect.name == "postgresql":
        op.alter_column("accounts", "person_key", server_default=None)
        op.alter_column("accounts", "scope_key", server_default=None)
    op.create_index(
        "uq_accounts_active_person",
        "accounts",
        ["scope_key", "person_key"],
        unique=True,
        sqlite_where=sa.text("status = 'active'"),
        postgresql_where=sa.text("status = 'active'"),
    )
    for table in ("registrations", "account_requests"):
        op.add_column(table, sa.Column("claim_issued_to", sa.String(254), nullable=True))
        op.add_column(table, _ts("claim_expires_at", nullable=True))
    op.create_table(
        "proposals",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("target_id", sa.Uuid(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("proposed_by", sa.Uuid(), nullable=False),
        _ts("proposed_at"),
        sa.Column("decided_by", sa.Uuid(), nullable=True),
        _ts("decided_at", nullable=True),
        sa.Column("decision_reason", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "action IN ('account:suspend', 'credential:revoke', 'agency:suspend')",
            name=op.f("ck_proposals_action"),
        ),
        sa.CheckConstraint(
            "status IN ('pending', 'confirmed', 'rejected')", name=op.f("ck_proposals_status")
        ),
        sa.CheckConstraint(
            "(status = 'pending') = (decided_at IS NULL)",
            name=op.f("ck_proposals_decided_iff_not_pending"),
        ),
        sa.CheckConstraint(
            "decided_by IS NULL OR decided_by <> proposed_by", name=op.f("ck_proposals_four_eyes")
        ),
        sa.ForeignKeyConstraint(
            ["proposed_by"], ["accounts.id"], name=op.f("fk_proposals_proposed_by_accounts")
        ),
        sa.ForeignKeyConstraint(
            ["decided_by"], ["accounts.id"], name=op.f("fk_proposals_decided_by_accounts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_proposals")),
    )
    op.create_index(op.f("ix_proposals_status"), "proposals", ["status"])
    op.create_index(
        "uq_proposals_pending",
        "proposals",
        ["action", "target_id"],
        unique=True,
        sqlite_where=sa.text("status = 'pending'"),
        postgresql_where=sa.text("status = 'pending'"),
    )
    op.create_table(
        "mail_outbox",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("recipient", sa.String(254), nullable=False),
        sa.Column("subject", sa.String(200), nullable=False),
        sa.Column("body", sa.Text(), nullable=True),
        _ts("created_at"),
        _ts("sent_at", nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        _ts("last_attempt_at", nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mail_outbox")),
    )
    op.create_index(op.f("ix_mail_outbox_sent_at"), "mail_outbox", ["sent_at"])


def downgrade() -> None:
    op.drop_table("mail_outbox")
    op.drop_table("proposals")
    for table in ("registrations", "account_requests"):
        op.drop_column(table, "claim_expires_at")
        op.drop_column(table, "claim_issued_to")
    op.drop_index("uq_accounts_active_person", table_name="accounts")
    op.drop_column("accounts", "scope_key")
    op.drop_column("accounts", "person_key")
