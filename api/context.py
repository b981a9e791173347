"""The runtime a request works with: database, signing key, clock — and its unit of work.

``Runtime`` is built once by ``create_app``; views reach it through ``runtime()`` and open one
transaction per request with ``transaction()``, so a governed change and its ledger entry commit
together or not at all.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from flask import current_app
from ledger.keys import Signer
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from api.settings import Settings
from governance.db import unit_of_work

__all__ = ["Runtime", "runtime", "transaction", "utcnow"]

EXTENSION = "facewarden"


def utcnow() -> datetime:
    """The wall clock, timezone-aware UTC."""
    return datetime.now(UTC)


@dataclass(slots=True)
class Runtime:
    """What ``create_app`` wires together. Mutable only where tests swap the clock."""

    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    signer: Signer
    clock: Callable[[], datetime] = utcnow
    lazy: dict[str, Any] = field(default_factory=dict)

    def now(self) -> datetime:
        return self.clock()


def runtime() -> Runtime:
    """The current application's runtime."""
    value: Runtime = current_app.extensions[EXTENSION]
    return value


@contextmanager
def transaction() -> Iterator[Session]:
    """One unit of work for the current request: commit on success, roll back on error."""
    with unit_of_work(runtime().sessions) as session:
        yield session
