"""Clean-up runs after a rollback only; pending effects are recorded with the transaction,
applied once it commits, and replayed until they are done."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import pytest
from sqlalchemy import create_engine, select, text
from sqlalchemy.orm import Session, sessionmaker

from governance.core.db import unit_of_work
from governance.core.effects import (
    Handler,
    PendingEffect,
    Replayed,
    after_rollback,
    pend,
    replay,
)
from governance.core.recording import SigningKeys
from governance.core.work import Hooks, Units
from governance.wiring import EFFECTS_PER_BATCH, housekeeping
from tests.factories import NOW


def _session() -> Session:
    return Session(create_engine("sqlite://"))


def test_rollback_effects_run_on_rollback_only() -> None:
    calls: list[str] = []
    with _session() as session:
        session.execute(text("SELECT 1"))
        after_rollback(session, lambda: calls.append("committed one"))
        session.commit()
        # A later transaction does not run an earlier one's effects.
        session.execute(text("SELECT 1"))
        session.rollback()
        session.execute(text("SELECT 1"))
        after_rollback(session, lambda: calls.append("rolled back one"))
        session.rollback()
        session.execute(text("SELECT 1"))
        session.commit()
    assert calls == ["rolled back one"]


def test_a_failing_effect_is_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    calls: list[str] = []
    with caplog.at_level(logging.ERROR, logger="facewarden.governance"), _session() as session:
        session.execute(text("SELECT 1"))
        after_rollback(session, lambda: 1 / 0)
        after_rollback(session, lambda: calls.append("next"))
        session.rollback()  # does not raise
    [record] = caplog.records
    assert record.name == "facewarden.governance"
    assert record.levelno == logging.ERROR
    assert record.getMessage() == "deferred action failed"
    assert record.exc_info is not None and record.exc_info[0] is ZeroDivisionError
    assert calls == ["next"]  # a failing effect does not stop the others


# Pending effects: recorded with the change, applied once it commits, replayed until done.

KIND = "test:note"


def _units(sessions: sessionmaker[Session], keys: SigningKeys) -> Units:
    return Units(sessions=sessions, keys=keys, now=NOW, hooks=Hooks())


def _noting(done: list[str]) -> Handler:
    def handler(_session: Session, payload: Mapping[str, Any]) -> None:
        done.append(payload["note"])

    return handler


def _failing(_session: Session, _payload: Mapping[str, Any]) -> None:
    raise OSError("the disk is gone")


def _pending(sessions: sessionmaker[Session]) -> list[tuple[str, str, int, str | None]]:
    with unit_of_work(sessions) as session:
        rows = session.scalars(select(PendingEffect).order_by(PendingEffect.id))
        return [(r.kind, r.payload, r.attempts, r.last_error) for r in rows]


def test_an_effect_is_applied_once_its_unit_of_work_commits_and_then_forgotten(
    sessions: sessionmaker[Session], keys: SigningKeys
) -> None:
    done: list[str] = []
    with _units(sessions, keys)() as work:
        pend(work.session, KIND, {"note": "a"}, _noting(done))
        pend(work.session, KIND, {"note": "b"}, _noting(done))
        assert done == []  # not before the commit
    assert done == ["a", "b"]  # in the order recorded, before the caller goes on
    assert _pending(sessions) == []


def test_a_rolled_back_unit_of_work_leaves_no_effect_and_no_row(
    sessions: sessionmaker[Session], keys: SigningKeys
) -> None:
    done: list[str] = []
    with pytest.raises(RuntimeError, match="refused"), _units(sessions, keys)() as work:
        pend(work.session, KIND, {"note": "a"}, _noting(done))
        work.session.flush()
        raise RuntimeError("refused")
    assert done == []
    assert _pending(sessions) == []
    assert replay(sessions, lambda: {KIND: _noting(done)}) == Replayed(0, 0)
    assert done == []


def test_a_failing_effect_stays_pending_and_the_act_stays_done(
    sessions: sessionmaker[Session], keys: SigningKeys, caplog: pytest.LogCaptureFixture
) -> None:
    logged = caplog.at_level(logging.ERROR, logger="facewarden.governance")
    with logged, _units(sessions, keys)() as work:  # does not raise
        pend(work.session, KIND, {"note": "a"}, _failing)
    assert [r.getMessage() for r in caplog.records] == ["a pending effect failed"]
    assert _pending(sessions) == [(KIND, '{"note": "a"}', 1, "OSError: the disk is gone")]
    # The sweep tries again: still failing, it counts the attempt; then it succeeds.
    assert replay(sessions, lambda: {KIND: _failing}) == Replayed(0, 1)
    assert _pending(sessions)[0][2] == 2
    done: list[str] = []
    assert replay(sessions, lambda: {KIND: _noting(done)}) == Replayed(1, 0)
    assert (done, _pending(sessions)) == (["a"], [])


def test_what_a_crash_left_pending_is_replayed_and_a_second_replay_does_nothing(
    sessions: sessionmaker[Session],
) -> None:
    # A process killed right after its commit: the effect is on record, never applied.
    with unit_of_work(sessions) as session:
        pend(session, KIND, {"note": "a"}, _failing)
    asked: list[str] = []

    def handlers() -> dict[str, Handler]:
        asked.append("handlers")
        return {KIND: _noting(asked)}

    assert replay(sessions, handlers) == Replayed(1, 0)
    assert replay(sessions, handlers) == Replayed(0, 0)
    # The handlers (an index to open) are built only when something is pending.
    assert asked == ["handlers", "a"]


def test_an_effect_without_a_handler_stays_pending(
    sessions: sessionmaker[Session], caplog: pytest.LogCaptureFixture
) -> None:
    with unit_of_work(sessions) as session:
        pend(session, "test:unknown", {}, _failing)
    with caplog.at_level(logging.ERROR, logger="facewarden.governance"):
        assert replay(sessions, lambda: {KIND: _failing}) == Replayed(0, 1)
    assert [r.getMessage() for r in caplog.records] == ["a pending effect has no handler"]
    assert [kind for kind, *_ in _pending(sessions)] == ["test:unknown"]


def test_the_housekeeping_sweep_replays_pending_effects(
    sessions: sessionmaker[Session], keys: SigningKeys
) -> None:
    with unit_of_work(sessions) as session:
        pend(session, KIND, {"note": "a"}, _failing)
    done: list[str] = []
    swept = housekeeping(_units(sessions, keys), effects=lambda: {KIND: _noting(done)})
    assert (swept.effects, done, _pending(sessions)) == (Replayed(1, 0), ["a"], [])


def test_a_sweep_of_some_batches_replays_only_their_share_of_a_backlog(
    sessions: sessionmaker[Session], keys: SigningKeys
) -> None:
    with unit_of_work(sessions) as session:
        for i in range(EFFECTS_PER_BATCH + 2):
            pend(session, KIND, {"note": str(i)}, _failing)
    done: list[str] = []
    swept = housekeeping(_units(sessions, keys), batches=1, effects=lambda: {KIND: _noting(done)})
    assert swept.effects == Replayed(EFFECTS_PER_BATCH, 0)
    assert done == [str(i) for i in range(EFFECTS_PER_BATCH)]  # the oldest first
    assert len(_pending(sessions)) == 2
    assert replay(sessions, lambda: {KIND: _noting(done)}) == Replayed(2, 0)


def test_effects_that_cannot_be_applied_now_stay_pending_and_count_as_failed(
    sessions: sessionmaker[Session], caplog: pytest.LogCaptureFixture
) -> None:
    with unit_of_work(sessions) as session:
        pend(session, KIND, {"note": "a"}, _failing)

    def busy() -> dict[str, Handler]:
        raise OSError("the index file is held by another process")

    with caplog.at_level(logging.ERROR, logger="facewarden.governance"):
        assert replay(sessions, busy) == Replayed(0, 1)
    assert [r.getMessage() for r in caplog.records] == ["pending effects cannot be applied now"]
    assert [kind for kind, *_ in _pending(sessions)] == [KIND]


def test_a_sweep_before_a_request_stops_at_the_first_failure_and_tries_the_least_tried_first(
    sessions: sessionmaker[Session], keys: SigningKeys
) -> None:
    # An index that is away fails every effect, each after its call timeout: a request must
    # not wait for all of them.
    with unit_of_work(sessions) as session:
        for i in range(3):
            pend(session, KIND, {"note": str(i)}, _failing)
    tried: list[str] = []

    def away(_session: Session, payload: Mapping[str, Any]) -> None:
        tried.append(payload["note"])
        raise OSError("the index does not answer")

    swept = housekeeping(_units(sessions, keys), batches=1, effects=lambda: {KIND: away})
    assert (swept.effects, tried) == (Replayed(0, 3), ["0"])
    # The next one starts with the effects not tried yet.
    housekeeping(_units(sessions, keys), batches=1, effects=lambda: {KIND: away})
    assert tried == ["0", "1"]
    # The unbounded replay (start-up, the command line) tries every one.
    assert replay(sessions, lambda: {KIND: away}) == Replayed(0, 3)
    assert tried == ["0", "1", "2", "0", "1"]
