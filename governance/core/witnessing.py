"""Getting the log's checkpoints cosigned by its witnesses, outside every request.

A thread of each process wakes every ``interval`` seconds, and the first process of the host
to take the lock file submits the newest checkpoint to each witness named in
``FACEWARDEN_WITNESSES`` (C2SP tlog-witness), with a consistency proof from the size the
witness holds. It learns that size from the witness's 409 answer when it does not know it
(after a start, or when another host submitted meanwhile). Verified cosignatures are kept
(``ledger.cosigned``); ``GET /v1/ledger/checkpoint`` then serves the newest checkpoint that a
quorum cosigned. A witness that is down or refuses is logged and tried again at the next
round: searches never wait for a witness.

A witness holding a size above the log's is evidence that the log was cut or rolled back
after that witness saw it: it is logged as critical and reported by ``/readyz``.
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from governance.core.db import unit_of_work
from ledger.checkpoint import parse_checkpoint, split_note
from ledger.cosigned import add_cosignature
from ledger.signer_state import SignerState
from ledger.storage import consistency_proof, latest_checkpoint
from ledger.witness_client import Cosigned, Failed, Stale, WitnessEndpoint, submit

__all__ = ["Witnessing"]

log = logging.getLogger(__name__)

_ATTEMPTS = 3  # a 409 teaches the witness's size; the next attempt uses it


@dataclass
class Witnessing:
    """The submissions of one process (see the module)."""

    sessions: sessionmaker[Session]
    witnesses: Sequence[WitnessEndpoint]
    lock_path: Path
    # Where a quorum's sizes beyond the log's are recorded, so that the signer refuses them.
    state: SignerState
    quorum: int = 1
    timeout: float = 5.0
    interval: float = 1.0
    # What each witness holds, as far as this process knows, and how its last round went.
    sizes: dict[str, int] = field(default_factory=dict)
    status: dict[str, str] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event, repr=False)
    _thread: threading.Thread | None = field(default=None, repr=False)

    def start(self) -> None:
        """Submit every ``interval`` seconds in a daemon thread, until ``stop``."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="witnessing", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """End the thread (after its current round)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.timeout * _ATTEMPTS * len(self.witnesses) + 5)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.run_once()
            except Exception:  # the thread must outlive a database or a network outage
                log.exception("witness round failed; the next one is in %.1f s", self.interval)

    def run_once(self) -> dict[str, str]:
        """One round, if no other process of this host is in one: returns each witness's
        status (also in ``status``)."""
        self.lock_path.parent.mkdir(parents=True, exist_ok=True)
        lock = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return dict(self.status)
            # Each read is a short transaction of its own: on SQLite one holds the write lock,
            # and none may stay open across a witness's answer.
            with self.sessions() as session:
                note = latest_checkpoint(session)
            if note is None:
                return dict(self.status)
            checkpoint = parse_checkpoint(split_note(note).text)
            for witness in self.witnesses:
                self.status[witness.name] = self._submit(witness, note, checkpoint.size)
            self._record_witnessed(checkpoint.origin, checkpoint.size)
        finally:
            os.close(lock)
        return dict(self.status)

    def _record_witnessed(self, origin: str, size: int) -> None:
        # The size a quorum of witnesses vouch for: the quorum-th largest they hold. One lying
        # witness cannot stop the log; as many as it takes to publish a checkpoint can.
        held = sorted((self.sizes.get(w.name, 0) for w in self.witnesses), reverse=True)
        vouched = held[self.quorum - 1] if len(held) >= self.quorum else 0
        if vouched > size:
            log.critical(
                "%d witnesses have cosigned %d entries of this log, which holds %d: nothing will "
                "be signed until the newer log is restored",
                self.quorum,
                vouched,
                size,
            )
            self.state.raise_witnessed(origin, vouched)

    def _proof(self, old: int, size: int) -> list[bytes]:
        if not 0 < old < size:
            return []
        with self.sessions() as session:
            return consistency_proof(session, first=old, second=size)

    def _submit(self, witness: WitnessEndpoint, note: str, size: int) -> str:
        for _ in range(_ATTEMPTS):
            old = self.sizes.get(witness.name, 0)
            if old > size:
                log.critical(
                    "witness %s has cosigned a checkpoint of %d entries, but the log holds %d: "
                    "the log was cut or rolled back after that witness saw it",
                    witness.name,
                    old,
                    size,
                )
                return f"holds size {old}, beyond the log's {size}: the log was cut"
            if old == size and self.status.get(witness.name) == "ok":
                return "ok"
            outcome = submit(witness, old, self._proof(old, size), note, timeout=self.timeout)
            if isinstance(outcome, Stale):
                self.sizes[witness.name] = outcome.size
                continue
            if isinstance(outcome, Failed):
                log.warning(
                    "witness %s did not cosign the checkpoint of %d: %s %s",
                    witness.name,
                    size,
                    outcome.status or "no answer",
                    outcome.detail,
                )
                return f"failed: {outcome.status or 'no answer'} {outcome.detail}"[:300]
            assert isinstance(outcome, Cosigned)
            with unit_of_work(self.sessions) as writing:
                add_cosignature(
                    writing,
                    size=size,
                    witness=witness.name,
                    key_id=outcome.cosignature.key_id.hex(),
                    timestamp=outcome.cosignature.timestamp,
                    line=outcome.line,
                )
            self.sizes[witness.name] = size
            return "ok"
        return f"failed: its size kept changing ({self.sizes.get(witness.name)})"
