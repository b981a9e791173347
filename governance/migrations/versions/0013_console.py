"""The console: sessions as credentials of their own kind, passkeys and WebAuthn ceremonies.

Revision ID: 0013_console
Revises: 0012_cosignatures
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013_console"
down_revision = "0012_cosignatures"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # One statement both databases accept: SQLite adds a CHECK only with the column.
    op.execute(
        "ALTER TABLE credentials ADD COLUMN kind VARCHAR(16) DEFAULT 'api_key' NOT NULL "
        "CONSTRAINT ck_credentials_kind CHECK (kind IN ('api_key', 'session'))"
    )
    op.create_table(
        "passkeys",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("account_id", sa.Uuid(), nullable=False),
        sa.Column("credential_id", sa.LargeBinary(length=1023), nullable=False),
        sa.Column("public_key", sa.LargeBinary(length=1023), nullable=False),
        sa.Column("sign_count", sa.BigInteger(), nullable=False),
        sa.Column("label", sa.String(length=100), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_passkeys_account_id_accounts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_passkeys")),
        sa.UniqueConstraint("credential_id", name=op.f("uq_passkeys_credential_id")),
    )
    op.create_index(op.f("ix_passkeys_account_id"), "passkeys", ["account_id"])
    # A session's passkey (SQLite adds a foreign key only with the column, as here).
    op.execute(
        "ALTER TABLE credentials ADD COLUMN passkey_id CHAR(32) "
        "CONSTRAINT fk_credentials_passkey_id_passkeys REFERENCES passkeys (id)"
        if op.get_bind().dialect.name == "sqlite"
        else "ALTER TABLE credentials ADD COLUMN passkey_id UUID "
        "CONSTRAINT fk_credentials_passkey_id_passkeys REFERENCES passkeys (id)"
    )
    op.create_table(
        "webauthn_ceremonies",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("purpose", sa.String(length=16), nullable=False),
        sa.Column("challenge", sa.LargeBinary(length=64), nullable=False),
        sa.Column("account_id", sa.Uuid(), nullable=True),
        sa.Column("claim_kind", sa.String(length=32), nullable=True),
        sa.Column("claim_id", sa.Uuid(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "purpose IN ('sign_in', 'enrol')", name=op.f("ck_webauthn_ceremonies_purpose")
        ),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_webauthn_ceremonies_account_id_accounts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webauthn_ceremonies")),
    )
    op.create_index(
        op.f("ix_webauthn_ceremonies_expires_at"), "webauthn_ceremonies", ["expires_at"]
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_webauthn_ceremonies_expires_at"), table_name="webauthn_ceremonies")
    op.drop_table("webauthn_ceremonies")
    op.drop_index(op.f("ix_passkeys_account_id"), table_name="passkeys")
    op.drop_table("passkeys")
    with op.batch_alter_table("credentials") as batch:
        batch.drop_column("passkey_id")
        batch.drop_column("kind")
