"""The audit ledger's append-only tables and the triggers that refuse UPDATE and DELETE.

Revision ID: 0001_ledger
Revises:
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from ledger.storage import LEDGER_TABLES, guard_ddl

revision = "0001_ledger"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ledger_entries",
        sa.Column("seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.Column("leaf_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("type", sa.String(length=40), nullable=False),
        sa.Column("ts", sa.String(length=27), nullable=False),
        sa.Column("key_id", sa.String(length=8), nullable=False),
        sa.CheckConstraint("seq >= 0", name="ledger_entries_seq_nonnegative"),
        sa.PrimaryKeyConstraint("seq"),
    )
    op.create_table(
        "ledger_nodes",
        sa.Column("level", sa.SmallInteger(), autoincrement=False, nullable=False),
        sa.Column("idx", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("hash", sa.LargeBinary(length=32), nullable=False),
        sa.PrimaryKeyConstraint("level", "idx"),
    )
    op.create_table(
        "ledger_checkpoints",
        sa.Column("size", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("root", sa.LargeBinary(length=32), nullable=False),
        sa.Column("key_id", sa.String(length=8), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("size"),
    )
    op.create_table(
        "ledger_keys",
        sa.Column("since_seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("key_id", sa.String(length=8), nullable=False),
        sa.Column("vkey", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("since_seq"),
        sa.UniqueConstraint("key_id"),
    )
    for statement in guard_ddl(op.get_bind().dialect.name):
        op.execute(statement)


def downgrade() -> None:
    # Dropping the tables drops their triggers; the ledger is never downgraded in production.
    for table in reversed(LEDGER_TABLES):
        op.drop_table(table)
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS ledger_refuse_change()")
