"""Recording appends in the caller's transaction, follows a key rotated by another process,
and turns every ledger failure but a malformed payload into LedgerUnavailable.
"""

from __future__ import annotations

import threading
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from governance.core import recording
from governance.core.db import unit_of_work
from governance.core.recording import (
    SYSTEM,
    LedgerInconsistentError,
    LedgerKeyUnavailable,
    LedgerUnavailable,
    SigningKeys,
    default_secret_path,
    record,
    signer_consistency,
)
from ledger import storage
from ledger.entry import EntryType, MalformedEntry, parse_entry
from ledger.keys import KeyFileError, generate_key, keyed_digest, load_log_secret, rotate_key
from ledger.storage import Appended, StaleSigningKey
from tests.factories import NOW
from tests.ledger_cut import cut


def _record(session: Session, keys: SigningKeys, search: str, **payload: object) -> Appended:
    return record(
        session,
        keys=keys,
        entry_type=EntryType.SEARCH_RUN,
        actor=SYSTEM,
        payload={"search": search, **payload},
        now=NOW,
    )


def test_an_entry_lands_with_the_callers_transaction(
    sessions: sessionmaker[Session], keys: SigningKeys
) -> None:
    with sessions() as session:
        _record(session, keys, "rolled-back")
        session.rollback()
    with unit_of_work(sessions) as session:
        appended = _record(session, keys, "kept")
    with sessions() as session:
        assert storage.tree_size(session) == 1
        [raw] = storage.entry_bytes(session, 0, 1)
    entry = parse_entry(raw)
    assert appended.seq == 0 and entry.payload == {"search": "kept"}
    assert entry.key_id == keys.current().key_id


def test_the_signer_state_records_what_committed_and_refuses_a_cut_log(
    sessions: sessionmaker[Session], keys: SigningKeys
) -> None:
    with sessions() as session:
        _record(session, keys, "rolled-back")
        session.rollback()
    assert keys.signer_state.read() is None  # nothing committed, nothing recorded
    with unit_of_work(sessions) as session:
        _record(session, keys, "one")
        last = _record(session, keys, "two")
    assert keys.signer_state.read() == last.head
    assert keys.signer_state.path == keys.path.with_name("ledger-signer-state.json")
    with sessions() as session:
        assert "containing the checkpoint of 2" in signer_consistency(session, keys)

    cut(sessions.kw["bind"], keep=1)
    with sessions() as session, pytest.raises(LedgerInconsistentError, match="holds 1 ledger"):
        signer_consistency(session, keys)
    with pytest.raises(LedgerInconsistentError) as refused, unit_of_work(sessions) as session:
        _record(session, keys, "over the cut")
    assert refused.value.code == "ledger-inconsistent"
    assert "signed a checkpoint of 2" in refused.value.detail
    with sessions() as session:
        assert storage.tree_size(session) == 1


