"""The log's Ed25519 signing key: PKCS8 PEM files (0600, optionally encrypted) and rotation.

A rotation is itself a ``key:rotate`` entry signed by the old key and naming the new verifier
key; the key file is replaced only once the caller's transaction commits.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import event
from sqlalchemy.orm import Session

from ledger.checkpoint import ed25519_key_id, verifier_key_string
from ledger.entry import Actor, EntryType, LedgerError
from ledger.storage import Appended, append

__all__ = [
    "KeyFileError",
    "Signer",
    "generate_key",
    "generate_log_secret",
    "keyed_digest",
    "load_log_secret",
    "load_signer",
    "rotate_key",
]

LOG_SECRET_BYTES = 32


class KeyFileError(LedgerError):
    """A key file that cannot be created, read or decrypted."""


@dataclass(frozen=True, slots=True)
class Signer:
    """An Ed25519 private key under a log name (the checkpoint origin and note key name)."""

    name: str
    private_key: Ed25519PrivateKey

    @property
    def public_key(self) -> bytes:
        """The raw 32-byte public key."""
        return self.private_key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )

    @property
    def key_id(self) -> str:
        """The C2SP signed-note key id as 8 hex digits."""
        return ed25519_key_id(self.name, self.public_key).hex()

    @property
    def verifier_key(self) -> str:
        """The verifier key string ``name+keyid+base64(0x01 || pubkey)``."""
        return verifier_key_string(self.name, self.public_key)

    def sign(self, message: bytes) -> bytes:
        """The Ed25519 signature of ``message``."""
        return self.private_key.sign(message)


def _pem(key: Ed25519PrivateKey, passphrase: str | None) -> bytes:
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(passphrase.encode())
        if passphrase
        else serialization.NoEncryption()
    )
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    )


def _write_new(path: Path, data: bytes) -> None:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as exc:
        raise KeyFileError(f"cannot create key file {path}: {exc}") from exc
    with os.fdopen(fd, "wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())


def generate_key(path: Path, *, name: str, passphrase: str | None) -> Signer:
    """Create a new key file at ``path`` (mode 0600, never overwriting) and return its signer.

    Raises KeyFileError when the file exists or cannot be written; MalformedNote for a name
    that cannot be a note key name.
    """
    signer = Signer(name=name, private_key=Ed25519PrivateKey.generate())
    verifier_key_string(name, signer.public_key)  # validates the name
    _write_new(Path(path), _pem(signer.private_key, passphrase))
    return signer


def generate_log_secret(path: Path) -> bytes:
    """Create the log's keyed-hash secret at ``path`` (32 random bytes as hex, mode 0600).

    The secret keys the hashes that the ledger holds in place of personal data (source URLs,
    e-mail addresses), so that an erased value cannot be confirmed by hashing a guess.
    Raises KeyFileError when the file exists or cannot be written.
    """
    secret = secrets.token_bytes(LOG_SECRET_BYTES)
    _write_new(Path(path), secret.hex().encode() + b"\n")
    return secret


def load_log_secret(path: Path) -> bytes:
    """Read the log's keyed-hash secret.

    Raises KeyFileError when it is missing, unreadable or not 32 bytes of hex.
    """
    try:
        text = Path(path).read_text(encoding="ascii").strip()
        secret = bytes.fromhex(text)
    except (OSError, ValueError) as exc:
        raise KeyFileError(f"cannot load the ledger's hash secret {path}: {exc}") from exc
    if len(secret) != LOG_SECRET_BYTES:
        raise KeyFileError(f"{path} does not hold a {LOG_SECRET_BYTES}-byte hex secret")
    return secret


def keyed_digest(secret: bytes, purpose: str, value: str) -> str:
    """HMAC-SHA256 of ``value`` under ``secret``, separated by ``purpose``, as hex.

    The purpose (``"url"``, ``"person"``, …) keeps a digest of one kind of value from standing
    in for another's.
    """
    message = purpose.encode() + b"\x00" + value.encode()
    return hmac.new(secret, message, hashlib.sha256).hexdigest()


def load_signer(path: Path, *, name: str, passphrase: str | None) -> Signer:
    """Load the key file at ``path``.

    Raises KeyFileError when it is missing, unreadable, not Ed25519, or the passphrase is wrong.
    """
    try:
        data = Path(path).read_bytes()
        key = serialization.load_pem_private_key(
            data, password=passphrase.encode() if passphrase else None
        )
    except (OSError, ValueError, TypeError) as exc:
        raise KeyFileError(f"cannot load ledger key {path}: {exc}") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyFileError(f"{path} does not hold an Ed25519 key")
    return Signer(name=name, private_key=key)


def rotate_key(
    session: Session,
    *,
    key_path: Path,
    name: str,
    passphrase: str | None,
    now: datetime,
    actor: Actor,
) -> tuple[Appended, Signer]:
    """Append a ``key:rotate`` entry signed by the current key, and swap the key file on commit.

    The new key is written beside the old one (``<path>.new-<keyid>``) first; when the caller's
    transaction commits, the old file moves to ``<path>.retired-<keyid>`` and the new one takes
    its place. If the append raises or the transaction rolls back, the key file is untouched.
    Returns the append and the new signer.
    Raises KeyFileError, StaleSigningKey, LedgerError.
    """
    key_path = Path(key_path)
    old = load_signer(key_path, name=name, passphrase=passphrase)
    new = Signer(name=name, private_key=Ed25519PrivateKey.generate())
    staged = key_path.with_name(f"{key_path.name}.new-{new.key_id}")
    retired = key_path.with_name(f"{key_path.name}.retired-{old.key_id}")
    _write_new(staged, _pem(new.private_key, passphrase))
    try:
        appended = append(
            session,
            signer=old,
            entry_type=EntryType.KEY_ROTATE,
            actor=actor,
            payload={"old_key": old.verifier_key, "new_key": new.verifier_key},
            now=now,
        )
    except BaseException:
        staged.unlink(missing_ok=True)
        raise

    def _install(_session: Session) -> None:
        event.remove(session, "after_rollback", _discard)
        os.link(key_path, retired)
        os.replace(staged, key_path)

    def _discard(_session: Session) -> None:
        event.remove(session, "after_commit", _install)
        with contextlib.suppress(FileNotFoundError):
            staged.unlink()

    event.listen(session, "after_commit", _install, once=True)
    event.listen(session, "after_rollback", _discard, once=True)
    return appended, new
