"""Deferred effects follow the transaction: after commit, or after rollback, never both."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

from governance.core.effects import after_commit, after_rollback


def _session() -> Session:
    return Session(create_engine("sqlite://"))


def test_commit_runs_commit_effects_only() -> None:
    calls: list[str] = []
    with _session() as session:
        session.execute(text("SELECT 1"))
        after_commit(session, lambda: calls.append("commit"))
        after_rollback(session, lambda: calls.append("rollback"))
        session.commit()
        # A later transaction does not replay earlier effects.
        session.execute(text("SELECT 1"))
        session.rollback()
    assert calls == ["commit"]


def test_rollback_runs_rollback_effects_only() -> None:
    calls: list[str] = []
    with _session() as session:
        session.execute(text("SELECT 1"))
        after_commit(session, lambda: calls.append("commit"))
        after_rollback(session, lambda: calls.append("rollback"))
        session.rollback()
        session.execute(text("SELECT 1"))
        session.commit()
    assert calls == ["rollback"]


def test_a_failing_effect_is_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    calls: list[str] = []
    with caplog.at_level(logging.ERROR, logger="facewarden.governance"), _session() as session:
        session.execute(text("SELECT 1"))
        after_commit(session, lambda: 1 / 0)
        after_commit(session, lambda: calls.append("next"))
        session.commit()  # does not raise
    [record] = caplog.records
    assert record.name == "facewarden.governance"
    assert record.levelno == logging.ERROR
    assert record.getMessage() == "deferred action failed"
    assert record.exc_info is not None and record.exc_info[0] is ZeroDivisionError
    assert calls == ["next"]  # a failing effect does not stop the others
