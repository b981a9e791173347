"""The sealing of the keys in a backup, and a missing PostgreSQL client named clearly."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from sqlalchemy import create_engine

from governance.gallery.backup import BackupError, backup, open_keys, seal_keys
from governance.gallery.blobs import FileBlobStore

FILES = {"ledger_key": b"-----BEGIN PRIVATE KEY-----\n...", "ledger_secret": b"00ff" * 16}


def test_sealed_keys_open_with_their_passphrase_only() -> None:
    sealed = seal_keys(FILES, "right")
    assert open_keys(sealed, "right") == FILES
    assert FILES["ledger_secret"] not in sealed
    assert seal_keys(FILES, "right") != sealed  # a fresh salt and nonce each time
    with pytest.raises(BackupError, match="wrong passphrase"):
        open_keys(sealed, "wrong")


def test_the_header_is_covered_by_the_seal() -> None:
    sealed = seal_keys(FILES, "right")
    # A cheaper scrypt cost written into the header no longer opens the keys.
    weakened = sealed.replace(b'"n": 32768', b'"n": 16384', 1)
    assert weakened != sealed
    with pytest.raises(BackupError):
        open_keys(weakened, "right")
    with pytest.raises(BackupError, match="not one FaceWarden wrote"):
        open_keys(b"PK\x03\x04 a zip file", "right")


def test_a_missing_pg_dump_names_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = os.environ.get("FACEWARDEN_TEST_DATABASE_URL") or ""
    if not url.startswith("postgresql"):
        pytest.skip("FACEWARDEN_TEST_DATABASE_URL names no PostgreSQL database")
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    engine = create_engine(url)
    try:
        with pytest.raises(BackupError, match=r"pg_dump is not installed.*postgresql-client"):
            backup(
                engine,
                photos=FileBlobStore(tmp_path / "photos"),
                target=tmp_path / "backup",
                recognizer_sha256="0" * 64,
                app_version="test",
            )
    finally:
        engine.dispose()
