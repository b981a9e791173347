"""Engines and units of work: SQLite takes its write lock when a unit of work begins, keeps a
durable write-ahead log and checks foreign keys; a unit of work commits or rolls back whole.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import Column, Integer, MetaData, Table, create_engine, insert, select, text
from sqlalchemy.exc import OperationalError, ProgrammingError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import QueuePool

from governance.core import mail
from governance.core.db import DatabaseUnavailable, make_engine, make_session_factory, unit_of_work
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


def test_a_schema_out_of_date_is_a_bug_not_an_outage(counters: sessionmaker[Session]) -> None:
    # SQLite reports a missing column as an OperationalError, like a full disk: only the
    # second is worth a retry, so the first must reach the error handler as itself.
    with pytest.raises(OperationalError, match="has no column named"), unit_of_work(counters) as s:
        s.execute(text("INSERT INTO counters (id, missing) VALUES (1, 2)"))


def test_a_locked_sqlite_database_is_unavailable_not_a_500(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite"
    engine = create_engine(f"sqlite:///{path}", connect_args={"timeout": 0})
    other = sqlite3.connect(path, timeout=0, isolation_level=None)
    other.execute("CREATE TABLE t (id INTEGER)")
    other.execute("BEGIN IMMEDIATE")
    with (
        pytest.raises(DatabaseUnavailable, match="conflict with a concurrent one"),
        unit_of_work(make_session_factory(engine)) as session,
    ):
        session.execute(text("INSERT INTO t VALUES (1)"))
    other.execute("ROLLBACK")
    other.close()
    engine.dispose()


def test_a_worker_out_of_pooled_connections_answers_unavailable(tmp_path: Path) -> None:
    engine = create_engine(
        f"sqlite:///{tmp_path / 'db.sqlite'}",
        poolclass=QueuePool,
        pool_size=1,
        max_overflow=0,
        pool_timeout=0.05,
    )
    sessions = make_session_factory(engine)
    with engine.connect() as held:
        held.execute(text("SELECT 1"))
        with (
            pytest.raises(DatabaseUnavailable, match="connection of this worker is in use"),
            unit_of_work(sessions) as session,
        ):
            session.execute(text("SELECT 1"))
    with unit_of_work(sessions) as session:  # the connection came back: it serves again
        assert session.execute(text("SELECT 1")).scalar() == 1
    engine.dispose()


_POSTGRESQL = os.environ.get("FACEWARDEN_TEST_DATABASE_URL", "").startswith("postgresql")


@pytest.mark.skipif(not _POSTGRESQL, reason="set FACEWARDEN_TEST_DATABASE_URL to a PostgreSQL URL")
def test_postgresql_timeouts_and_conflicts_are_unavailable_but_bugs_propagate(
    sessions: sessionmaker[Session],
) -> None:
    with (
        pytest.raises(DatabaseUnavailable, match="did not answer in time"),
        unit_of_work(sessions) as session,
    ):
        session.execute(text("SET LOCAL statement_timeout = 10"))
        session.execute(text("SELECT pg_sleep(1)"))
    with (
        pytest.raises(DatabaseUnavailable, match="conflict with a concurrent one"),
        unit_of_work(sessions) as session,
    ):
        session.execute(text("SET LOCAL lock_timeout = 10"))
        with sessions() as other:
            other.execute(text("LOCK TABLE mail_outbox IN ACCESS EXCLUSIVE MODE"))
            session.execute(text("SELECT count(*) FROM mail_outbox"))
            other.rollback()
    with pytest.raises(ProgrammingError), unit_of_work(sessions) as session:
        session.execute(text("SELECT nothing FROM mail_outbox"))
