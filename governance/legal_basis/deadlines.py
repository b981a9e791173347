"""Deadlines of legal bases, enforced without a scheduler: expiry, and the lapse of urgent ones.

``settle_row`` applies what is due to one basis and records it; ``sweep_batch`` does it for a
batch of due bases, and ``sweep_due`` for all of them, a batch per unit of work. Each transition
is a conditional UPDATE whose row count decides who records it, so two workers settling the
same basis at once write one ledger entry. A lapse runs the hooks
registered for it (``work.hooks.on_lapse``), which delete the stored results of the basis's
searches, and records how many they deleted.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, cast
from uuid import UUID

from sqlalchemy import ColumnElement, CursorResult, and_, bindparam, or_, select, update
from sqlalchemy.orm import Session

from governance.core.orm import table_of
from governance.core.recording import SYSTEM
from governance.core.work import Units, Work
from governance.legal_basis.models import LegalBasis
from governance.legal_basis.values import BasisStatus, LapseCause, Transition
from ledger.entry import Actor, EntryType, format_ts

__all__ = [
    "FINAL",
    "LIVE",
    "SWEEP_BATCH",
    "Deadlines",
    "Standing",
    "apply_lapse",
    "effective_status",
    "read_standing",
    "record_act",
    "rowcount",
    "settle_basis",
    "settle_row",
    "sweep_batch",
    "sweep_due",
]


LIVE = (BasisStatus.PENDING.value, BasisStatus.APPROVED.value)  # what expiry applies to
FINAL = (BasisStatus.REJECTED.value, BasisStatus.LAPSED.value)  # what nothing changes any more
SWEEP_BATCH = 500  # bases settled in one unit of work by a sweep


class Deadlines(Protocol):
    """What a basis's deadlines are decided on: a ``LegalBasis``, or its ``Standing``."""

    @property
    def status(self) -> str: ...

    @property
    def expires_at(self) -> datetime: ...

    @property
    def ratification_deadline(self) -> datetime | None: ...

    @property
    def ratification_outcome(self) -> str | None: ...


@dataclass(frozen=True, slots=True)
class Standing:
    """A basis as a search is decided on, read with one Core query (``read_standing``)."""

    id: UUID
    agency_id: UUID
    status: str
    expires_at: datetime
    ratification_deadline: datetime | None
    ratification_outcome: str | None
    searches_used: int
    max_searches: int


_BASES = table_of(LegalBasis)
# Built once: every search reads it, before any biometric work, and most often needs no more.
_STANDING = select(
    _BASES.c.id,
    _BASES.c.agency_id,
    _BASES.c.status,
    _BASES.c.expires_at,
    _BASES.c.ratification_deadline,
    _BASES.c.ratification_outcome,
    _BASES.c.searches_used,
    _BASES.c.max_searches,
).where(_BASES.c.id == bindparam("basis_id"))


def read_standing(session: Session, basis_id: UUID) -> Standing | None:
    """The basis's standing as stored (settled or not), or None when there is no such basis."""
    row = session.execute(_STANDING, {"basis_id": basis_id}).first()
    return None if row is None else Standing(**row._mapping)


def _lapse_due(row: Deadlines, now: datetime) -> bool:
    return (
        row.ratification_deadline is not None
        and row.ratification_outcome is None
        and row.status not in FINAL
        and row.ratification_deadline <= now
    )


def effective_status(row: Deadlines, now: datetime) -> BasisStatus:
    """The status ``row`` has at ``now`` once due deadlines are applied (settled or not)."""
    if _lapse_due(row, now):
        return BasisStatus.LAPSED
    if row.status in LIVE and row.expires_at <= now:
        return BasisStatus.EXPIRED
    return BasisStatus(row.status)


def rowcount(result: Any) -> int:
    """The rows an UPDATE matched (``Session.execute`` is typed as returning a plain Result)."""
    return int(cast(CursorResult[Any], result).rowcount)


def record_act(
    work: Work,
    row: LegalBasis,
    *,
    entry_type: EntryType,
    actor: Actor,
    payload: Mapping[str, Any],
) -> None:
    """Append the ledger entry of an act on ``row``: ids, kinds, categories and digests only.

    Raises ledger errors.
    """
    work.record(
        entry_type,
        actor=actor,
        payload={"legal_basis": str(row.id), "agency": str(row.agency_id), **payload},
    )


