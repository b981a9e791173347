"""Side effects outside the database: recorded with the transaction, applied once it commits.

Files and vector-index rows are not covered by the database transaction, and a process can be
killed between its commit and the next line. So a change that an effect outside the database
must follow (index these faces, take these vectors out, delete these files) records the effect
as a row of ``pending_effects`` in its own transaction (``pend``): a change that rolls back
leaves no effect, a committed one keeps its effects on record until they are done. ``Units``
applies the effects a unit of work recorded as soon as it has committed, before the caller is
answered; ``replay`` applies whatever is still pending (after a crash between a commit and its
effects, or an effect that failed) at start-up and from the housekeeping sweep.

Each effect is applied in a small transaction of its own, which deletes its row once the effect
has succeeded; a crash in between applies it again, so every effect must be harmless twice
(deleting a missing file or vector does nothing, upserting a vector again changes nothing). A
failing effect is logged and stays pending, with its attempts and last error: the act it follows
stays done. ``after_rollback`` remains for best-effort clean-up that a crash may skip (files
written for an enrolment that rolled back: ``facewarden doctor`` removes files no row refers to).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Integer, String, Text, event, select
from sqlalchemy.orm import Mapped, Session, mapped_column, sessionmaker

from governance.core.db import unit_of_work
from governance.core.orm import Base, UtcDateTime

__all__ = [
    "Handler",
    "PendingEffect",
    "Replayed",
    "after_rollback",
    "apply",
    "pend",
    "queued",
    "replay",
]

log = logging.getLogger("facewarden.governance")

Handler = Callable[[Session, Mapping[str, Any]], object]
"""Carries out one effect from its payload, in the transaction that then marks it done (it may
read rows through the session: a vector is indexed only while its row still exists)."""

_QUEUED = "facewarden.effects.queued"  # session.info key: what this unit of work recorded


class PendingEffect(Base):
    """An effect outside the database, recorded with the change it follows, deleted once done.

    Not part of the record: the ledger holds the act; this row only says what is left to do.
    """

    __tablename__ = "pending_effects"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    """Increasing: effects are applied in the order they were recorded."""
    kind: Mapped[str] = mapped_column(String(64))
    payload: Mapped[str] = mapped_column(Text)
    """JSON: what the handler of ``kind`` needs (ids and digests only)."""
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    """Failed attempts so far."""
    last_error: Mapped[str | None] = mapped_column(Text)


def pend(
    session: Session,
    kind: str,
    payload: Mapping[str, Any],
    handler: Handler,
) -> None:
    """Record an effect in the session's transaction; ``Units`` applies it with ``handler``
    once that transaction commits, and ``replay`` with the handler of ``kind`` if it is still
    pending then."""
    # The wall clock: when an effect was recorded is bookkeeping, not part of the record.
    row = PendingEffect(
        kind=kind, payload=json.dumps(payload), created_at=datetime.now(UTC), attempts=0
    )
    session.add(row)
    session.info.setdefault(_QUEUED, []).append((row, handler))


def queued(session: Session) -> list[tuple[int, Handler]]:
    """The effects recorded in this session's unit of work (call it before the commit)."""
    entries: list[tuple[PendingEffect, Handler]] = session.info.get(_QUEUED, [])
    if not entries:
        return []
    session.flush()
    return [(row.id, handler) for row, handler in entries if row.id is not None]


def apply(sessions: sessionmaker[Session], effects: Sequence[tuple[int, Handler]]) -> int:
    """Apply committed effects in order, each marked done in its own transaction; returns how
    many failed (logged, and left pending for ``replay``). Raises nothing."""
    return sum(not _apply_one(sessions, effect_id, handler) for effect_id, handler in effects)


@dataclass(frozen=True, slots=True)
class Replayed:
    """What a replay did: effects applied, effects that failed again (still pending)."""

    applied: int
    failed: int


def replay(
    sessions: sessionmaker[Session],
    handlers: Callable[[], Mapping[str, Handler]],
    *,
    limit: int | None = None,
    stop_at_failure: bool = False,
) -> Replayed:
    """Apply every pending effect (or the ``limit`` oldest), those tried least first, oldest
    first among them. ``handlers`` (by kind) is asked for only when an effect is pending, so
    that a sweep with nothing to do opens no index. An effect of an unknown kind, or whose
    handler fails, stays pending and is logged. With ``stop_at_failure`` the first failure ends
    the replay (the rest count as failed): a sweep run before a request then waits for one
    unreachable index at most, not once per pending effect.

    When ``handlers`` fails (the index cannot be opened: a running service holds a milvus-lite
    file), nothing is applied and every effect counts as failed. Raises database errors reading
    the pending effects.
    """
    with unit_of_work(sessions) as session:
        pending = list(
            session.execute(
                select(PendingEffect.id, PendingEffect.kind)
                .order_by(PendingEffect.attempts, PendingEffect.id)
                .limit(limit)
            )
        )
    if not pending:
        return Replayed(0, 0)
    try:
        by_kind = handlers()
    except Exception:  # the index or the store is not there: everything stays pending
        log.exception("pending effects cannot be applied now", extra={"pending": len(pending)})
        return Replayed(0, len(pending))
    applied = failed = 0
    for effect_id, kind in pending:
        handler = by_kind.get(kind)
        if handler is None:
            log.error("a pending effect has no handler", extra={"effect": effect_id, "kind": kind})
            failed += 1
        elif _apply_one(sessions, effect_id, handler):
            applied += 1
        else:
            failed += 1
            if stop_at_failure:
                return Replayed(applied, len(pending) - applied)
    return Replayed(applied, failed)


def _apply_one(sessions: sessionmaker[Session], effect_id: int, handler: Handler) -> bool:
    try:
        with unit_of_work(sessions) as session:
            # Locked: a concurrent replay waits, then finds the row gone and does nothing.
            row = session.get(PendingEffect, effect_id, with_for_update=True)
            if row is not None:
                handler(session, json.loads(row.payload))
                session.delete(row)
    except Exception as exc:  # an effect failing must not undo a committed act; it stays pending
        log.exception("a pending effect failed", extra={"effect": effect_id})
        _note_failure(sessions, effect_id, exc)
        return False
    return True


def _note_failure(sessions: sessionmaker[Session], effect_id: int, exc: Exception) -> None:
    try:
        with unit_of_work(sessions) as session:
            row = session.get(PendingEffect, effect_id)
            if row is not None:
                row.attempts += 1
                row.last_error = f"{type(exc).__name__}: {exc}"[:2000]
    except Exception:  # the database may be what failed; the effect stays pending regardless
        log.exception("could not note a failed effect", extra={"effect": effect_id})


def after_rollback(session: Session, action: Callable[[], object]) -> None:
    """Run ``action`` if the session's current transaction rolls back (not if it commits)."""

    def run(*_args: object) -> None:
        if event.contains(session, "after_commit", drop):
            event.remove(session, "after_commit", drop)
        try:
            action()
        except Exception:  # clean-up failing must not hide why the transaction rolled back
            log.exception("deferred action failed", extra={"action": repr(action)})

    def drop(*_args: object) -> None:
        if event.contains(session, "after_soft_rollback", run):
            event.remove(session, "after_soft_rollback", run)

    event.listen(session, "after_soft_rollback", run, once=True)
    event.listen(session, "after_commit", drop, once=True)
