"""``ledger.witness``: incremental live verification, and what it refuses (rollback, fork,
rewritten entries), leaving the trusted state where it was."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy.orm import Session

from governance.core.db import unit_of_work
from ledger import storage
from ledger.bundle import BundleFetcher, TrustedState
from ledger.entry import EntryType
from ledger.keys import Signer, rotate_key
from ledger.verify import VerificationError, verify_log
from ledger.witness import verify_increment

from .conftest import ACTOR, NAME, T0, LedgerDB, fill


class StorageFetcher:
    """A live log read straight from the ledger tables; ``size`` pins the served checkpoint."""

    def __init__(self, db: LedgerDB, *, size: int | None = None) -> None:
        self.db = db
        self.size = size
        self.reads: list[tuple[int, int]] = []

    def _session(self) -> Session:
        return self.db.factory()

    def checkpoint(self) -> str:
        with self._session() as s:
            if self.size is None:
                note = storage.latest_checkpoint(s)
                assert note is not None
                return note
            return storage.checkpoint_notes(s, [self.size])[self.size]

    def checkpoints(self) -> dict[int, str]:
        return {}

    def entries(self, start: int, end: int) -> list[bytes]:
        self.reads.append((start, end))
        with self._session() as s:
            return storage.entry_bytes(s, start, min(end, storage.tree_size(s)))

    def verifier_keys(self) -> list[str]:
        with self._session() as s:
            return storage.key_history(s)

    def integrity_problems(self) -> list[str]:
        return []

    def consistency(self, first: int, second: int) -> list[bytes]:
        with self._session() as s:
            return storage.consistency_proof(s, first=first, second=second)


def test_incremental_reads_only_what_is_new(sqlite_db: LedgerDB, signer: Signer) -> None:
    fill(sqlite_db, signer, 13)
    fetcher = StorageFetcher(sqlite_db)
    report, state = verify_increment(fetcher, pinned=[signer.verifier_key], state=None)
    assert (report.size, report.new_entries, report.previous_size) == (13, 13, None)
    assert state.incremental and len(state.cover) == 3  # 13 = 8 + 4 + 1
    for extra in (1, 2, 16, 0):
        before = state.size
        fill(sqlite_db, signer, extra, start=before)
        fetcher.reads.clear()
        report, state = verify_increment(fetcher, pinned=[signer.verifier_key], state=state)
        assert report.new_entries == extra and report.previous_size == before
        assert fetcher.reads == [(before, before + extra)]
    assert state.size == 32 and len(state.cover) == 1


def test_state_survives_a_file_and_a_key_rotation(
    sqlite_db: LedgerDB, signer: Signer, key_path: Path, tmp_path: Path
) -> None:
    fill(sqlite_db, signer, 5)
    fetcher = StorageFetcher(sqlite_db)
    _, state = verify_increment(fetcher, pinned=[signer.verifier_key], state=None)
    path = tmp_path / "witness.json"
    state.save(path)
    with unit_of_work(sqlite_db.factory) as session:
        _, new = rotate_key(
            session,
            key_path=key_path,
            name=NAME,
            passphrase=None,
            now=T0 + timedelta(seconds=30),
            actor=ACTOR,
        )
    fill(sqlite_db, new, 4, start=6)
    loaded = TrustedState.load(path)
    assert loaded == state
    report, state = verify_increment(fetcher, pinned=[signer.verifier_key], state=loaded)
    assert report.keys == (signer.verifier_key, new.verifier_key) and state.size == 10
    assert state.last_key_id == new.key_id


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda cover: cover[:-1], "the state's compact range is unusable: a tree of size 13"),
        (lambda cover: (cover[1], cover[0], cover[2]), "does not fold into its trusted root"),
    ],
)
def test_a_state_whose_compact_range_is_not_its_root_is_refused(
    sqlite_db: LedgerDB,
    signer: Signer,
    change: Callable[[tuple[bytes, ...]], tuple[bytes, ...]],
    message: str,
) -> None:
    fill(sqlite_db, signer, 13)
    fetcher = StorageFetcher(sqlite_db)
    _, state = verify_increment(fetcher, pinned=[signer.verifier_key], state=None)
    fill(sqlite_db, signer, 2, start=13)

    with pytest.raises(VerificationError, match=message) as caught:
        verify_increment(
            fetcher, pinned=[signer.verifier_key], state=replace(state, cover=change(state.cover))
        )
    assert caught.value.step == 4


def test_a_bundle_state_is_checked_against_the_whole_log(
    sqlite_db: LedgerDB, signer: Signer, tmp_path: Path
) -> None:
    fill(sqlite_db, signer, 9)
    with sqlite_db.factory() as session:
        storage.export_bundle(session, tmp_path / "b")
    bundle = verify_log(BundleFetcher(tmp_path / "b"), pinned=[signer.verifier_key])
    plain = TrustedState(
        NAME, bundle.size, bundle.root, (tmp_path / "b" / "checkpoint").read_text()
    )
    assert not plain.incremental
    fill(sqlite_db, signer, 3, start=9)
    fetcher = StorageFetcher(sqlite_db)
    report, state = verify_increment(fetcher, pinned=[signer.verifier_key], state=plain)
    assert report.previous_size == 9 and fetcher.reads == [(0, 12)] and state.incremental


def test_rollback_is_refused_with_both_checkpoints(sqlite_db: LedgerDB, signer: Signer) -> None:
    fill(sqlite_db, signer, 10)
    _, state = verify_increment(StorageFetcher(sqlite_db), pinned=[signer.verifier_key], state=None)
    with pytest.raises(VerificationError, match="rollback") as caught:
        verify_increment(
            StorageFetcher(sqlite_db, size=6), pinned=[signer.verifier_key], state=state
        )
    assert caught.value.step == 2
    assert caught.value.evidence["trusted_checkpoint"] == state.checkpoint
    assert caught.value.evidence["checkpoint"].split("\n")[1] == "6"


def test_a_fork_is_refused_with_the_proof(
    sqlite_db: LedgerDB, signer: Signer, tmp_path: Path
) -> None:
    """Two logs under the same key share 6 entries, then diverge: a witness of one refuses
    the other, and its consistency proof is the evidence."""
    from governance.core.db import make_engine, make_session_factory

    engine = make_engine(f"sqlite:///{tmp_path / 'fork.sqlite'}")
    forked = LedgerDB("sqlite", engine, make_session_factory(engine))
    with unit_of_work(forked.factory) as session:
        storage.create_tables(session)
    fill(sqlite_db, signer, 6)
    fill(forked, signer, 6)
    fill(sqlite_db, signer, 4, start=6)
    with unit_of_work(forked.factory) as session:
        for i in range(7):
            storage.append(
                session,
                signer=signer,
                entry_type=EntryType.SEARCH_RUN,
                actor=ACTOR,
                payload={"search": f"fork-{i}"},
                now=T0 + timedelta(seconds=60 + i),
            )
    _, state = verify_increment(StorageFetcher(sqlite_db), pinned=[signer.verifier_key], state=None)
    with pytest.raises(VerificationError, match="fork") as caught:
        verify_increment(StorageFetcher(forked), pinned=[signer.verifier_key], state=state)
    evidence = caught.value.evidence
    assert caught.value.step == 2 and evidence["proof"]
    assert evidence["trusted_checkpoint"] == state.checkpoint
    assert evidence["checkpoint"].split("\n")[1] == "13"
    engine.dispose()


class Rewriting(StorageFetcher):
    """Serves one entry with a flipped byte (a rewritten history under a valid checkpoint)."""

    def entries(self, start: int, end: int) -> list[bytes]:
        lines = super().entries(start, end)
        if start <= 11 < start + len(lines):
            line = lines[11 - start]
            lines[11 - start] = line.replace(b'"results":4', b'"results":5')
        return lines


def test_rewritten_entries_are_refused(sqlite_db: LedgerDB, signer: Signer) -> None:
    fill(sqlite_db, signer, 8)
    _, state = verify_increment(StorageFetcher(sqlite_db), pinned=[signer.verifier_key], state=None)
    fill(sqlite_db, signer, 6, start=8)
    with pytest.raises(VerificationError, match="signature") as caught:
        verify_increment(Rewriting(sqlite_db), pinned=[signer.verifier_key], state=state)
    assert caught.value.seq == 11


def test_an_unpinned_first_key_is_refused(sqlite_db: LedgerDB, signer: Signer) -> None:
    fill(sqlite_db, signer, 3)
    other = Signer(name=NAME, private_key=Ed25519PrivateKey.generate())
    with pytest.raises(VerificationError, match="not a pinned key"):
        verify_increment(StorageFetcher(sqlite_db), pinned=[other.verifier_key], state=None)
