"""Bundle export (``ledger.storage.export_bundle``) and the offline ``BundleFetcher``."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from ledger import storage
from ledger.bundle import BundleError, BundleFetcher
from ledger.keys import Signer

from .conftest import LedgerDB, fill


def test_export_layout_and_manifest(ledger_db: LedgerDB, signer: Signer, tmp_path: Path) -> None:
    appended = fill(ledger_db, signer, 21)
    with ledger_db.factory() as session:
        assert storage.export_bundle(session, tmp_path / "b", checkpoint_interval=6) == 21
    b = tmp_path / "b"
    assert (b / "entries.jsonl").read_bytes() == b"".join(a.entry + b"\n" for a in appended)
    assert (b / "checkpoint").read_text() == appended[-1].checkpoint
    assert sorted(int(p.name) for p in (b / "checkpoints").iterdir()) == [1, 2, 4, 6, 8, 12, 16, 18]
    assert (b / "checkpoints" / "12").read_text() == appended[11].checkpoint
    assert (b / "keys").read_text() == signer.verifier_key + "\n"
    manifest = json.loads((b / "manifest.json").read_text())
    assert manifest["size"] == 21 and manifest["origin"] == signer.name
    for name, digest in manifest["files"].items():
        data = (b / name).read_bytes()
        assert digest == {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    fetcher = BundleFetcher(b)
    assert fetcher.entries(3, 5) == [appended[3].entry, appended[4].entry]
    assert fetcher.verifier_keys() == [signer.verifier_key]
    assert fetcher.checkpoints()[16] == appended[15].checkpoint
    assert fetcher.integrity_problems() == []
    (b / "keys").write_text(signer.verifier_key + "\n\n")
    assert fetcher.integrity_problems() == ["keys: size or sha256 differs from manifest.json"]


def test_export_refuses_empty_log_and_non_empty_directory(
    ledger_db: LedgerDB, signer: Signer, tmp_path: Path
) -> None:
    with ledger_db.factory() as session, pytest.raises(BundleError, match="empty"):
        storage.export_bundle(session, tmp_path / "empty")
    fill(ledger_db, signer, 1)
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    with ledger_db.factory() as session, pytest.raises(BundleError, match="not empty"):
        storage.export_bundle(session, tmp_path / "full")


def test_fetcher_reports_unreadable_files(tmp_path: Path) -> None:
    fetcher = BundleFetcher(tmp_path)
    with pytest.raises(BundleError, match="cannot read"):
        fetcher.checkpoint()
    with pytest.raises(BundleError, match="cannot read"):
        fetcher.entries(0, 1)
    (tmp_path / "entries.jsonl").write_bytes(b"{}")
    with pytest.raises(BundleError, match="newline"):
        BundleFetcher(tmp_path).entries(0, 1)
