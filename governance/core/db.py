"""Database engines and units of work, the same code on SQLite and PostgreSQL.

SQLite write transactions start with ``BEGIN IMMEDIATE`` so concurrent writers queue on the
database lock instead of failing half-way; PostgreSQL relies on row locks and, for the ledger,
an advisory lock taken by ``ledger.storage``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import Session, sessionmaker

from governance.core.errors import ServiceUnavailable

__all__ = ["DatabaseUnavailable", "make_engine", "make_session_factory", "unit_of_work"]

_SQLITE_BUSY_TIMEOUT_MS = 30_000
# How long a PostgreSQL connection attempt, or a wait for a pooled connection, may take before
# the request is answered 503: a server that is down, or a network that drops packets, must not
# hold a request for the operating system's TCP timeout of minutes.
CONNECT_TIMEOUT_SECONDS = 5


class DatabaseUnavailable(ServiceUnavailable):
    """The database cannot be reached, did not answer in time, or cannot write (a full disk)."""

    code = "database-unavailable"


def make_engine(url: str, *, echo: bool = False, answer_timeout: int | None = None) -> Engine:
    """Create an engine for ``url`` (``sqlite:///...`` or ``postgresql+psycopg://...``).

    With ``answer_timeout``, a PostgreSQL server that has not answered a statement (or a
    commit) within that many seconds is taken for gone: its connection is closed, and the unit
    of work raises DatabaseUnavailable. (The server's own ``statement_timeout`` cannot do this:
    a server that hangs, or a network that holds packets, never runs it.) Without it a wait has
    no end, as long-running commands need.
    Raises sqlalchemy.exc.ArgumentError for a malformed URL.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        engine = create_engine(
            parsed,
            echo=echo,
            connect_args={"timeout": _SQLITE_BUSY_TIMEOUT_MS / 1000, "check_same_thread": False},
        )
        _configure_sqlite(engine)
        return engine
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    engine = create_engine(
        parsed,
        echo=echo,
        pool_pre_ping=True,  # a connection the server dropped is replaced, not handed out
        pool_size=10,
        max_overflow=20,
        pool_timeout=CONNECT_TIMEOUT_SECONDS,
        connect_args={"connect_timeout": CONNECT_TIMEOUT_SECONDS},
    )
    if answer_timeout is not None:
        _bound_answers(engine, answer_timeout)
    return engine


def _bound_answers(engine: Engine, seconds: int) -> None:
    import psycopg

    class BoundedConnection(psycopg.Connection[Any]):
        """A psycopg connection whose every wait for the server ends after ``seconds``."""

        def wait(self, gen: Any, interval: float = 0.1, timeout: float | None = None) -> Any:
            try:
                return super().wait(gen, interval, seconds if timeout is None else timeout)
            except psycopg.OperationalError:
                # The server did not answer in time, or the connection broke: either way its
                # state is unknown, so it is closed (and the pool replaces it), never reused.
                self.pgconn.finish()
                raise

    @event.listens_for(engine, "do_connect")
    def _connect(_dialect: Any, _record: Any, cargs: Any, cparams: Any) -> Any:
        return BoundedConnection.connect(*cargs, **cparams)


def _configure_sqlite(engine: Engine) -> None:
    # pysqlite's own transaction handling defers BEGIN until the first write and cannot emit
    # BEGIN IMMEDIATE; take it over so every unit of work holds the write lock from its start.
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={_SQLITE_BUSY_TIMEOUT_MS}")
        if engine.url.database not in (None, "", ":memory:"):
            cursor.execute("PRAGMA journal_mode=WAL")
            # FULL: a committed transaction survives power loss (durable ledger appends).
            cursor.execute("PRAGMA synchronous=FULL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    """A session factory whose sessions keep loaded objects usable after commit."""
    return sessionmaker(bind=engine, expire_on_commit=False, future=True)


@contextmanager
def unit_of_work(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One transaction: commit when the block succeeds, roll back when it raises.

    Raises DatabaseUnavailable when the database cannot be reached, cannot write, is out of
    connections, or ended the transaction in a conflict or a timeout, in the block or at the
    commit; nothing of the transaction is then kept. (A connection lost during the commit itself
    leaves the outcome to the server: the act either committed whole, ledger entry included, or
    not at all.) Any other database error, such as a schema out of date, propagates: it is a
    bug to fix, not a condition to retry.
    """
    session = factory()
    try:
        yield session
        session.commit()
    except DBAPIError as exc:
        _roll_back(session)
        detail = _transient_detail(exc)
        if detail is None:
            raise
        raise DatabaseUnavailable(detail) from exc
    except PoolTimeout as exc:
        _roll_back(session)
        raise DatabaseUnavailable(
            "every database connection of this worker is in use and none was freed in time; "
            "nothing of this request was kept. Retry shortly"
        ) from exc
    except BaseException:
        _roll_back(session)
        raise
    finally:
        session.close()


def _roll_back(session: Session) -> None:
    # On a connection the server dropped, the rollback fails too: the transaction is gone
    # already, and the error that matters is the first one.
    try:
        session.rollback()
    except DBAPIError:
        session.invalidate()


_UNREACHABLE = (
    "the database cannot be reached or did not answer in time; nothing of this request "
    "was kept. Retry shortly"
)
_DISK_FULL = (
    "the database cannot write: its disk is full; nothing of this request was kept. "
    "Retry once an operator has freed space"
)
_CONFLICT = (
    "the database ended this request in a conflict with a concurrent one; nothing of this "
    "request was kept. Retry it"
)
_OUT_OF_RESOURCES = (
    "the database is out of connections or memory; nothing of this request was kept. Retry shortly"
)
# SQLite's primary result codes that a retry can outlive; SQLITE_ERROR (a missing table or
# column, a syntax error) and SQLITE_CONSTRAINT are bugs, not outages.
_SQLITE_TRANSIENT = {
    "SQLITE_FULL": _DISK_FULL,
    "SQLITE_BUSY": _CONFLICT,
    "SQLITE_LOCKED": _CONFLICT,
    "SQLITE_IOERR": _UNREACHABLE,
    "SQLITE_CANTOPEN": _UNREACHABLE,
    "SQLITE_READONLY": _UNREACHABLE,
    "SQLITE_NOMEM": _OUT_OF_RESOURCES,
}


def _transient_detail(exc: DBAPIError) -> str | None:
    """What to tell the client when ``exc`` is worth a retry, or None for a bug to surface."""
    if exc.connection_invalidated:
        return _UNREACHABLE
    if not isinstance(exc, OperationalError | InterfaceError):
        return None
    name = getattr(exc.orig, "sqlite_errorname", None)
    if name is not None:
        primary = "_".join(name.split("_")[:2])  # SQLITE_IOERR_WRITE is an SQLITE_IOERR
        return _SQLITE_TRANSIENT.get(primary)
    return _postgresql_detail(getattr(exc.orig, "sqlstate", None))


def _postgresql_detail(sqlstate: str | None) -> str | None:
    # psycopg leaves sqlstate unset when no server answered: refused, reset, timed out.
    if sqlstate is None or sqlstate[:2] == "08" or sqlstate in {"57P01", "57P02", "57P03"}:
        return _UNREACHABLE
    if sqlstate == "53100":
        return _DISK_FULL
    if sqlstate[:2] == "53":
        return _OUT_OF_RESOURCES
    if sqlstate[:2] == "40" or sqlstate == "55P03":  # serialization, deadlock, lock timeout
        return _CONFLICT
    if sqlstate == "57014":  # statement_timeout
        return _UNREACHABLE
    return None
