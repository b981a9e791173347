"""Recording governed acts in the ledger, inside the caller's transaction.

Every service appends through ``record`` so that a change and its entry commit together. The
signing key is held by ``SigningKeys``, which loads the key file again whenever it changed (a
rotation by another process: the ledger refuses entries signed by a retired key) and refuses
to sign while it cannot be read.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from governance.core.errors import ServiceUnavailable
from ledger.entry import Actor, EntryType, LedgerError, MalformedEntry
from ledger.keys import KeyFileError, Signer, keyed_digest, load_log_secret, load_signer
from ledger.storage import Appended, StaleSigningKey, append

__all__ = [
    "SYSTEM",
    "LedgerKeyUnavailable",
    "LedgerUnavailable",
    "SigningKeys",
    "default_secret_path",
    "record",
]

SYSTEM = Actor(kind="system", id="facewarden", agency=None)


class LedgerUnavailable(ServiceUnavailable):
    """The ledger could not record an action, so the action was not carried out."""

    code = "ledger-unavailable"


class LedgerKeyUnavailable(LedgerUnavailable):
    """The ledger signing key file cannot be read, so nothing can be recorded or carried out."""

    code = "ledger-key-unavailable"


@dataclass(slots=True)
class SigningKeys:
    """The ledger key file, loaded again whenever it changes, and the log's hash secret.

    The file is looked at (one ``stat``) on every use, not only when the ledger says the loaded
    key is stale, because the file is the operators' statement of which key signs. One that
    was replaced is loaded again (a rotation here or by another process, a file put back). One
    that is gone, unreadable or holds no key stops this process signing, as it stops every
    process started after it: going on with the copy in memory would let the processes that
    happen to be running sign with a key the operators withdrew, while a restarted worker
    cannot start. Acts are then refused (``LedgerKeyUnavailable``) until the file reads again,
    with no restart.

    The hash secret (``secret_path``, by default ``<key dir>/ledger-secret.key``) keys the
    digests the ledger keeps of personal data; it never rotates, so that digests made years
    apart still compare equal.
    """

    path: Path
    name: str
    passphrase: str | None = field(default=None, repr=False)
    secret_path: Path | None = None
    _signer: Signer | None = field(default=None, repr=False)
    _loaded_from: tuple[int, int, int, int] | None = field(default=None, repr=False)
    _secret: bytes | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def current(self) -> Signer:
        """The signer the key file holds, loaded again if the file changed since it was read.

        Raises ledger.keys.KeyFileError when the file cannot be read.
        """
        with self._lock:
            identity = self._identity()
            if self._signer is None or identity != self._loaded_from:
                self._load(identity)
            assert self._signer is not None
            return self._signer

    def reload(self) -> Signer:
        """Read the key file again. Raises ledger.keys.KeyFileError."""
        with self._lock:
            self._load(self._identity())
            assert self._signer is not None
            return self._signer

    def _identity(self) -> tuple[int, int, int, int]:
        """What changes when the file is replaced or rewritten. Raises KeyFileError."""
        try:
            st = os.stat(self.path)
        except OSError as exc:
            self._signer = None
            raise KeyFileError(f"cannot load ledger key {self.path}: {exc}") from exc
        return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)

    def _load(self, identity: tuple[int, int, int, int]) -> None:
        self._signer = None  # until the file reads again, nothing signs
        self._signer = load_signer(self.path, name=self.name, passphrase=self.passphrase)
        self._loaded_from = identity

    @property
    def resolved_secret_path(self) -> Path:
        """Where the log's hash secret lives."""
        return self.secret_path or default_secret_path(self.path)

    def keyed(self, purpose: str, value: str) -> str:
        """The keyed digest of ``value`` for ``purpose`` (see ledger.keys.keyed_digest).

        Raises LedgerUnavailable when the secret file cannot be read.
        """
        with self._lock:
            if self._secret is None:
                try:
                    self._secret = load_log_secret(self.resolved_secret_path)
                except LedgerError as exc:
                    raise LedgerUnavailable(
                        f"{exc}: run `facewarden init` to create it, or set "
                        "FACEWARDEN_LEDGER_SECRET_PATH"
                    ) from exc
            secret = self._secret
        return keyed_digest(secret, purpose, value)


def default_secret_path(key_path: Path) -> Path:
    """The hash secret beside a signing key file: ``<dir>/ledger-secret.key``."""
    return Path(key_path).with_name("ledger-secret.key")


def record(
    session: Session,
    *,
    keys: SigningKeys,
    entry_type: EntryType,
    actor: Actor,
    payload: Mapping[str, Any],
    now: datetime,
) -> Appended:
    """Append one entry in the caller's transaction, following a key rotation if one happened.

    Raises LedgerUnavailable when the ledger cannot append (the caller's transaction must then
    roll back), MalformedEntry for a payload no entry can hold.
    """

    def append_signed_by(signer: Signer) -> Appended:
        return append(
            session, signer=signer, entry_type=entry_type, actor=actor, payload=payload, now=now
        )

    try:
        try:
            return append_signed_by(keys.current())
        except StaleSigningKey:
            # Another process rotated the key: the file now holds the announced one.
            return append_signed_by(keys.reload())
    except MalformedEntry:
        raise  # a programming error in the caller's payload: let it surface as one
    except KeyFileError as exc:
        raise LedgerKeyUnavailable(
            "the ledger signing key (FACEWARDEN_LEDGER_KEY_PATH) cannot be read, so this action "
            "was not carried out: operators, put the key file back (readable by the service, "
            "with its FACEWARDEN_LEDGER_KEY_PASSPHRASE); the service resumes by itself"
        ) from exc
    except LedgerError as exc:
        raise LedgerUnavailable(
            "the audit ledger cannot record this action, so it was not carried out; "
            "retry later or alert the operators"
        ) from exc
