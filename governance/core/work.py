"""The unit of work: one transaction, the request's one ``now``, the signing keys and ``record``.

A service takes a ``Work`` and does all its reading, writing and recording through it, so a
governed change and its ledger entry commit together or not at all. A flow that needs several
transactions (settle a basis, then search the index outside any transaction, then record) is
handed ``Units``, which opens units of work that share one ``now`` and one set of hooks.

``Hooks`` carry the calls one domain makes into another without importing it, registered once
when the application is built: a lapsed legal basis asks the search domain to delete its
searches' results, and the legal-basis domain never imports the search domain.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy.orm import Session, sessionmaker

from governance.core import effects, mail
from governance.core.db import unit_of_work
from governance.core.recording import SigningKeys, record
from ledger.entry import Actor, EntryType
from ledger.storage import Appended

__all__ = ["Hooks", "LapseHook", "Units", "Work"]

# Deletes the stored results of every search made under a basis; returns how many it deleted.
LapseHook = Callable[["Work", UUID], int]


@dataclass(slots=True)
class Hooks:
    """The cross-domain calls, registered once at application start (``governance.wiring``):
    when a basis lapses, and when it is revoked."""

    on_lapse: list[LapseHook] = field(default_factory=list)
    on_revoke: list[LapseHook] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Work:
    """One open transaction and what a governed act needs to carry out and record itself."""

    session: Session
    now: datetime
    keys: SigningKeys
    hooks: Hooks

    def record(
        self, entry_type: EntryType, *, actor: Actor, payload: Mapping[str, Any]
    ) -> Appended:
        """Append one ledger entry in this transaction, dated ``now``.

        Raises LedgerUnavailable (the transaction must then roll back), MalformedEntry.
        """
        return record(
            self.session,
            keys=self.keys,
            entry_type=entry_type,
            actor=actor,
            payload=payload,
            now=self.now,
        )

    def keyed(self, purpose: str, value: str) -> str:
        """The log's keyed digest of ``value`` for ``purpose``. Raises LedgerUnavailable."""
        return self.keys.keyed(purpose, value)


# Sends the queued mail of a committed unit of work (best effort: failures stay queued).
Deliver = Callable[[list[UUID]], object]


@dataclass(frozen=True, slots=True)
class Units:
    """Opens units of work sharing one ``now``: what a request, a command or a flow is handed.

    ``hooks`` are required: units of work without the lapse hook would lapse a basis and keep
    its searches' results (build them with ``governance.wiring.hooks()``). ``deliver`` receives
    the ids of the mail a unit of work queued, once it has committed; the effects outside the
    database it recorded (``governance.core.effects``) are applied then too. ``clock`` lets a
    flow that waited outside any transaction (the analysis of a probe) date what it records
    when it records it (``later``).
    """

    sessions: sessionmaker[Session]
    keys: SigningKeys
    now: datetime
    hooks: Hooks
    deliver: Deliver | None = None
    clock: Callable[[], datetime] | None = None

    @contextmanager
    def __call__(self) -> Iterator[Work]:
        """One transaction: commit when the block succeeds, roll back when it raises; then
        apply the effects it recorded and deliver the mail it queued."""
        with unit_of_work(self.sessions) as session:
            yield Work(session=session, now=self.now, keys=self.keys, hooks=self.hooks)
            queued = mail.queued(session)
            pending = effects.queued(session)
        # Before the caller goes on: an acknowledged enrolment is searchable at once.
        effects.apply(self.sessions, pending)
        if queued and self.deliver is not None:
            self.deliver(queued)

    def at(self, now: datetime) -> Units:
        """The same units of work at another instant (a long batch that reads the clock again)."""
        return Units(self.sessions, self.keys, now, self.hooks, self.deliver, self.clock)

    def later(self) -> Units:
        """The same units of work at the clock's present instant (at ``now`` without a clock).

        For the unit of work that ends a flow after work done outside any transaction: a
        search spends its basis, and is recorded, at the instant it is recorded, so that an
        expiry passed during the analysis of the probe is not missed.
        """
        return self if self.clock is None else self.at(self.clock())
