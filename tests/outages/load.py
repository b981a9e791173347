"""Requests sent from a background thread while a part is down and after it returns.

``Load`` cycles through a test's requests (liveness, authenticated reads, searches) until it
stops, and ``check`` holds every answer to the outage promise: a success, or a 503 problem
naming the part, never a 500, and never slower than the configured wait plus a margin.
``assert_no_partial_search`` holds the acts to it: a basis spent exactly its recorded searches.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from governance.legal_basis.models import LegalBasis
from ledger.storage import entries
from tests.api.helpers import runtime_of

__all__ = ["OUTAGES", "Load", "assert_no_partial_search"]

PROBLEM = "application/problem+json"

# The two ways a part goes away, as methods of the test's part (a relay, a server): its
# ``how`` takes it away, its ``back`` brings it back.
OUTAGES = pytest.mark.parametrize(
    ("how", "back"),
    [("cut", "restore"), ("freeze", "thaw")],
    ids=["stopped (connections refused)", "frozen (connections accepted, nothing answered)"],
)
Call = Callable[[FlaskClient], Any]


@dataclass(frozen=True, slots=True)
class Answered:
    """One answer the load got: to which call, when it was sent, its status, type, time."""

    call: str
    sent: float
    status: int
    mimetype: str
    type: str | None
    seconds: float


class Load:
    """Runs ``calls`` in turn from one thread, ``pause`` seconds apart, until the block ends.

    ``parts`` are the problem types a 503 may name (``/problems/<code>``); ``within`` is the
    longest a request may take (the part's configured timeout plus a margin).
    """

    def __init__(
        self,
        app: Flask,
        calls: Mapping[str, Call],
        *,
        parts: Collection[str],
        within: float,
        pause: float = 0.1,
    ) -> None:
        self.app = app
        self.calls = dict(calls)
        self.parts = {f"/problems/{code}" for code in parts}
        self.within = within
        self.pause = pause
        self.answers: list[Answered] = []
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Load:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=self.within + 30)

    def _run(self) -> None:
        client = self.app.test_client()  # its own client: the test's keeps its own cookies
        while not self._stop.is_set():
            for name, call in self.calls.items():
                sent = time.monotonic()
                try:
                    response = call(client)
                except Exception as exc:  # an answer the client could not even read
                    with self._lock:
                        self.failures.append(f"{name}: {type(exc).__name__}: {exc}")
                    continue
                body = response.get_json(silent=True) if response.mimetype == PROBLEM else None
                answered = Answered(
                    call=name,
                    sent=sent,
                    status=response.status_code,
                    mimetype=response.mimetype,
                    type=body.get("type") if isinstance(body, dict) else None,
                    seconds=time.monotonic() - sent,
                )
                with self._lock:
                    self.answers.append(answered)
                if self._stop.wait(self.pause):
                    return

    def refused_since(self, moment: float, *, timeout: float = 30) -> None:
        """Wait until a call sent after ``moment`` (a ``time.monotonic()``) was refused."""
        self._wait(lambda sent: any(a.status == 503 for a in sent), moment, timeout, "refused")

    def served_since(self, moment: float, *, timeout: float) -> None:
        """Wait until every call has succeeded once after ``moment`` (a ``time.monotonic()``)."""
        self._wait(
            lambda sent: {a.call for a in sent if a.status < 300} >= set(self.calls),
            moment,
            timeout,
            "served again",
        )

    def _wait(
        self, done: Callable[[list[Answered]], bool], moment: float, timeout: float, what: str
    ) -> None:
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                sent = [a for a in self.answers if a.sent >= moment]
            if done(sent):
                return
            assert time.monotonic() < deadline, f"the load was not {what} in {timeout} s"
            assert self._thread.is_alive(), "the load stopped"
            time.sleep(0.05)

    def check(self, *, refusals: bool = True) -> list[Answered]:
        """Assert every answer kept the promise and the outage was met (with ``refusals``:
        some were refused; without, none was); return the answers."""
        assert not self._thread.is_alive(), "stop the load (leave its block) before checking it"
        assert not self.failures, self.failures
        broken = [
            a
            for a in self.answers
            if not (
                200 <= a.status < 300
                or (a.status == 503 and a.mimetype == PROBLEM and a.type in self.parts)
            )
        ]
        assert not broken, broken
        slow = [a for a in self.answers if a.seconds > self.within]
        assert not slow, slow
        assert {a.call for a in self.answers} == set(self.calls)
        if refusals:
            assert any(a.status == 503 for a in self.answers), "the load never met the outage"
        else:
            assert not any(a.status == 503 for a in self.answers), "the outage refused requests"
        return self.answers

    def refused(self) -> int:
        """How many answers were 503s."""
        return sum(a.status == 503 for a in self.answers)


def assert_no_partial_search(app: Flask, basis_id: str) -> int:
    """Assert the basis's ``searches_used`` equals its ``search:run`` entries; return it."""
    with runtime_of(app).sessions() as session:
        basis = session.get(LegalBasis, UUID(basis_id))
        assert basis is not None, basis_id
        used = basis.searches_used
        bodies = session.execute(select(entries.c.body).where(entries.c.type == "search:run"))
        recorded = sum(
            json.loads(bytes(body))["payload"]["legal_basis_id"] == basis_id
            for body in bodies.scalars()
        )
    assert used == recorded, f"searches_used {used}, search:run entries {recorded}"
    return used
