"""A ledger exported once and stored (``tests/vectors/ledger_bundle``) still verifies, and
today's code still writes it, and the witness states beside it, byte for byte."""

from __future__ import annotations

from pathlib import Path

import pytest

from ledger.bundle import BundleFetcher, TrustedState
from ledger.verify import verify_log
from ledger.witness import verify_increment
from tests.vectors.make_bundle import (
    BUNDLE,
    SIGNERS,
    SIZE,
    STATE_SIZES,
    STATES,
    PinnedFetcher,
    witness_states,
    write_bundle,
)

PINNED = [SIGNERS[0].verifier_key]


def _files(directory: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(directory)): p.read_bytes()
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


def _stored_state(size: int) -> TrustedState:
    state = TrustedState.load(STATES / f"{size}.json")
    assert state is not None
    return state


def test_the_stored_bundle_verifies() -> None:
    report = verify_log(BundleFetcher(BUNDLE), pinned=PINNED)

    assert (report.size, report.checkpoints_checked) == (SIZE, 9)
    assert report.root == _stored_state(SIZE).root
    assert report.keys == tuple(s.verifier_key for s in SIGNERS)


def test_the_code_writes_the_stored_bundle_byte_for_byte(tmp_path: Path) -> None:
    write_bundle(tmp_path / "bundle")

    assert _files(tmp_path / "bundle") == _files(BUNDLE)


@pytest.mark.parametrize(
    ("before", "after"), list(zip((None, *STATE_SIZES), STATE_SIZES, strict=False))
)
def test_the_witness_goes_on_from_a_stored_state(before: int | None, after: int) -> None:
    state = None if before is None else _stored_state(before)

    report, new_state = verify_increment(PinnedFetcher(BUNDLE, after), pinned=PINNED, state=state)

    assert report.new_entries == after - (before or 0)
    assert new_state == _stored_state(after)


def test_the_witness_writes_the_stored_states(tmp_path: Path) -> None:
    for state in witness_states(BUNDLE):
        state.save(tmp_path / f"{state.size}.json")

    assert _files(tmp_path) == _files(STATES)
