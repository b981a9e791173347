"""Engines and units of work: SQLite takes its write lock when a unit of work begins, keeps a
durable write-ahead log and checks foreign keys; a unit of work commits or rolls back whole.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import Column, Integer, MetaData, Table, insert, select, text
from sqlalchemy.orm import Session, sessionmaker

from governance.core import mail
from governance.core.db import make_engine, make_session_factory, unit_of_work
from governance.core.mail import MailMessage
from tests.factories import NOW


class Boom(Exception):
    """Raised inside a unit of work to make it roll back."""


def _pragma(session: Session, name: str) -> object:
    return session.execute(text(f"PRAGMA {name}")).scalar()


def test_a_sqlite_file_uses_a_durable_write_ahead_log(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    with make_session_factory(engine)() as session:
        assert _pragma(session, "journal_mode") == "wal"
        assert _pragma(session, "synchronous") == 2  # FULL
        assert _pragma(session, "foreign_keys") == 1
        assert _pragma(session, "busy_timeout") == 30_000
    engine.dispose()


def test_an_in_memory_sqlite_database_keeps_its_own_journal() -> None:
    engine = make_engine("sqlite://")
    with make_session_factory(engine)() as session:
        assert _pragma(session, "journal_mode") == "memory"
        assert _pragma(session, "foreign_keys") == 1
    engine.dispose()


def test_a_sqlite_unit_of_work_holds_the_write_lock_from_its_start(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite"
    engine = make_engine(f"sqlite:///{path}")
    sessions = make_session_factory(engine)
    other = sqlite3.connect(path, timeout=0, isolation_level=None)
    with unit_of_work(sessions) as session:
        session.execute(text("SELECT 1"))  # a read only: BEGIN IMMEDIATE took the lock anyway
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            other.execute("BEGIN IMMEDIATE")
    other.execute("BEGIN IMMEDIATE")  # released at commit
    other.execute("ROLLBACK")
    other.close()
    engine.dispose()


_COUNTERS = Table("counters", MetaData(), Column("id", Integer, primary_key=True))


@pytest.fixture
def counters(tmp_path: Path) -> sessionmaker[Session]:
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    _COUNTERS.metadata.create_all(engine)
    return make_session_factory(engine)


def _ids(sessions: sessionmaker[Session]) -> list[int]:
    with sessions() as session:
        return list(session.scalars(select(_COUNTERS.c.id).order_by(_COUNTERS.c.id)))


def test_a_unit_of_work_commits_when_the_block_succeeds(counters: sessionmaker[Session]) -> None:
    with unit_of_work(counters) as session:
        session.execute(insert(_COUNTERS).values(id=1))
    assert _ids(counters) == [1]


def test_a_unit_of_work_rolls_back_when_the_block_raises(counters: sessionmaker[Session]) -> None:
    with pytest.raises(Boom), unit_of_work(counters) as session:
        session.execute(insert(_COUNTERS).values(id=1))
        raise Boom
    assert _ids(counters) == []


def test_sessions_keep_loaded_objects_usable_after_commit(
    sessions: sessionmaker[Session],
) -> None:
    with unit_of_work(sessions) as session:
        message_id = mail.queue(
            session, recipient="a@example.org", subject="Hi", body="Hello\n", now=NOW
        )
        row = session.get(MailMessage, message_id)
    assert row is not None and row.recipient == "a@example.org"  # read after commit and close


@pytest.mark.parametrize(
    "url",
    ["postgresql://fw@db.example/facewarden", "postgresql+psycopg://fw@db.example/facewarden"],
)
def test_postgresql_urls_use_psycopg_3(url: str) -> None:
    engine = make_engine(url)  # no connection is made until one is used
    assert engine.url.drivername == "postgresql+psycopg"
    assert engine.pool.size() == 10  # type: ignore[attr-defined]
    engine.dispose()
