"""Recording governed acts in the ledger, inside the caller's transaction.

Every service appends through ``record`` so that a change and its entry commit together. The
signing key is held by ``SigningKeys``, which reloads the key file when another process has
rotated it (the ledger refuses entries signed by a retired key).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from governance.core.errors import ServiceUnavailable
from ledger.entry import Actor, EntryType, LedgerError, MalformedEntry
from ledger.keys import Signer, keyed_digest, load_log_secret, load_signer
from ledger.storage import Appended, StaleSigningKey, append

__all__ = ["SYSTEM", "LedgerUnavailable", "SigningKeys", "default_secret_path", "record"]

SYSTEM = Actor(kind="system", id="facewarden", agency=None)


class LedgerUnavailable(ServiceUnavailable):
    """The ledger could not record an action, so the action was not carried out."""

    code = "ledger-unavailable"


@dataclass(slots=True)
class SigningKeys:
    """The ledger key file, loaded once and reloaded after a rotation, and the log's hash secret.

    The hash secret (``secret_path``, by default ``<key dir>/ledger-secret.key``) keys the
    digests the ledger keeps of personal data; it never rotates, so that digests made years
    apart still compare equal.
    """

    path: Path
    name: str
    passphrase: str | None = field(default=None, repr=False)
    secret_path: Path | None = None
    _signer: Signer | None = field(default=None, repr=False)
    _secret: bytes | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def current(self) -> Signer:
        """The loaded signer. Raises ledger.keys.KeyFileError when the file cannot be read."""
        with self._lock:
            if self._signer is None:
                self._signer = load_signer(self.path, name=self.name, passphrase=self.passphrase)
            return self._signer

    def reload(self) -> Signer:
        """Read the key file again. Raises ledger.keys.KeyFileError."""
        with self._lock:
            self._signer = load_signer(self.path, name=self.name, passphrase=self.passphrase)
            return self._signer

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
    except LedgerError as exc:
        raise LedgerUnavailable(
            "the audit ledger cannot record this action, so it was not carried out; "
            "retry later or alert the operators"
        ) from exc
