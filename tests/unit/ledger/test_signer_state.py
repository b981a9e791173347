"""The signer state: the signer never signs two roots for one size, whatever the database says.

Each attack is what a database owner without the key can do (tests/ledger_cut.py); on SQLite
and, with FACEWARDEN_TEST_DATABASE_URL, on PostgreSQL.
"""

from __future__ import annotations

import json
import threading
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from governance.core.db import unit_of_work
from ledger import storage
from ledger.entry import EntryType
from ledger.keys import Signer
from ledger.signer_state import LedgerInconsistent, SignedHead, SignerState
from tests.ledger_cut import cut

from .conftest import ACTOR, NAME, T0, LedgerDB, fill


def _append(db: LedgerDB, signer: Signer, state: SignerState | None, i: int) -> storage.Appended:
    """One append in its own transaction; the state advances once it has committed."""
    with unit_of_work(db.factory) as session:
        appended = storage.append(
            session,
            signer=signer,
            entry_type=EntryType.SEARCH_RUN,
            actor=ACTOR,
            payload={"search": f"s-{i}"},
            now=T0 + timedelta(seconds=i),
            state=state,
        )
    if state is not None:
        state.advance(appended.head)
    return appended


def _signed(db: LedgerDB, signer: Signer, state: SignerState, count: int) -> list[storage.Appended]:
    return [_append(db, signer, state, i) for i in range(count)]


def _checkpoint_sizes(db: LedgerDB) -> list[int]:
    with db.factory() as session:
        return list(session.scalars(select(storage.checkpoints.c.size)))


@pytest.fixture
def state(tmp_path: Path) -> SignerState:
    return SignerState(tmp_path / "keys" / "ledger-signer-state.json")


def test_each_committed_append_is_recorded_and_the_next_one_extends_it(
    ledger_db: LedgerDB, signer: Signer, state: SignerState
) -> None:
    appended = _signed(ledger_db, signer, state, 3)
    assert state.read() == SignedHead(origin=NAME, size=3, root=appended[-1].root)
    assert state.path.stat().st_mode & 0o777 == 0o600


def test_a_cut_log_is_refused_and_nothing_is_signed(
    ledger_db: LedgerDB, signer: Signer, state: SignerState
) -> None:
    _signed(ledger_db, signer, state, 10)
    assert cut(ledger_db.engine, keep=7) == 3
    with pytest.raises(
        LedgerInconsistent, match=r"holds 7 ledger entries.*signed a checkpoint of 10"
    ):
        _append(ledger_db, signer, state, 7)
    assert _checkpoint_sizes(ledger_db) == list(range(1, 8))  # the cut one, nothing new
    kept = state.read()
    assert kept is not None and kept.size == 10


def test_a_log_regrown_to_its_size_with_other_entries_is_refused(
    ledger_db: LedgerDB, signer: Signer, state: SignerState
) -> None:
    _signed(ledger_db, signer, state, 10)
    cut(ledger_db.engine, keep=7)
    fill(ledger_db, signer, 3, start=100)  # by a process that does not check the state
    with pytest.raises(LedgerInconsistent, match="does not contain the checkpoint of 10"):
        _append(ledger_db, signer, state, 10)
    assert max(_checkpoint_sizes(ledger_db)) == 10


def test_a_log_regrown_past_its_size_is_refused_by_the_checked_proof(
    ledger_db: LedgerDB, signer: Signer, state: SignerState
) -> None:
    _signed(ledger_db, signer, state, 10)
    cut(ledger_db.engine, keep=4)
    fill(ledger_db, signer, 12, start=100)
    with pytest.raises(LedgerInconsistent, match="tree of 16 entries does not contain"):
        _append(ledger_db, signer, state, 16)


def test_a_lagging_state_is_caught_up_through_a_consistency_proof(
    ledger_db: LedgerDB, signer: Signer, state: SignerState
) -> None:
    # Another process appended meanwhile, or this one died between a commit and its record.
    _signed(ledger_db, signer, state, 5)
    fill(ledger_db, signer, 6, start=5)
    appended = _append(ledger_db, signer, state, 11)
    assert appended.seq == 11
    assert state.read() == SignedHead(origin=NAME, size=12, root=appended.root)


def test_a_state_of_another_log_or_garbage_refuses_and_a_missing_one_is_started(
    ledger_db: LedgerDB, signer: Signer, state: SignerState
) -> None:
    state.path.parent.mkdir(parents=True, exist_ok=True)
    other = SignedHead(origin="other.example/log", size=0, root=bytes(32))
    state.advance(other)
    with pytest.raises(LedgerInconsistent, match=r"belongs to the log 'other\.example/log'"):
        _append(ledger_db, signer, state, 0)
    state.path.write_text("{not json")
    with pytest.raises(LedgerInconsistent, match="is not a signer state"):
        _append(ledger_db, signer, state, 0)
    state.path.unlink()
    appended = _append(ledger_db, signer, state, 0)
    assert state.read() == appended.head


def test_the_state_only_moves_forward(tmp_path: Path) -> None:
    state = SignerState(tmp_path / "state.json")
    heads = [SignedHead(origin=NAME, size=n, root=bytes([n]) * 32) for n in range(1, 41)]
    threads = [threading.Thread(target=state.advance, args=(h,)) for h in reversed(heads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert state.read() == heads[-1]
    state.advance(heads[3])
    assert state.read() == heads[-1]
    assert json.loads(state.path.read_text())["size"] == 40
    assert not list(tmp_path.glob(".state.json.*.tmp"))
