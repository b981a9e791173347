"""Refused searches on record without letting a flood of them grow the ledger without bound.

Per credential and window (``REFUSAL_WINDOW``, aligned to the epoch), the first refusal for each
reason is recorded in full (``search:refuse``), up to ``MAX_FULL_REFUSALS`` reasons; every other
refusal in the window is counted in ``refusal_counts``, in the same transaction as the request's
other writes, so a crash loses no count. Once the window has closed, one
``search:refuse_repeats`` entry per credential and window states the counts. So a credential
adds at most ``MAX_FULL_REFUSALS + 1`` refusal entries to the ledger per window, and the number
of refusals is always the ``search:refuse`` entries plus the counts in the summaries.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import groupby
from uuid import UUID

from sqlalchemy import func, select

from biometrics.errors import (
    BiometricsError,
)
from governance.core.errors import GovernanceError
from governance.core.recording import SYSTEM
from governance.core.work import Units, Work
from governance.identity.models import Credential
from governance.identity.principals import Principal, actor_of
from governance.search.models import RefusalCount
from ledger.entry import EntryType, format_ts

__all__ = [
    "MAX_FULL_REFUSALS",
    "REFUSAL_WINDOW",
    "record_refusal",
    "refuse",
    "summarize_refusals",
    "window_start",
]

REFUSAL_WINDOW = timedelta(minutes=1)
# Distinct reasons recorded in full per credential and window; a search can be refused for
# about fifteen reasons, and a flood needs no more than the first few to be seen in full.
MAX_FULL_REFUSALS = 8
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def refuse(
    units: Units,
    principal: Principal,
    error: GovernanceError | BiometricsError,
    *,
    legal_basis_id: UUID | None = None,
    probe_sha256: str | None = None,
) -> int | None:
    """Put a search refused with ``error`` on record, in a unit of work of its own.

    Returns what ``record_refusal`` returns. Raises LedgerUnavailable.
    """
    with units() as work:
        return record_refusal(
            work,
            principal=principal,
            reason=error.code,
            legal_basis_id=legal_basis_id,
            probe_sha256=probe_sha256,
        )


def window_start(now: datetime, window: timedelta = REFUSAL_WINDOW) -> datetime:
    """The start of the window ``now`` falls in (windows are aligned to the Unix epoch)."""
    return _EPOCH + ((now - _EPOCH) // window) * window


def record_refusal(
    work: Work,
    *,
    principal: Principal,
    reason: str,
    legal_basis_id: UUID | None,
    probe_sha256: str | None,
    window: timedelta = REFUSAL_WINDOW,
) -> int | None:
    """Record a refused search in full (``search:refuse``), or count it as a repeat of its window.

    Summarizes the credential's closed windows first. Returns the seq of the ``search:refuse``
    entry, or None when the refusal was only counted.
    Raises LedgerUnavailable when an entry cannot be appended (roll back: nothing is counted).
    """
    session = work.session
    credential_id = principal.credential_id
    # PostgreSQL: refusals of one credential queue here, so a count is never read stale.
    # SQLite: every unit of work already holds the write lock (BEGIN IMMEDIATE).
    session.execute(select(Credential.id).where(Credential.id == credential_id).with_for_update())
    summarize_refusals(work, window=window, credential_id=credential_id)
    start = window_start(work.now, window)
    key = {"credential_id": credential_id, "window_start": start, "reason": reason}
    row = session.get(RefusalCount, (credential_id, start, reason), populate_existing=True)
    if row is not None and row.summary_seq is None:
        row.repeats += 1
        session.flush()
        return None
    in_window = (RefusalCount.credential_id == credential_id, RefusalCount.window_start == start)
    full = session.execute(
        select(func.count())
        .select_from(RefusalCount)
        .where(*in_window, RefusalCount.first_seq.is_not(None))
    ).scalar_one()
    # A window already summarized (the clock went back into it: a worker behind, a corrected
    # clock) is never counted again: its refusals are recorded in full, and belong to that
    # summary, so no second one names the window.
    summarized = session.execute(
        select(RefusalCount.summary_seq).where(*in_window, RefusalCount.summary_seq.is_not(None))
    ).first()
    seq: int | None = None
    if full < MAX_FULL_REFUSALS or row is not None or summarized is not None:
        seq = work.record(
            EntryType.SEARCH_REFUSE,
            actor=actor_of(principal),
            payload={
                "agency_id": _text(principal.agency_id),
                "account_id": str(principal.account_id),
                "credential_id": str(principal.credential_id),
                "legal_basis_id": _text(legal_basis_id),
                "reason": reason,
                "probe_sha256": probe_sha256,
            },
        ).seq
    if row is not None:
        return seq
    session.add(
        RefusalCount(
            **key,
            account_id=principal.account_id,
            agency_id=principal.agency_id,
            first_seq=seq,
            repeats=0 if seq is not None else 1,
            summary_seq=None if summarized is None else summarized[0],
        )
    )
    session.flush()
    return seq


def summarize_refusals(
    work: Work,
    *,
    window: timedelta = REFUSAL_WINDOW,
    credential_id: UUID | None = None,
) -> int:
    """Append ``search:refuse_repeats`` for every closed window with counts not yet on record.

    One entry per credential and window, listing each reason's full entry (``first_seq``) and
    its repeats. ``credential_id`` restricts it to one credential. Returns the entries appended.
    Raises LedgerUnavailable.
    """
    query = (
        select(RefusalCount)
        .where(
            RefusalCount.summary_seq.is_(None),
            RefusalCount.repeats > 0,
            RefusalCount.window_start < window_start(work.now, window),
        )
        .order_by(RefusalCount.credential_id, RefusalCount.window_start, RefusalCount.reason)
    )
    if credential_id is not None:
        query = query.where(RefusalCount.credential_id == credential_id)
    session = work.session
    rows = session.scalars(query).all()
    appended = 0
    for (credential, start), group in groupby(
        rows, key=lambda r: (r.credential_id, r.window_start)
    ):
        counts = list(group)
        seq = work.record(
            EntryType.SEARCH_REFUSE_REPEATS,
            actor=SYSTEM,
            payload={
                "credential_id": str(credential),
                "account_id": str(counts[0].account_id),
                "agency_id": _text(counts[0].agency_id),
                "window": {"start": format_ts(start), "end": format_ts(start + window)},
                "refusals": [
                    {"reason": c.reason, "first_seq": c.first_seq, "repeats": c.repeats}
                    for c in counts
                ],
            },
        ).seq
        for c in counts:
            c.summary_seq = seq
        appended += 1
    session.flush()
    return appended


def _text(value: UUID | None) -> str | None:
    return None if value is None else str(value)