def test_the_readiness_check_never_takes_an_append_in_flight_for_a_cut(
    sessions: sessionmaker[Session], keys: SigningKeys, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The state moves only after a commit, so a reader outside the append lock must read it
    # before the tree: read after, an append committed in between makes the tree it read look
    # smaller than the state. Here one commits right after the check has read the tree size.
    if sessions.kw["bind"].dialect.name == "sqlite":
        pytest.skip("on SQLite every transaction holds the write lock: no append lands between")
    with unit_of_work(sessions) as session:
        _record(session, keys, "first")
    real_tree_size = recording.tree_size

    def tree_size_then_an_append(session: Session) -> int:
        size = real_tree_size(session)
        other = threading.Thread(target=lambda: _committed(sessions, keys, "in flight"))
        other.start()
        other.join()
        return size

    monkeypatch.setattr(recording, "tree_size", tree_size_then_an_append)
    with sessions() as session:
        assert "1 entries, containing the checkpoint of 1" in signer_consistency(session, keys)
    signed = keys.signer_state.read()
    assert signed is not None and signed.size == 2  # the append did land in between


def _committed(sessions: sessionmaker[Session], keys: SigningKeys, search: str) -> None:
    with unit_of_work(sessions) as session:
        _record(session, keys, search)


def test_recording_follows_a_key_rotated_by_another_process(
    sessions: sessionmaker[Session], keys: SigningKeys
) -> None:
    with unit_of_work(sessions) as session:
        _record(session, keys, "before")
    old = keys.current()
    with unit_of_work(sessions) as session:  # another process rotates the key file
        _appended, new = rotate_key(
            session,
            key_path=keys.path,
            name=keys.name,
            passphrase=None,
            now=NOW + timedelta(seconds=1),
            actor=SYSTEM,
        )
    with unit_of_work(sessions) as session:
        appended = _record(session, keys, "after")  # the file changed: it is loaded again
    assert parse_entry(appended.entry).key_id == new.key_id != old.key_id
    assert keys.current().key_id == new.key_id
    assert appended.seq == 2


def test_a_key_the_ledger_never_had_makes_the_ledger_unavailable(
    sessions: sessionmaker[Session], keys: SigningKeys, tmp_path: Path
) -> None:
    with unit_of_work(sessions) as session:
        _record(session, keys, "first")
    stranger = tmp_path / "stranger.pem"
    generate_key(stranger, name=keys.name, passphrase=None)
    other = SigningKeys(path=stranger, name=keys.name)
    with sessions() as session, pytest.raises(LedgerUnavailable) as caught:
        _record(session, other, "refused")
    assert isinstance(caught.value.__cause__, StaleSigningKey)
    assert caught.value.code == "ledger-unavailable"
    assert "was not carried out" in caught.value.detail


def test_an_unreadable_key_file_makes_the_ledger_unavailable(
    sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    missing = SigningKeys(path=tmp_path / "missing.pem", name="core.test/ledger")
    with sessions() as session, pytest.raises(LedgerKeyUnavailable) as caught:
        _record(session, missing, "refused")
    assert isinstance(caught.value.__cause__, KeyFileError)
    assert caught.value.code == "ledger-key-unavailable"
    assert "FACEWARDEN_LEDGER_KEY_PATH" in caught.value.detail


@pytest.mark.parametrize("broken", ["removed", "garbage"])
def test_a_key_file_that_becomes_unreadable_stops_signing_until_it_is_back(
    sessions: sessionmaker[Session], keys: SigningKeys, broken: str
) -> None:
    saved = keys.path.read_bytes()
    with unit_of_work(sessions) as session:
        _record(session, keys, "before")
    if broken == "removed":
        keys.path.unlink()
    else:
        keys.path.write_bytes(b"not a key")
    with sessions() as session, pytest.raises(LedgerKeyUnavailable):
        _record(session, keys, "refused")  # the copy in memory does not sign on
    keys.path.write_bytes(saved)
    with unit_of_work(sessions) as session:
        assert _record(session, keys, "after").seq == 1


def test_a_malformed_payload_is_the_callers_error_not_the_ledgers(
    sessions: sessionmaker[Session], keys: SigningKeys
) -> None:
    with sessions() as session, pytest.raises(MalformedEntry, match="not an allowed JSON value"):
        _record(session, keys, "bad", when=NOW)


def test_keyed_digests_use_the_secret_beside_the_key(keys: SigningKeys) -> None:
    assert keys.resolved_secret_path == default_secret_path(keys.path)
    assert default_secret_path(keys.path) == keys.path.with_name("ledger-secret.key")
    secret = load_log_secret(keys.resolved_secret_path)
    assert keys.keyed("person", "p@example.org") == keyed_digest(secret, "person", "p@example.org")


def test_a_missing_hash_secret_makes_the_ledger_unavailable(tmp_path: Path) -> None:
    keys = SigningKeys(path=tmp_path / "ledger.pem", name="core.test/ledger")
    with pytest.raises(LedgerUnavailable, match="run `facewarden init`") as caught:
        keys.keyed("person", "p@example.org")
    assert isinstance(caught.value.__cause__, KeyFileError)
