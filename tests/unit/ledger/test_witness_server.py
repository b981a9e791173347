"""The witness as an oversight body runs it: a real ``facewarden-verify witness serve`` process,
fed the checkpoints and consistency proofs of a real ledger over HTTP (C2SP tlog-witness)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ledger import storage
from ledger.checkpoint import open_note, parse_checkpoint, parse_verifier_key
from ledger.cosignature import cosigner_vkey, parse_cosigner_key, verify_cosignatures
from ledger.keys import Signer, generate_key
from ledger.witness_server import MAX_BODY, request_body
from tests.witnesses import Answer, Running, keygen, start_witness

from .conftest import NAME, LedgerDB, fill

WITNESS = "witness.test/w1"


@pytest.fixture
def witness(tmp_path: Path, signer: Signer) -> Iterator[Running]:
    key_file = tmp_path / "witness" / "key.pem"
    vkey = keygen(key_file, WITNESS)
    running = start_witness(key_file, tmp_path / "witness" / "state", [signer.verifier_key])
    assert running.vkey == vkey
    yield running
    running.stop()


def _note(db: LedgerDB, size: int) -> str:
    with db.factory() as session:
        return storage.checkpoint_notes(session, [size])[size]


def _submit(witness: Running, db: LedgerDB, old: int, size: int) -> Answer:
    with db.factory() as session:
        proof = storage.consistency_proof(session, first=old, second=size) if old else []
    return witness.post(request_body(old, proof, _note(db, size)))


def test_the_witness_cosigns_a_growing_log_and_keeps_its_state_across_a_restart(
    witness: Running, sqlite_db: LedgerDB, signer: Signer
) -> None:
    fill(sqlite_db, signer, 6)
    first = _submit(witness, sqlite_db, 0, 3)
    assert (first.status, first.content_type) == (200, "text/plain")
    cosigned = _note(sqlite_db, 3) + first.body
    found = verify_cosignatures(cosigned, [parse_cosigner_key(witness.vkey)])
    assert [c.name for c in found] == [WITNESS]
    open_note(cosigned, [parse_verifier_key(signer.verifier_key)])  # still the log's note
    assert _submit(witness, sqlite_db, 3, 5).status == 200

    again = witness.restart()
    try:
        stale = _submit(again, sqlite_db, 3, 6)
        assert (stale.status, stale.body, stale.content_type) == (409, "5\n", "text/x.tlog.size")
        assert _submit(again, sqlite_db, 5, 6).status == 200
        assert _submit(again, sqlite_db, 6, 6).status == 200  # the same checkpoint again
    finally:
        again.stop()


def test_a_rollback_and_a_fork_are_refused(
    witness: Running, sqlite_db: LedgerDB, signer: Signer, tmp_path: Path
) -> None:
    fill(sqlite_db, signer, 5)
    assert _submit(witness, sqlite_db, 0, 5).status == 200
    # A rollback: an older checkpoint of the same log.
    older = witness.post(request_body(5, [], _note(sqlite_db, 4)))
    assert older.status == 400  # an old size above the checkpoint's
    assert _submit(witness, sqlite_db, 3, 4).body == "5\n"
    # A fork: the same key signs another history (what a cut database would make it do).
    from governance.core.db import make_engine, make_session_factory, unit_of_work

    engine = make_engine(f"sqlite:///{tmp_path / 'fork.sqlite'}")
    with unit_of_work(make_session_factory(engine)) as session:
        storage.create_tables(session)
    fork = LedgerDB("sqlite", engine, make_session_factory(engine))
    fill(fork, signer, 7, start=100)
    forked = _submit(witness, fork, 5, 7)
    assert forked.status == 422, forked
    same_size = _submit(witness, fork, 5, 5)
    assert (same_size.status, same_size.body) == (409, "5\n")
    assert _submit(witness, sqlite_db, 5, 5).status == 200  # the true one is still cosigned
    engine.dispose()


def test_unknown_logs_foreign_signatures_and_bad_bodies_are_refused(
    witness: Running, sqlite_db: LedgerDB, signer: Signer, tmp_path: Path
) -> None:
    fill(sqlite_db, signer, 2)
    note = _note(sqlite_db, 2)
    stranger = generate_key(tmp_path / "other.pem", name="other.test/log", passphrase=None)
    impostor = generate_key(tmp_path / "impostor.pem", name=NAME, passphrase=None)
    text = note[: note.index("\n\n") + 1]
    from ledger.checkpoint import sign_note

    other_log = sign_note(text.replace(NAME, "other.test/log"), stranger)
    assert parse_checkpoint(other_log.split("\n\n")[0] + "\n").origin == "other.test/log"
    assert witness.post(request_body(0, [], other_log)).status == 404
    assert witness.post(request_body(0, [], sign_note(text, impostor))).status == 403
    assert witness.post(b"old 01\n\n" + note.encode()).status == 400
    assert witness.post(b"old 0\nnot-base64!\n\n" + note.encode()).status == 400
    assert witness.post(b"old 0\n" + note.encode()).status == 400  # no empty line
    assert witness.post(b"x" * (MAX_BODY + 1)).status == 413
    assert witness.post(request_body(0, [bytes(32)], note)).status == 422  # proof from 0
    assert witness.post(request_body(0, [], note)).status == 200


def test_the_log_takes_a_witness_by_its_prefix_or_by_the_url_it_prints() -> None:
    from ledger.witness_client import parse_witnesses

    vkey = cosigner_vkey("oversight.example/w1", bytes(32))
    as_printed = "http://127.0.0.1:7380/add-checkpoint"  # what `witness serve` prints
    for url in ("http://127.0.0.1:7380", "http://127.0.0.1:7380/", as_printed):
        [endpoint] = parse_witnesses(f"{vkey} {url}")
        assert endpoint.url == as_printed
    with pytest.raises(ValueError, match="is not 'VKEY URL'"):
        parse_witnesses(f"{vkey} 127.0.0.1:7380")
