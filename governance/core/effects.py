"""Side effects outside the database that must follow the transaction's outcome.

Files and vector-index rows are not covered by the database transaction. Services register
what to do once the caller's unit of work commits (delete the files of erased photos) or rolls
back (remove vectors or files written for a change that did not happen).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from sqlalchemy import event
from sqlalchemy.orm import Session

__all__ = ["after_commit", "after_rollback"]

log = logging.getLogger("facewarden.governance")


def after_commit(session: Session, action: Callable[[], object]) -> None:
    """Run ``action`` once the session's current transaction commits (not if it rolls back)."""
    _register(session, action, run_on="after_commit", drop_on="after_soft_rollback")


def after_rollback(session: Session, action: Callable[[], object]) -> None:
    """Run ``action`` if the session's current transaction rolls back (not if it commits)."""
    _register(session, action, run_on="after_soft_rollback", drop_on="after_commit")


def _register(session: Session, action: Callable[[], object], *, run_on: str, drop_on: str) -> None:
    def run(*_args: object) -> None:
        if event.contains(session, drop_on, drop):
            event.remove(session, drop_on, drop)
        try:
            action()
        except Exception:  # an effect failing must not undo a decided outcome; it is logged
            log.exception("deferred action failed", extra={"action": repr(action)})

    def drop(*_args: object) -> None:
        if event.contains(session, run_on, run):
            event.remove(session, run_on, run)

    event.listen(session, run_on, run, once=True)
    event.listen(session, drop_on, drop, once=True)
