"""Suspend and reinstate, written once for agencies and accounts alike.

A suspended agency or account keeps its rows; ``credentials.authenticate`` refuses its keys on
the next request. Each side adds its own rules before the change (an agency is suspended only by
a confirmed proposal, nobody changes their own account) and names itself in the entry.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from governance.core.errors import Conflict
from governance.core.work import Work
from governance.identity.models import StandingColumns
from governance.identity.principals import Principal, actor_of, reason_digest
from governance.identity.vocabulary import Standing
from ledger.entry import EntryType

__all__ = ["Entries", "change_standing"]


@dataclass(frozen=True, slots=True)
class Entries:
    """What suspending and reinstating one kind of object records, and how to name it."""

    what: str
    suspend: EntryType
    reinstate: EntryType


def change_standing(
    work: Work,
    row: StandingColumns,
    *,
    principal: Principal,
    standing: Standing,
    reason: str,
    entries: Entries,
    payload: Mapping[str, Any],
    proposal: UUID | None = None,
) -> None:
    """Set ``row``'s standing and record the suspension or reinstatement, with the reason's
    digest and the confirmed ``proposal`` that asked for it, if any.

    Raises Conflict (already in that standing), IntegrityError (a unique index refused the
    change: the caller says what that means).
    """
    if row.status == standing.value:
        raise Conflict(f"The {entries.what} is already {standing}.", code=f"already-{standing}")
    with work.session.begin_nested():
        row.status = standing.value
        row.status_reason = reason
        row.status_changed_at = work.now
    work.record(
        entries.suspend if standing is Standing.SUSPENDED else entries.reinstate,
        actor=actor_of(principal),
        payload={
            **payload,
            "reason_sha256": reason_digest(reason),
            **({"proposal": str(proposal)} if proposal else {}),
        },
    )
