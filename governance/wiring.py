"""The composition of the domains: the cross-domain hooks, registered once at application start,
and the housekeeping flow that spans them.

The legal-basis domain calls ``Hooks.on_lapse`` when a basis lapses; the search domain provides
what deletes the results of the searches made under it. Neither imports the other: the app
factory and the command line build their ``Hooks`` here, and ``housekeeping`` settles the bases'
deadlines before it records the closed windows' refusal counts of the search domain, and ends
by applying the effects outside the database still pending (``governance.core.effects``: the
vectors and files of an enrolment or a removal whose process died before applying them).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy.orm import Session, sessionmaker

from governance.core.effects import Handler, Replayed, replay
from governance.core.work import Hooks, Units
from governance.legal_basis.deadlines import sweep_due
from governance.legal_basis.values import Transition
from governance.search.records import (
    delete_lapsed_results,
    delete_probes_of_basis,
    purge_expired_searches,
)
from governance.search.refusals import summarize_refusals

__all__ = ["EFFECTS_PER_BATCH", "Swept", "hooks", "housekeeping", "replay_batch"]

EFFECTS_PER_BATCH = 50
"""Pending effects one batch of a sweep applies: a request's sweep runs one batch, so no request
waits for the backlog a failed purge left (the command's sweep applies them all)."""


def hooks() -> Hooks:
    """The hooks every front end registers: a lapsed basis loses its searches' results, a
    revoked one its searches' probe faces (its candidates are no longer shown)."""
    return Hooks(on_lapse=[delete_lapsed_results], on_revoke=[delete_probes_of_basis])


@dataclass(frozen=True, slots=True)
class Swept:
    """What a sweep did: the deadlines applied, the refusal counts recorded, searches purged,
    pending effects replayed."""

    transitions: list[Transition]
    refusal_counts: int
    purged: int
    effects: Replayed = field(default_factory=lambda: Replayed(0, 0))


def housekeeping(
    units: Units,
    *,
    batches: int | None = None,
    retention: timedelta | None = None,
    effects: Callable[[], Mapping[str, Handler]] | None = None,
) -> Swept:
    """Expire and lapse the legal bases past their deadline (every one, or ``batches`` batches
    of them), then record the refusal counts of closed windows, then, with a ``retention``,
    delete the search records older than it; every batch in a unit of work of its own. Last,
    with ``effects`` (what builds the handlers of pending effects, asked only when one is
    pending), apply the effects still pending (with ``batches``, ``EFFECTS_PER_BATCH`` of them a
    batch); one that fails again stays pending.

    Raises ledger errors, and whatever a lapse hook raises (earlier batches stay committed);
    effects that cannot be applied (``effects`` itself fails) are counted as failed.
    """
    transitions = sweep_due(units, batches=batches)
    with units() as work:
        counts = summarize_refusals(work)
    purged = 0 if retention is None else _purge(units, retention)
    replayed = (
        Replayed(0, 0)
        if effects is None
        else replay(
            units.sessions,
            effects,
            limit=None if batches is None else batches * EFFECTS_PER_BATCH,
            # A bounded sweep runs before a request: it must not wait for every effect to time
            # out against an index that is away.
            stop_at_failure=batches is not None,
        )
    )
    return Swept(transitions, counts, purged, replayed)


def replay_batch(
    sessions: sessionmaker[Session], effects: Callable[[], Mapping[str, Handler]]
) -> Replayed:
    """One batch of the effects still pending, the least tried first, up to the first that
    fails again (an index or a store that is away fails them all, each after its timeout)."""
    return replay(sessions, effects, limit=EFFECTS_PER_BATCH, stop_at_failure=True)


def _purge(units: Units, retention: timedelta) -> int:
    purged = 0
    while True:
        with units() as work:
            n = purge_expired_searches(work, retention=retention)
        purged += n
        if n == 0:
            return purged
