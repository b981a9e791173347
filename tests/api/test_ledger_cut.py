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
from sqlalchemy.exc import DBAPIError

from ledger import storage
from ledger.bundle import HttpFetcher
from ledger.hashing import leaf_hash
from ledger.receipt import verify_receipt_live
from ledger.verify import VerificationError
from tests.api.helpers import (
    ledger_size,
    make_admin,
    make_staff,
    problem,
    registration_body,
    runtime_of,
)
from tests.api.test_ledger_api import flask_transport
from tests.conftest import APP_ROLE_ENV, create_test_database, drop_test_database
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


def _receipt(app: Flask, seq: int) -> dict[str, object]:
    """What a search answer's ``receipt`` holds, for the entry ``seq`` in today's tree."""
    with runtime_of(app).sessions() as session:
        size = storage.tree_size(session)
        [entry] = storage.entry_bytes(session, seq, seq + 1)
        proof = storage.inclusion_proof(session, seq=seq, size=size)
        note = storage.checkpoint_notes(session, [size])[size]
    return {
        "seq": seq,
        "entry": entry.decode(),
        "checkpoint": note,
        "leaf_hash": leaf_hash(entry).hex(),
        "inclusion_proof": [h.hex() for h in proof],
    }


def test_a_receipt_from_before_the_cut_fails_against_the_live_log(fresh: Flask) -> None:
    client = fresh.test_client()
    oversight = make_staff(client, make_admin(fresh), "oversight")
    assert client.post("/v1/registrations", json=registration_body()).status_code == 202
    size = ledger_size(fresh)
    receipt = _receipt(fresh, size - 1)
    keys = [runtime_of(fresh).signer.verifier_key]
    live = HttpFetcher("http://localhost", token=oversight.token, transport=flask_transport(client))
    assert client.post("/v1/registrations", json=registration_body()).status_code == 202
    assert verify_receipt_live(receipt, keys, live).size == size + 1  # the log grew from it

    cut(runtime_of(fresh).engine, keep=size - 1)
    with pytest.raises(VerificationError, match="fewer than the receipt's") as failed:
        verify_receipt_live(receipt, keys, live)
    assert failed.value.step == 5
    assert failed.value.evidence["receipt_size"] == size
    assert failed.value.evidence["live_size"] == size - 1
    assert failed.value.evidence["receipt_root"] != failed.value.evidence["live_root"]


@pytest.mark.skipif(
    not (os.environ.get(APP_ROLE_ENV) and os.environ.get("FACEWARDEN_TEST_DATABASE_URL")),
    reason=f"on PostgreSQL with {APP_ROLE_ENV}: the suite's application role (.ci/run sets it)",
)
def test_the_suite_s_application_cannot_cut_the_log_itself(app: Flask) -> None:
    # The attack above needs the owner: the role the suite's application runs as, like a
    # deployment's, may neither drop the triggers nor delete what they guard.
    engine = runtime_of(app).engine
    assert engine.url.username == os.environ[APP_ROLE_ENV].partition(":")[0]
    for statement, refusal in (
        ("DROP TRIGGER ledger_entries_append_only ON ledger_entries", "must be owner"),
        ("ALTER TABLE ledger_entries DISABLE TRIGGER ALL", "must be owner"),
        ("DELETE FROM ledger_entries WHERE seq >= 0", "permission denied"),
        ("TRUNCATE ledger_nodes", "permission denied"),
    ):
        with pytest.raises(DBAPIError, match=refusal), engine.begin() as conn:
            conn.execute(text(statement))
