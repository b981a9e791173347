"""A database owner without the key cuts the ledger under a running service: every act is then
refused with a 503 ledger-inconsistent, nothing is signed, and /readyz says so.

On the suite's database: SQLite, or PostgreSQL with FACEWARDEN_TEST_DATABASE_URL.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import func, select, text

from ledger import storage
from tests.api.helpers import ledger_size, problem, registration_body, runtime_of
from tests.conftest import create_test_database, drop_test_database
from tests.ledger_cut import cut
from tests.outages.test_database import app_on


@pytest.fixture
def fresh(tmp_path: Path) -> Iterator[Flask]:
    server = os.environ.get("FACEWARDEN_TEST_DATABASE_URL") or None
    url, admin = create_test_database(server, tmp_path)
    app = app_on(tmp_path / "var", url)
    yield app
    runtime_of(app).engine.dispose()
    drop_test_database(admin, url)


def _registrations(app: Flask) -> int:
    with runtime_of(app).engine.connect() as conn:
        return int(conn.execute(text("SELECT count(*) FROM registrations")).scalar_one())


def _newest_checkpoint(app: Flask) -> int:
    with runtime_of(app).engine.connect() as conn:
        return int(conn.execute(select(func.max(storage.checkpoints.c.size))).scalar_one())


def test_a_cut_ledger_refuses_every_act_until_it_is_restored(fresh: Flask) -> None:
    client = fresh.test_client()
    for _ in range(3):
        assert client.post("/v1/registrations", json=registration_body()).status_code == 202
    assert client.get("/readyz").get_json()["checks"]["ledger"]["ok"] is True
    size = ledger_size(fresh)
    cut(runtime_of(fresh).engine, keep=size - 2)
    rows = _registrations(fresh)

    body = problem(client.post("/v1/registrations", json=registration_body()), 503)
    assert body["type"] == "/problems/ledger-inconsistent"
    assert f"holds {size - 2} ledger entries" in body["detail"]
    assert f"signed a checkpoint of {size}" in body["detail"]
    # The act was not carried out, and the log was not extended over the cut.
    assert _registrations(fresh) == rows
    assert ledger_size(fresh) == size - 2
    assert _newest_checkpoint(fresh) == size - 2
    readiness = client.get("/readyz")
    assert readiness.status_code == 503
    assert readiness.get_json()["checks"]["ledger"]["ok"] is False
