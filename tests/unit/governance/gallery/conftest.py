"""Fixtures of the gallery's unit tests: units of work on the test's connection, the engines."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy.orm import Session, sessionmaker

from api.context import engines as app_engines
from governance.core.work import Units
from governance.gallery.blobs import FileBlobStore
from governance.gallery.photos import FaceEngines
from tests.api.faces import dev_photos
from tests.api.helpers import runtime_of
from tests.factories import NOW
from tests.unit.governance.legal_basis.helpers import world  # noqa: F401  (a fixture)


@pytest.fixture
def units(app: Flask, session: Session) -> Units:
    """Units of work that commit to savepoints of the test's connection (rolled back after it)."""
    rt = runtime_of(app)
    sessions = sessionmaker(
        bind=session.connection(), join_transaction_mode="create_savepoint", expire_on_commit=False
    )
    return Units(sessions=sessions, keys=rt.keys, now=NOW, hooks=rt.hooks)


@pytest.fixture
def engines(app: Flask) -> FaceEngines:
    """The app's face engines: the test model pack, its vector index and photo store."""
    with app.app_context():
        return app_engines()


@pytest.fixture
def blobs(tmp_path: Path) -> FileBlobStore:
    return FileBlobStore(tmp_path / "blobs")


@pytest.fixture
def faces_dir(shared_dir: Path) -> Iterator[dict[str, list[Path]]]:
    """Photos of real people (skipped, with the reason, where the shared faces are absent)."""
    yield dev_photos(shared_dir)