def _transition(
    work: Work, row: LegalBasis, *conditions: ColumnElement[bool], **values: Any
) -> bool:
    """Apply ``values`` to ``row`` if it still meets ``conditions``, with one conditional
    UPDATE; False when another unit of work changed it first. ``row`` is refreshed either way.
    """
    result = work.session.execute(
        update(LegalBasis)
        .where(LegalBasis.id == row.id, *conditions)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    work.session.refresh(row)
    return rowcount(result) == 1


def _expire(work: Work, row: LegalBasis) -> bool:
    if not _transition(
        work,
        row,
        LegalBasis.status.in_(LIVE),
        LegalBasis.expires_at <= work.now,
        status=BasisStatus.EXPIRED.value,
        expired_at=work.now,
    ):
        return False
    record_act(
        work,
        row,
        entry_type=EntryType.LEGAL_BASIS_EXPIRE,
        actor=SYSTEM,
        payload={"expires_at": format_ts(row.expires_at), "searches_used": row.searches_used},
    )
    return True


def apply_lapse(work: Work, row: LegalBasis, *, cause: LapseCause, actor: Actor) -> bool:
    """Lapse ``row`` unless another unit of work did, delete its results through the
    ``work.hooks.on_lapse`` hooks and record ``legal_basis:lapse`` with how many they deleted;
    False when it was already done.

    Raises ledger errors, and whatever a hook raises (the caller's transaction then rolls back).
    """
    conditions: list[ColumnElement[bool]] = [LegalBasis.status.not_in(FINAL)]
    if cause is LapseCause.DEADLINE:
        conditions += [
            LegalBasis.ratification_outcome.is_(None),
            LegalBasis.ratification_deadline <= work.now,
        ]
    if not _transition(
        work,
        row,
        *conditions,
        status=BasisStatus.LAPSED.value,
        lapsed_at=work.now,
        lapse_cause=cause.value,
    ):
        return False
    deleted = sum(hook(work, row.id) for hook in work.hooks.on_lapse)
    row.results_deleted = deleted
    work.session.flush()
    assert row.ratification_deadline is not None  # only urgent bases lapse
    record_act(
        work,
        row,
        entry_type=EntryType.LEGAL_BASIS_LAPSE,
        actor=actor,
        payload={
            "cause": cause.value,
            "ratification_deadline": format_ts(row.ratification_deadline),
            "searches_used": row.searches_used,
            "results_deleted": deleted,
        },
    )
    return True


def settle_row(work: Work, row: LegalBasis) -> Transition | None:
    """Apply to ``row`` the expiry or lapse due at ``work.now``; None when nothing was due.

    Raises ledger errors, and whatever a lapse hook raises.
    """
    target = effective_status(row, work.now)
    if target.value == row.status:
        return None
    if target is BasisStatus.EXPIRED:
        changed = _expire(work, row)
    else:
        changed = apply_lapse(work, row, cause=LapseCause.DEADLINE, actor=SYSTEM)
    if not changed:
        return None
    return Transition(row.id, row.agency_id, row.case_number, target, row.results_deleted)


def settle_basis(work: Work, *, basis_id: UUID) -> Transition | None:
    """Apply a due expiry or lapse to one basis and record it; None when nothing was due.

    Call it in a unit of work of its own before an act that may be refused (a search, an
    approval), so the transition is recorded even though the act's transaction rolls back.
    Reveals nothing, so it needs no principal. Raises ledger errors.
    """
    # A Core read first: most often nothing is due, and the ORM row is not needed.
    standing = read_standing(work.session, basis_id)
    if standing is None or effective_status(standing, work.now).value == standing.status:
        return None
    row = work.session.get(LegalBasis, basis_id)
    if row is None:
        return None
    return settle_row(work, row)


def sweep_batch(
    work: Work, *, agency_id: UUID | None = None, limit: int = SWEEP_BATCH
) -> list[Transition]:
    """Expire and lapse every due basis (of one agency, or all), oldest first, up to ``limit``.

    Raises ledger errors, and whatever a lapse hook raises.
    """
    now = work.now
    due = or_(
        and_(LegalBasis.status.in_(LIVE), LegalBasis.expires_at <= now),
        and_(
            LegalBasis.ratification_deadline <= now,
            LegalBasis.ratification_outcome.is_(None),
            LegalBasis.status.not_in(FINAL),
        ),
    )
    query = select(LegalBasis).where(due)
    if agency_id is not None:
        query = query.where(LegalBasis.agency_id == agency_id)
    rows = work.session.scalars(query.order_by(LegalBasis.created_at, LegalBasis.id).limit(limit))
    settled = [settle_row(work, row) for row in rows.all()]
    return [t for t in settled if t is not None]


def sweep_due(units: Units, *, batches: int | None = None) -> list[Transition]:
    """``sweep_batch`` again, each in a unit of work of its own, until none is due (or until
    ``batches`` have run); the transitions of all of them.

    Raises ledger errors, and whatever a lapse hook raises (earlier batches stay committed).
    """
    swept: list[Transition] = []
    done = 0
    while batches is None or done < batches:
        with units() as work:
            batch = sweep_batch(work)
        swept += batch
        done += 1
        if not batch:
            break
    return swept
