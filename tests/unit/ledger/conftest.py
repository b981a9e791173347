"""Ledger fixtures: fresh ledger tables on SQLite and (when configured) PostgreSQL, and keys."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from governance.core.db import make_engine, make_session_factory, unit_of_work
from ledger import storage
from ledger.entry import Actor, EntryType
from ledger.keys import Signer, generate_key

PG_ENV = "FACEWARDEN_TEST_DATABASE_URL"
NAME = "ledger.test/facewarden"
ACTOR = Actor(kind="user", id="7d1f0a52-0000-4000-8000-000000000001", agency="agency-1")
T0 = datetime(2026, 11, 27, 18, 7, 5, 123456, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class LedgerDB:
    """A database holding fresh ledger tables."""

    dialect: str
    engine: Engine
    factory: sessionmaker[Session]


def _pg_url() -> str:
    url = os.environ.get(PG_ENV)
    if not url:
        pytest.skip(f"set {PG_ENV} to a PostgreSQL URL to run the PostgreSQL ledger tests")
    return url


def _fresh_pg(schema: str) -> Engine:
    admin = make_engine(_pg_url())
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    admin.dispose()
    url = make_url(_pg_url()).update_query_dict({"options": f"-csearch_path={schema}"})
    return make_engine(url.render_as_string(hide_password=False))


def _drop_pg(schema: str) -> None:
    admin = make_engine(_pg_url())
    with admin.begin() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


@pytest.fixture
def sqlite_db(tmp_path: Path) -> Iterator[LedgerDB]:
    engine = make_engine(f"sqlite:///{tmp_path / 'ledger.sqlite'}")
    factory = make_session_factory(engine)
    with unit_of_work(factory) as session:
        storage.create_tables(session)
    yield LedgerDB("sqlite", engine, factory)
    engine.dispose()


@pytest.fixture
def pg_db() -> Iterator[LedgerDB]:
    schema = f"ledger_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    engine = _fresh_pg(schema)
    factory = make_session_factory(engine)
    with unit_of_work(factory) as session:
        storage.create_tables(session)
    try:
        yield LedgerDB("postgresql", engine, factory)
    finally:
        engine.dispose()
        _drop_pg(schema)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def ledger_db(request: pytest.FixtureRequest) -> LedgerDB:
    fixture = "sqlite_db" if request.param == "sqlite" else "pg_db"
    db: LedgerDB = request.getfixturevalue(fixture)
    return db


@pytest.fixture
def key_path(tmp_path: Path) -> Path:
    return tmp_path / "keys" / "ledger.pem"


@pytest.fixture
def signer(key_path: Path) -> Signer:
    key_path.parent.mkdir(parents=True, exist_ok=True)
    return generate_key(key_path, name=NAME, passphrase=None)


def fill(db: LedgerDB, signer: Signer, count: int, *, start: int = 0) -> list[storage.Appended]:
    """Append ``count`` entries, one unit of work each."""
    out = []
    for i in range(start, start + count):
        with unit_of_work(db.factory) as session:
            out.append(
                storage.append(
                    session,
                    signer=signer,
                    entry_type=EntryType.SEARCH_RUN,
                    actor=ACTOR,
                    payload={"search": f"s-{i}", "results": i % 7},
                    now=T0 + timedelta(seconds=i),
                )
            )
    return out
