"""Witnesses' cosignatures of the log's checkpoints, and the checkpoint published as the latest.

Each cosignature a witness returned (``ledger.witness_client``) is kept as its signature line,
verified before it is stored. The checkpoint a verifier is served as the latest is the newest
one that carries cosignatures from at least ``quorum`` of the configured witnesses, with those
lines appended to the log's note; a newer one waits until its cosignatures arrive.
A cosignature proves itself (anyone can verify it with the witness's key), so the table is an
ordinary one: losing a row loses evidence the witness also holds, and forges nothing.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from ledger.storage import checkpoints, cosignatures

__all__ = ["CosignedCheckpoint", "add_cosignature", "latest_cosigned"]


@dataclass(frozen=True, slots=True)
class CosignedCheckpoint:
    """A checkpoint's note with the cosignature lines appended, and who cosigned it."""

    size: int
    note: str
    witnesses: tuple[str, ...]


def add_cosignature(
    session: Session, *, size: int, witness: str, key_id: str, timestamp: int, line: str
) -> None:
    """Keep one verified cosignature line of the checkpoint of ``size`` (a second one by the
    same witness for that size is ignored)."""
    dialect = session.get_bind().dialect.name
    build = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = build(cosignatures).values(
        size=size, witness=witness, key_id=key_id, timestamp=timestamp, line=line
    )
    session.execute(statement.on_conflict_do_nothing())


def latest_cosigned(
    session: Session, witnesses: Collection[str], quorum: int
) -> CosignedCheckpoint | None:
    """The newest checkpoint cosigned by at least ``quorum`` of ``witnesses`` (by name)."""
    if quorum < 1 or not witnesses:
        return None
    counted = (
        select(cosignatures.c.size)
        .where(cosignatures.c.witness.in_(sorted(witnesses)))
        .group_by(cosignatures.c.size)
        .having(func.count() >= quorum)
        .order_by(cosignatures.c.size.desc())
        .limit(1)
    )
    size = session.scalar(counted)
    if size is None:
        return None
    note = session.scalar(select(checkpoints.c.note).where(checkpoints.c.size == size))
    if note is None:
        return None
    rows = session.execute(
        select(cosignatures.c.witness, cosignatures.c.line)
        .where(cosignatures.c.size == size, cosignatures.c.witness.in_(sorted(witnesses)))
        .order_by(cosignatures.c.witness)
    ).all()
    return CosignedCheckpoint(
        size=int(size),
        note=str(note) + "".join(str(line) for _, line in rows),
        witnesses=tuple(str(name) for name, _ in rows),
    )
