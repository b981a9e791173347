"""The signer's own record of the newest checkpoint it signed, kept beside its key.

The database holds the log, and whoever can write to it (drop the append-only triggers, delete
the newest rows, put the triggers back) could make the server reuse sequence numbers and sign a
second root for a size it already signed. The signer therefore never takes the database's word
for what it signed. It keeps the size and root of its newest committed checkpoint in a small
file (``SignerState``), and before it signs the next checkpoint it requires the tree it is about
to extend to contain that one:

- the same size: the same root;
- a larger size (another process appended since, or this process died before it wrote its
  state): an RFC 6962 consistency proof, built from the tree's own storage, from the state's
  tree to this one. The proof is checked, not trusted: nodes rewritten in the database do not
  verify;
- a smaller size: the log was cut or rolled back, and nothing is signed.

Any failure raises ``LedgerInconsistent``, so every append fails until an operator has found
out what happened to the database. After the transaction that holds a checkpoint commits, and
before the act is answered, ``advance`` records it: written to a temporary file, fsync'd,
renamed over the state and the directory fsync'd, under an exclusive ``flock`` so that the
processes sharing the file only ever move it forwards.

What it cannot see: the one checkpoint committed in the instant between a commit and its
``advance`` when the process dies there, and a log cut on another host whose state file lags
(each host keeps its own). Witnesses (C2SP tlog-witness) close both.

Imports only the standard library and the ledger's own hashing and verification.
"""

from __future__ import annotations

import base64
import binascii
import fcntl
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from ledger.checks import VerificationError
from ledger.durable import replace_durably
from ledger.entry import LedgerError
from ledger.hashing import EMPTY_ROOT, HASH_SIZE
from ledger.verify import verify_consistency

__all__ = ["LedgerInconsistent", "SignedHead", "SignerState"]

_FORMAT = "facewarden-signer-state/1"


@dataclass(frozen=True, slots=True)
class SignedHead:
    """A checkpoint the signer signed: the log's origin, the tree size and its root; and the
    size that a quorum of the log's witnesses have cosigned (``witnessed``), below which the
    signer signs nothing either."""

    origin: str
    size: int
    root: bytes
    witnessed: int = 0


class LedgerInconsistent(LedgerError):
    """The database's log does not extend the newest checkpoint this signer signed."""

    def __init__(self, detail: str, *, signed: SignedHead | None = None) -> None:
        super().__init__(detail)
        self.signed = signed


class SignerState:
    """The state file at ``path``: what this host's signer signed last (see the module)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def read(self) -> SignedHead | None:
        """The recorded head, or None when the file does not exist (a signer that has not
        signed yet). Raises LedgerInconsistent when the file cannot be read or parsed."""
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise LedgerInconsistent(f"cannot read the signer state {self.path}: {exc}") from exc
        try:
            data = json.loads(raw)
            if data.get("format") != _FORMAT:
                raise ValueError(f"format is not {_FORMAT}")
            root = base64.b64decode(data["root"], validate=True)
            head = SignedHead(
                origin=str(data["origin"]),
                size=int(data["size"]),
                root=root,
                witnessed=int(data.get("witnessed", 0)),
            )
        except (ValueError, KeyError, TypeError, AttributeError, binascii.Error) as exc:
            raise LedgerInconsistent(
                f"the signer state {self.path} is not a signer state ({exc}): restore it from "
                "the backup taken with the key"
            ) from exc
        if head.size < 0 or len(head.root) != HASH_SIZE:
            raise LedgerInconsistent(f"the signer state {self.path} holds an impossible head")
        return head

    def check(
        self,
        origin: str,
        size: int,
        root: bytes,
        consistency: Callable[[int, int], Sequence[bytes]],
    ) -> SignedHead | None:
        """Require the tree ``(size, root)`` that the next entry extends to contain the recorded
        head; ``consistency(first, second)`` gives the stored consistency proof between two
        sizes. Returns the recorded head (None when there is none yet).

        Raises LedgerInconsistent, with the recorded head, when it does not.
        """
        signed = self.read()
        self.require(signed, origin, size, root, consistency)
        return signed

    def require(
        self,
        signed: SignedHead | None,
        origin: str,
        size: int,
        root: bytes,
        consistency: Callable[[int, int], Sequence[bytes]],
    ) -> None:
        """``check`` against a head read before: a reader outside the append lock must read
        the state first and the tree after, or an append committed in between would look like
        a cut (the state moves only after a commit). Raises LedgerInconsistent."""
        if signed is None:
            return
        if signed.origin != origin:
            raise LedgerInconsistent(
                f"the signer state {self.path} belongs to the log {signed.origin!r}, not "
                f"{origin!r}: FACEWARDEN_LEDGER_STATE_PATH names another log's state",
                signed=signed,
            )
        if size < signed.witnessed:
            raise LedgerInconsistent(
                f"the database holds {size} ledger entries, but the log's witnesses have "
                f"cosigned a checkpoint of {signed.witnessed}: it was restored from an older "
                "backup or cut, and nothing will be signed over what they saw until an operator "
                "restores the newer log",
                signed=signed,
            )
        if size < signed.size:
            raise LedgerInconsistent(
                f"the database holds {size} ledger entries, but this signer already signed a "
                f"checkpoint of {signed.size}: the log was cut or rolled back, and nothing will "
                "be signed until an operator restores the database",
                signed=signed,
            )
        try:
            proof = consistency(signed.size, size) if 0 < signed.size < size else []
            verify_consistency(signed.size, size, signed.root, root, proof)
        except (VerificationError, LedgerError) as exc:
            raise LedgerInconsistent(
                f"the database's tree of {size} entries does not contain the checkpoint of "
                f"{signed.size} this signer signed ({exc}): the log was rewritten, and nothing "
                "will be signed until an operator restores the database",
                signed=signed,
            ) from exc

    def advance(self, head: SignedHead) -> None:
        """Record ``head`` durably unless the file already holds a larger (or the same) size.

        Raises OSError when the file cannot be written, LedgerInconsistent when it holds no
        signer state (it is left for an operator to look at).
        """
        self.path.parent.mkdir(parents=True, exist_ok=True)
        lock = os.open(self.path.with_name(self.path.name + ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(lock, fcntl.LOCK_EX)
            current = self.read()
            if current is not None and current.size >= head.size:
                return
            witnessed = max(head.witnessed, current.witnessed if current else 0)
            self._write(replace(head, witnessed=witnessed))
        finally:
            os.close(lock)  # releases the flock

    def raise_witnessed(self, origin: str, size: int) -> None:
        """Record that a quorum of witnesses have cosigned a checkpoint of ``size`` entries: the
        signer refuses every tree smaller than that from now on. Raises OSError,
        LedgerInconsistent (a state that is not one, or of another origin)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        lock = os.open(self.path.with_name(self.path.name + ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(lock, fcntl.LOCK_EX)
            current = self.read() or SignedHead(origin=origin, size=0, root=EMPTY_ROOT)
            if current.origin != origin:
                raise LedgerInconsistent(f"the signer state {self.path} is another log's")
            if current.witnessed < size:
                self._write(replace(current, witnessed=size))
        finally:
            os.close(lock)

    def _write(self, head: SignedHead) -> None:
        body = json.dumps(
            {
                "format": _FORMAT,
                "origin": head.origin,
                "size": head.size,
                "root": base64.b64encode(head.root).decode(),
                "witnessed": head.witnessed,
            },
            sort_keys=True,
        ).encode()
        replace_durably(self.path, body + b"\n")
