"""The log gets its checkpoints cosigned by real witnesses: two running and a third down,
under quorum 2; one restarted mid-stream; and verifiers that require the cosignatures.

On the suite's database: SQLite, or PostgreSQL with FACEWARDEN_TEST_DATABASE_URL.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from flask import Flask

from ledger import cli
from ledger.checkpoint import parse_checkpoint, split_note
from ledger.cosignature import parse_cosigner_key, verify_cosignatures
from ledger.cosigned import latest_cosigned
from tests.api.helpers import ledger_size, problem, registration_body, runtime_of
from tests.conftest import create_test_database, drop_test_database
from tests.ledger_cut import cut
from tests.outages.test_database import app_on
from tests.witnesses import Running, keygen, start_witness

pytestmark = pytest.mark.slow


@dataclass
class Witnessed:
    app: Flask
    witnesses: list[Running]
    down: str  # the vkey of the witness that never answers
    log_key: str


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # nothing listens there once the socket is closed


@pytest.fixture
def witnessed(tmp_path: Path) -> Iterator[Witnessed]:
    with witnessed_app(tmp_path, interval_ms=3_600_000) as built:  # the test runs the rounds
        yield built


@contextmanager
def witnessed_app(tmp_path: Path, *, interval_ms: int) -> Iterator[Witnessed]:
    """An application whose log has three witnesses, quorum 2: two running, one down."""
    server = os.environ.get("FACEWARDEN_TEST_DATABASE_URL") or None
    url, admin = create_test_database(server, tmp_path)
    first = app_on(tmp_path / "var", url)  # makes the log's key, which the witnesses need
    log_key = runtime_of(first).signer.verifier_key
    runtime_of(first).engine.dispose()
    witnesses = []
    for n in (1, 2):
        name = f"oversight.test/w{n}"
        key_file = tmp_path / f"w{n}" / "key.pem"
        keygen(key_file, name)
        witnesses.append(start_witness(key_file, tmp_path / f"w{n}" / "state", [log_key], name))
    down = keygen(tmp_path / "w3" / "key.pem", "oversight.test/w3")
    pairs = [f"{w.vkey} {w.prefix}" for w in witnesses]
    pairs.append(f"{down} http://127.0.0.1:{_closed_port()}")
    app = app_on(
        tmp_path / "var",
        url,
        witnesses=", ".join(pairs),
        witness_quorum="2",
        witness_interval_ms=str(interval_ms),
        witness_timeout_seconds="2",
    )
    built = Witnessed(app, witnesses, down, log_key)
    try:
        yield built
    finally:
        witnessing = runtime_of(app).witnessing
        if witnessing is not None:
            witnessing.stop()
        runtime_of(app).engine.dispose()
        for w in built.witnesses:
            w.stop()
        drop_test_database(admin, url)


def _act(app: Flask, count: int) -> None:
    client = app.test_client()
    for _ in range(count):
        assert client.post("/v1/registrations", json=registration_body()).status_code == 202


def _published(app: Flask) -> str:
    response = app.test_client().get("/v1/ledger/checkpoint")
    assert response.status_code == 200
    return response.get_data(as_text=True)


def _size(note: str) -> int:
    return parse_checkpoint(split_note(note).text).size


def test_checkpoints_are_published_once_a_quorum_cosigned_them(witnessed: Witnessed) -> None:
    app, witnessing = witnessed.app, runtime_of(witnessed.app).witnessing
    assert witnessing is not None
    keys = [parse_cosigner_key(w.vkey) for w in witnessed.witnesses]
    keys.append(parse_cosigner_key(witnessed.down))
    _act(app, 2)
    assert verify_cosignatures(_published(app), keys) == []  # none cosigned yet

    status = witnessing.run_once()
    assert status["oversight.test/w1"] == status["oversight.test/w2"] == "ok"
    assert status["oversight.test/w3"].startswith("failed: no answer")
    cosigned = _published(app)
    assert _size(cosigned) == ledger_size(app)
    assert {c.name for c in verify_cosignatures(cosigned, keys)} == {
        "oversight.test/w1",
        "oversight.test/w2",
    }

    _act(app, 3)  # newer checkpoints wait for their cosignatures
    assert _published(app) == cosigned
    witnessed.witnesses[1] = witnessed.witnesses[1].restart()  # mid-stream
    assert witnessing.run_once()["oversight.test/w2"] == "ok"
    newer = _published(app)
    assert _size(newer) == ledger_size(app) == _size(cosigned) + 3
    assert len(verify_cosignatures(newer, keys)) == 2


def test_a_verifier_requires_the_cosignatures_its_policy_names(
    witnessed: Witnessed, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    app, witnessing = witnessed.app, runtime_of(witnessed.app).witnessing
    assert witnessing is not None
    _act(app, 2)
    witnessing.run_once()
    bundle = tmp_path / "bundle"
    from ledger.storage import export_bundle

    with runtime_of(app).sessions() as session:
        export_bundle(session, bundle)
    w1, w2 = (w.vkey for w in witnessed.witnesses)
    base = ["bundle", str(bundle), "--key", witnessed.log_key]
    assert cli.main([*base, "--witness", w1, "--witness", w2, "--quorum", "2"]) == 0
    out = capsys.readouterr().out
    assert "cosigned    by oversight.test/w1 at " in out
    assert "cosigned    by oversight.test/w2 at " in out
    # The policy names a witness that never cosigned: two of three is not three.
    unmet = [*base, "--witness", w1, "--witness", w2, "--witness", witnessed.down, "--quorum", "3"]
    assert cli.main(unmet) == 1
    assert "witness policy not met" in capsys.readouterr().err
    # The same, as a policy file: two of the three, or all three.
    for quorum, status in (("2", 0), ("all", 1)):
        policy = tmp_path / f"{quorum}.policy"
        policy.write_text(
            f"witness w1 {w1}\nwitness w2 {w2}\nwitness w3 {witnessed.down}\n"
            f"group ours {quorum} w1 w2 w3\nquorum ours\n"
        )
        assert cli.main([*base, "--policy", str(policy)]) == status
    captured = capsys.readouterr()
    assert "cosigned    by oversight.test/w2 at " in captured.out
    assert "the policy's quorum ours needs 3 of (w1, w2, w3)" in captured.err


def test_a_receipt_is_held_to_the_witness_policy(
    witnessed: Witnessed, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.api.test_ledger_cut import _receipt

    app, witnessing = witnessed.app, runtime_of(witnessed.app).witnessing
    assert witnessing is not None
    _act(app, 1)
    receipt = _receipt(app, ledger_size(app) - 1)  # as a search answers: not cosigned yet
    path = tmp_path / "receipt.json"
    path.write_text(json.dumps({"receipt": receipt}))
    w1 = witnessed.witnesses[0].vkey
    base = ["receipt", str(path), "--key", witnessed.log_key]
    assert cli.main(base) == 0
    assert cli.main([*base, "--witness", w1]) == 1
    assert "witness policy not met" in capsys.readouterr().err
    witnessing.run_once()
    with runtime_of(app).sessions() as session:
        cosigned = latest_cosigned(session, ["oversight.test/w1", "oversight.test/w2"], 2)
    assert cosigned is not None
    path.write_text(json.dumps({"receipt": {**receipt, "checkpoint": cosigned.note}}))
    assert cli.main([*base, "--witness", w1]) == 0
    assert "cosigned  by oversight.test/w1 at " in capsys.readouterr().out


def test_a_log_cut_below_what_a_quorum_cosigned_signs_nothing_even_with_a_new_state(
    witnessed: Witnessed,
) -> None:
    # What restoring an older backup into a new data directory looks like: the database is
    # behind what the witnesses cosigned, and the host has no signer state of its own.
    app, witnessing = witnessed.app, runtime_of(witnessed.app).witnessing
    assert witnessing is not None
    _act(app, 4)
    witnessing.run_once()
    cosigned = ledger_size(app)
    cut(runtime_of(app).engine, keep=cosigned - 2)
    state = runtime_of(app).keys.signer_state
    state.path.unlink()
    status = witnessing.run_once()
    assert "beyond the log's" in status["oversight.test/w1"]
    kept = state.read()
    assert kept is not None and kept.witnessed == cosigned
    body = problem(app.test_client().post("/v1/registrations", json=registration_body()), 503)
    assert body["type"] == "/problems/ledger-inconsistent"
    assert f"cosigned a checkpoint of {cosigned}" in body["detail"]
    assert ledger_size(app) == cosigned - 2


def test_one_witness_alone_cannot_stop_the_log(witnessed: Witnessed) -> None:
    app, witnessing = witnessed.app, runtime_of(witnessed.app).witnessing
    assert witnessing is not None
    _act(app, 2)
    witnessing.run_once()
    # The first witness claims it saw far more of the log than the log holds.
    liar = witnessed.witnesses[0]
    liar.stop()
    [held] = liar.state.glob("*.json")
    record = json.loads(held.read_text())
    held.write_text(json.dumps({**record, "size": 10**6, "root": "00" * 32}))
    witnessed.witnesses[0] = liar = liar.restart()
    witnessing.sizes.clear()  # as after a restart of the service
    status = witnessing.run_once()
    assert "beyond the log's" in status["oversight.test/w1"]
    assert status["oversight.test/w2"] == "ok"
    kept = runtime_of(app).keys.signer_state.read()
    assert kept is not None and kept.witnessed == 0  # it takes a quorum (2) to stop the log
    _act(app, 1)


def test_a_search_receipt_says_when_its_checkpoint_is_cosigned(
    witnessed: Witnessed, shared_dir: Path, tmp_path: Path
) -> None:
    from tests.api.bases import approved, make_team
    from tests.api.faces import dev_photos, enroll, variant
    from tests.api.helpers import make_staff
    from tests.api.test_searches import search

    app, witnessing = witnessed.app, runtime_of(witnessed.app).witnessing
    assert witnessing is not None
    client = app.test_client()
    team = make_team(app)
    photos = dev_photos(shared_dir)["Orlando_Bloom"]
    curator = make_staff(client, team.admin, "curator")
    assert enroll(client, curator, variant(photos[0])).status_code == 201
    answer = search(client, team.inv, approved(client, app, team)["id"], photos[1].read_bytes())
    assert answer.status_code == 201
    assert answer.get_json()["receipt"]["cosigned"] is False
    url = f"/v1/searches/{answer.get_json()['id']}/receipt"
    assert client.get(url, headers=team.inv.headers).get_json()["cosigned"] is False
    witnessing.run_once()
    receipt = client.get(url, headers=team.inv.headers).get_json()
    assert receipt["cosigned"] is True
    assert receipt["witnesses"] == ["oversight.test/w1", "oversight.test/w2"]
    assert receipt["entry"] == answer.get_json()["receipt"]["entry"]
    path = tmp_path / "receipt.json"
    path.write_text(json.dumps(receipt))
    w1, w2 = (w.vkey for w in witnessed.witnesses)
    policy = ["--witness", w1, "--witness", w2, "--quorum", "2"]
    assert cli.main(["receipt", str(path), "--key", witnessed.log_key, *policy]) == 0


def test_a_service_started_on_a_cut_log_refuses_before_its_first_act(witnessed: Witnessed) -> None:
    # A restore from an older backup into a new data directory, then a start: the first
    # witness round runs before the service serves, not a round interval (here an hour) later.
    from api.app import create_app

    app, witnessing = witnessed.app, runtime_of(witnessed.app).witnessing
    assert witnessing is not None
    _act(app, 4)
    witnessing.run_once()
    cosigned = ledger_size(app)
    witnessing.stop()
    cut(runtime_of(app).engine, keep=cosigned - 2)
    runtime_of(app).keys.signer_state.path.unlink()
    started = create_app(runtime_of(app).settings)
    try:
        response = started.test_client().post("/v1/registrations", json=registration_body())
        body = problem(response, 503)
        assert body["type"] == "/problems/ledger-inconsistent"
        assert ledger_size(started) == cosigned - 2  # nothing was signed over the cut
    finally:
        restarted = runtime_of(started).witnessing
        if restarted is not None:
            restarted.stop()
        runtime_of(started).engine.dispose()
