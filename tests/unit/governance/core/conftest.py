"""Core fixtures: a fresh, migrated database of the suite's kind and a ledger key of its own.

The core's tests commit for real (a unit of work is about committing), so they use a database
nobody else shares: a SQLite file, or a new PostgreSQL database when
FACEWARDEN_TEST_DATABASE_URL names a server.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from governance.core.db import make_engine, make_session_factory
from governance.core.migrate import upgrade
from governance.core.recording import SigningKeys
from ledger.keys import generate_key, generate_log_secret
from tests.conftest import create_test_database, drop_test_database

LEDGER_NAME = "core.test/ledger"


@pytest.fixture
def sessions(tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    """Sessions on a fresh database migrated to the head revision."""
    server = os.environ.get("FACEWARDEN_TEST_DATABASE_URL") or None
    url, admin = create_test_database(server, tmp_path)
    engine = make_engine(url)
    upgrade(engine)
    yield make_session_factory(engine)
    engine.dispose()
    drop_test_database(admin, url)


@pytest.fixture
def keys(tmp_path: Path) -> SigningKeys:
    """A new ledger key and hash secret, in a directory of their own."""
    directory = tmp_path / "keys"
    directory.mkdir()
    generate_key(directory / "ledger.pem", name=LEDGER_NAME, passphrase=None)
    generate_log_secret(directory / "ledger-secret.key")
    return SigningKeys(path=directory / "ledger.pem", name=LEDGER_NAME)
