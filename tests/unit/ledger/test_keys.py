"""Key files (0600, PKCS8, optionally encrypted) and rotation through a signed key:rotate entry."""

from __future__ import annotations

import stat
from datetime import timedelta
from pathlib import Path

import pytest

from governance.core.db import unit_of_work
from ledger import storage
from ledger.bundle import BundleFetcher
from ledger.entry import EntryType, LedgerError, parse_entry
from ledger.keys import (
    KeyFileError,
    Signer,
    generate_key,
    generate_log_secret,
    keyed_digest,
    load_log_secret,
    load_signer,
    rotate_key,
)
from ledger.verify import verify_log

from .conftest import ACTOR, NAME, T0, LedgerDB, fill


def test_generated_key_file_is_private_pkcs8_and_encrypted(tmp_path: Path) -> None:
    path = tmp_path / "k.pem"
    signer = generate_key(path, name=NAME, passphrase="correct horse")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_bytes().startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    loaded = load_signer(path, name=NAME, passphrase="correct horse")
    assert loaded.verifier_key == signer.verifier_key and len(loaded.key_id) == 8
    with pytest.raises(KeyFileError, match="cannot load"):
        load_signer(path, name=NAME, passphrase="wrong")
    with pytest.raises(KeyFileError, match="cannot load"):
        load_signer(path, name=NAME, passphrase=None)


def test_plain_key_and_refusals(tmp_path: Path) -> None:
    path = tmp_path / "k.pem"
    generate_key(path, name=NAME, passphrase=None)
    assert path.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    with pytest.raises(KeyFileError, match="cannot create"):
        generate_key(path, name=NAME, passphrase=None)
    with pytest.raises(KeyFileError, match="cannot load"):
        load_signer(tmp_path / "missing.pem", name=NAME, passphrase=None)
    with pytest.raises(LedgerError, match="key name"):
        generate_key(tmp_path / "other.pem", name="bad name", passphrase=None)


def _rotate(db: LedgerDB, key_path: Path, at: int) -> Signer:
    with unit_of_work(db.factory) as session:
        appended, new = rotate_key(
            session,
            key_path=key_path,
            name=NAME,
            passphrase=None,
            now=T0 + timedelta(seconds=at),
            actor=ACTOR,
        )
    entry = parse_entry(appended.entry)
    assert entry.type is EntryType.KEY_ROTATE and entry.payload["new_key"] == new.verifier_key
    return new


def test_rotation_signed_by_old_key_and_file_swapped_on_commit(
    ledger_db: LedgerDB, signer: Signer, key_path: Path, tmp_path: Path
) -> None:
    fill(ledger_db, signer, 3)
    new = _rotate(ledger_db, key_path, 3)
    assert load_signer(key_path, name=NAME, passphrase=None).key_id == new.key_id
    retired = key_path.with_name(f"{key_path.name}.retired-{signer.key_id}")
    assert load_signer(retired, name=NAME, passphrase=None).key_id == signer.key_id
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    with ledger_db.factory() as session:
        assert parse_entry(storage.entry_bytes(session, 3, 4)[0]).key_id == signer.key_id
        assert storage.key_history(session) == [signer.verifier_key, new.verifier_key]

    # A process still holding the old key is told to reload instead of signing.
    with (
        pytest.raises(storage.StaleSigningKey, match="reload the key file"),
        unit_of_work(ledger_db.factory) as session,
    ):
        storage.append(
            session,
            signer=signer,
            entry_type=EntryType.SEARCH_RUN,
            actor=ACTOR,
            payload={},
            now=T0 + timedelta(seconds=9),
        )

    appended = fill(ledger_db, new, 2, start=10)
    assert "\u2014 " + NAME in appended[-1].checkpoint
    newer = _rotate(ledger_db, key_path, 20)
    fill(ledger_db, newer, 1, start=30)
    with ledger_db.factory() as session:
        storage.export_bundle(session, tmp_path / "bundle", checkpoint_interval=2)
    report = verify_log(BundleFetcher(tmp_path / "bundle"), pinned=[signer.verifier_key])
    assert report.keys == (signer.verifier_key, new.verifier_key, newer.verifier_key)
    assert report.size == 8


def test_rotation_rolled_back_leaves_the_key_file_untouched(
    ledger_db: LedgerDB, signer: Signer, key_path: Path
) -> None:
    fill(ledger_db, signer, 1)
    before = key_path.read_bytes()
    session = ledger_db.factory()
    rotate_key(session, key_path=key_path, name=NAME, passphrase=None, now=T0, actor=ACTOR)
    session.rollback()
    session.close()
    assert key_path.read_bytes() == before
    assert sorted(p.name for p in key_path.parent.iterdir()) == [key_path.name]
    fill(ledger_db, signer, 1, start=1)  # the old key is still the ledger's key


def test_failed_rotation_append_leaves_the_key_file_untouched(
    ledger_db: LedgerDB, signer: Signer, key_path: Path
) -> None:
    fill(ledger_db, signer, 1)
    other = key_path.with_name("other.pem")
    generate_key(other, name=NAME, passphrase=None)
    before = other.read_bytes()
    # ``other`` is not the ledger's current key, so the append is refused.
    with pytest.raises(storage.StaleSigningKey), unit_of_work(ledger_db.factory) as session:
        rotate_key(session, key_path=other, name=NAME, passphrase=None, now=T0, actor=ACTOR)
    assert other.read_bytes() == before
    assert sorted(p.name for p in key_path.parent.iterdir()) == [key_path.name, other.name]


def test_rotation_payload_is_checked(ledger_db: LedgerDB, signer: Signer) -> None:
    with pytest.raises(LedgerError, match="new_key"), unit_of_work(ledger_db.factory) as session:
        storage.append(
            session,
            signer=signer,
            entry_type=EntryType.KEY_ROTATE,
            actor=ACTOR,
            payload={"new_key": "nonsense"},
            now=T0,
        )
    with (
        pytest.raises(LedgerError, match="different key"),
        unit_of_work(ledger_db.factory) as session,
    ):
        storage.append(
            session,
            signer=signer,
            entry_type=EntryType.KEY_ROTATE,
            actor=ACTOR,
            payload={"new_key": signer.verifier_key},
            now=T0,
        )


def test_log_secret_is_owner_only_and_keys_distinct_purposes(tmp_path: Path) -> None:
    path = tmp_path / "ledger-secret.key"
    secret = generate_log_secret(path)
    assert path.stat().st_mode & 0o777 == 0o600
    assert load_log_secret(path) == secret
    url = keyed_digest(secret, "url", "https://example.org/a")
    assert url == keyed_digest(secret, "url", "https://example.org/a")
    assert url != keyed_digest(secret, "person", "https://example.org/a")
    assert url != keyed_digest(bytes(32), "url", "https://example.org/a")
    with pytest.raises(KeyFileError):
        generate_log_secret(path)


def test_log_secret_refuses_a_short_or_missing_file(tmp_path: Path) -> None:
    (tmp_path / "short.key").write_text("abcd\n")
    with pytest.raises(KeyFileError, match="32-byte"):
        load_log_secret(tmp_path / "short.key")
    with pytest.raises(KeyFileError, match="cannot load"):
        load_log_secret(tmp_path / "missing.key")
