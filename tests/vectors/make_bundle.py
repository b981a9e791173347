"""Write ``ledger_bundle/`` and ``ledger_states/``: a small exported ledger pinned byte for byte.

Fixed keys, times and payloads, so the same code writes the same bytes (Ed25519 signatures are
deterministic). The bundle holds a key rotation and earlier checkpoints; the states are what a
witness saves after verifying the log up to 16, 32 and all of its entries. A test verifies the
stored copies with today's verifier and witness and rebuilds both with today's code, so a change
to the entry encoding, the tree, the checkpoints or the witness state shows. Run from the
repository root: ``python -m tests.vectors.make_bundle``.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from governance.core.db import make_engine, make_session_factory, unit_of_work
from ledger import storage
from ledger.bundle import BundleFetcher, TrustedState
from ledger.entry import Actor, EntryType
from ledger.keys import Signer
from ledger.proofs import MemoryTree
from ledger.verify import verify_log
from ledger.witness import verify_increment

__all__ = [
    "BUNDLE",
    "SIGNERS",
    "SIZE",
    "STATES",
    "STATE_SIZES",
    "PinnedFetcher",
    "main",
    "witness_states",
    "write_bundle",
]

HERE = Path(__file__).parent
BUNDLE = HERE / "ledger_bundle"
STATES = HERE / "ledger_states"
NAME = "vectors.example/ledger"
# Test keys, never deployed: the first signs entries 0-19 (19 is the rotation), the second the rest.
SIGNERS = tuple(
    Signer(
        name=NAME,
        private_key=Ed25519PrivateKey.from_private_bytes(
            hashlib.sha256(f"facewarden ledger bundle key {i}".encode()).digest()
        ),
    )
    for i in (1, 2)
)
SIZE = 45
ROTATION = 19
INTERVAL = 8
STATE_SIZES = (16, 32, SIZE)
T0 = datetime(2026, 11, 27, 18, 7, 5, 123456, tzinfo=UTC)
ACTOR = Actor(kind="user", id="7d1f0a52-0000-4000-8000-000000000001", agency="agency-1")


def write_bundle(directory: Path) -> None:
    """Append the fixed entries to a fresh SQLite ledger and export it to ``directory``."""
    with tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(f"sqlite:///{Path(tmp) / 'ledger.sqlite'}")
        factory = make_session_factory(engine)
        with unit_of_work(factory) as session:
            storage.create_tables(session)
        for seq in range(SIZE):
            old, new = SIGNERS
            rotating = seq == ROTATION
            payload: dict[str, object] = (
                {"old_key": old.verifier_key, "new_key": new.verifier_key}
                if rotating
                else {"search": f"s-{seq}", "results": seq % 7}
            )
            with unit_of_work(factory) as session:
                storage.append(
                    session,
                    signer=old if seq <= ROTATION else new,
                    entry_type=EntryType.KEY_ROTATE if rotating else EntryType.SEARCH_RUN,
                    actor=ACTOR,
                    payload=payload,
                    # Two entries share a timestamp: ts may repeat, never run backwards.
                    now=T0 + timedelta(seconds=seq - (seq == 7)),
                )
        with unit_of_work(factory) as session:
            storage.export_bundle(session, directory, checkpoint_interval=INTERVAL)
        engine.dispose()


class PinnedFetcher(BundleFetcher):
    """A bundle served as a live log whose latest checkpoint is the one of ``size``."""

    def __init__(self, directory: Path, size: int) -> None:
        super().__init__(directory)
        self._size = size
        lines = super().entries(0, size)
        self._tree = MemoryTree(hashlib.sha256(b"\x00" + line).digest() for line in lines)
        self._keys = 1 + sum(b'"type":"key:rotate"' in line for line in lines)

    def checkpoint(self) -> str:
        """The checkpoint of the pinned size."""
        latest = super().checkpoint()
        return (
            latest if latest.split("\n")[1] == str(self._size) else self.checkpoints()[self._size]
        )

    def entries(self, start: int, end: int) -> list[bytes]:
        """Entry lines ``[start, min(end, size))``."""
        return super().entries(start, min(end, self._size))

    def verifier_keys(self) -> list[str]:
        """The keys announced within the first ``size`` entries."""
        return super().verifier_keys()[: self._keys]

    def consistency(self, first: int, second: int) -> list[bytes]:
        """The RFC 6962 consistency proof, from the bundle's entries."""
        return self._tree.consistency(first, second)


def witness_states(directory: Path) -> list[TrustedState]:
    """The states a witness saves after verifying ``directory`` up to each of STATE_SIZES."""
    states: list[TrustedState] = []
    state = None
    for size in STATE_SIZES:
        _, state = verify_increment(
            PinnedFetcher(directory, size), pinned=[SIGNERS[0].verifier_key], state=state
        )
        states.append(state)
    return states


def main() -> None:
    """Regenerate the bundle and the witness states."""
    shutil.rmtree(BUNDLE, ignore_errors=True)
    shutil.rmtree(STATES, ignore_errors=True)
    write_bundle(BUNDLE)
    verify_log(BundleFetcher(BUNDLE), pinned=[SIGNERS[0].verifier_key])
    STATES.mkdir()
    for state in witness_states(BUNDLE):
        state.save(STATES / f"{state.size}.json")


if __name__ == "__main__":
    main()
