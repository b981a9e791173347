"""Recording governed acts in the ledger, inside the caller's transaction.

Every service appends through ``record`` so that a change and its entry commit together. The
signing key is held by ``SigningKeys``, which loads the key file again whenever it changed (a
rotation by another process: the ledger refuses entries signed by a retired key) and refuses
to sign while it cannot be read.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, event
from sqlalchemy.orm import Session

from governance.core.errors import ServiceUnavailable
from ledger.entry import Actor, EntryType, LedgerError, MalformedEntry
from ledger.keys import KeyFileError, Signer, keyed_digest, load_log_secret, load_signer
from ledger.signer_state import LedgerInconsistent, SignedHead, SignerState
from ledger.storage import (
    Appended,
    StaleSigningKey,
    append,
    consistency_proof,
    root_at,
    tree_size,
)

__all__ = [
    "SYSTEM",
    "LedgerInconsistentError",
    "LedgerKeyUnavailable",
    "LedgerUnavailable",
    "SigningKeys",
    "default_secret_path",
    "default_state_path",
    "record",
    "signer_consistency",
]

log = logging.getLogger(__name__)

SYSTEM = Actor(kind="system", id="facewarden", agency=None)


class LedgerUnavailable(ServiceUnavailable):
    """The ledger could not record an action, so the action was not carried out."""

    code = "ledger-unavailable"


class LedgerInconsistentError(LedgerUnavailable):
    """The database's log does not extend the newest checkpoint this host signed: it was cut,
    rolled back or rewritten. Nothing is signed or carried out until an operator restores it."""

    code = "ledger-inconsistent"


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
    state_path: Path | None = None
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
    def signer_state(self) -> SignerState:
        """The newest checkpoint this host signed (``ledger.signer_state``), by default in
        ``<key dir>/ledger-signer-state.json``."""
        return SignerState(self.state_path or default_state_path(self.path))

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


def default_state_path(key_path: Path) -> Path:
    """The signer state beside a signing key file: ``<dir>/ledger-signer-state.json``."""
    return Path(key_path).with_name("ledger-signer-state.json")


_SIGNED = "facewarden.signed"


def _advance_on_commit(session: Session, state: SignerState, appended: Appended) -> None:
    """Record ``appended``'s checkpoint in the signer state once the session commits, before
    the act is answered; forget it if the session rolls back."""
    session.info.setdefault(_SIGNED, []).append((state, appended.head))


@event.listens_for(Session, "after_commit")
def _advance(session: Session) -> None:
    signed = session.info.pop(_SIGNED, None)
    if not signed:
        return
    bind = session.get_bind()
    if isinstance(bind, Connection) and bind.in_transaction():
        # The session ran inside a transaction of its caller's (a savepoint): nothing is
        # durable until that one commits, and a state ahead of the log would refuse it.
        return
    newest: dict[Path, tuple[SignerState, SignedHead]] = {}
    for state, head in signed:
        if state.path not in newest or head.size > newest[state.path][1].size:
            newest[state.path] = (state, head)
    for state, head in newest.values():
        try:
            state.advance(head)
        except (OSError, LedgerError) as exc:
            # The act committed: refusing it now would deny what the ledger holds. The state
            # lags instead, which the next append's consistency proof covers.
            log.error(
                "cannot record the signed checkpoint of size %d in the signer state %s: %s; "
                "make it writable by the service (FACEWARDEN_LEDGER_STATE_PATH)",
                head.size,
                state.path,
                exc,
            )


@event.listens_for(Session, "after_rollback")
def _forget(session: Session) -> None:
    session.info.pop(_SIGNED, None)


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

    state = keys.signer_state

    def append_signed_by(signer: Signer) -> Appended:
        appended = append(
            session,
            signer=signer,
            entry_type=entry_type,
            actor=actor,
            payload=payload,
            now=now,
            state=state,
        )
        _advance_on_commit(session, state, appended)
        return appended

    try:
        try:
            return append_signed_by(keys.current())
        except StaleSigningKey:
            # Another process rotated the key: the file now holds the announced one.
            return append_signed_by(keys.reload())
    except MalformedEntry:
        raise  # a programming error in the caller's payload: let it surface as one
    except LedgerInconsistent as exc:
        log.critical("ledger inconsistent, nothing signed: %s", exc)
        raise LedgerInconsistentError(
            f"the audit ledger refuses to record: {exc}. This action was not carried out; "
            "operators, see docs/ledger.md (signer state)"
        ) from exc
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


def signer_consistency(session: Session, keys: SigningKeys) -> str:
    """Whether the database's log still contains the newest checkpoint this host signed (what
    every append checks first), for the readiness probe.

    Raises LedgerInconsistentError when it does not.
    """
    state = keys.signer_state
    try:
        signed = state.read()  # before the tree: it only moves after a commit
        size = tree_size(session)
        state.require(
            signed,
            keys.name,
            size,
            root_at(session, size),
            lambda first, second: consistency_proof(session, first=first, second=second),
        )
    except LedgerInconsistent as exc:
        raise LedgerInconsistentError(str(exc)) from exc
    if signed is None:
        return f"{size} entries; nothing signed here yet"
    return f"{size} entries, containing the checkpoint of {signed.size} signed here"
