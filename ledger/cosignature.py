"""C2SP tlog-cosignature, Ed25519 type (``cosignature/v1``): a witness's timestamped signature
of a checkpoint, added to the checkpoint's note as one more signature line.

- key ID: ``SHA-256(name || 0x0A || 0x04 || 32-byte public key)[:4]``; a verifier key
  (C2SP signed-note "vkey") is ``name+hex(key ID)+base64(0x04 || public key)``;
- signature: ``u64 timestamp (big-endian) || 64-byte Ed25519 signature``;
- signed message: ``cosignature/v1\\n`` then ``time <decimal timestamp>\\n`` then the whole note
  body of the checkpoint (with its final newline, without any signature line).

A cosignature states that, at its time, the consistent checkpoint with the largest size the
witness has seen for the origin has this root.
Imports only the standard library and ``cryptography``: the verifier and the witness use it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import struct
from collections.abc import Iterable
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from ledger.checkpoint import MalformedNote, split_note

__all__ = [
    "ALG_COSIGNATURE_V1",
    "Cosignature",
    "CosignerKey",
    "cosign",
    "cosigned_message",
    "cosigner_key_id",
    "cosigner_vkey",
    "parse_cosigner_key",
    "verify_cosignatures",
]

ALG_COSIGNATURE_V1 = 0x04
_HEADER = b"cosignature/v1\n"
_SIG_PREFIX = "\u2014 "
_MAX_TIMESTAMP = 2**63 - 1


def cosigner_key_id(name: str, public_key: bytes) -> bytes:
    """``SHA-256(name || "\\n" || 0x04 || public key)[:4]``."""
    return hashlib.sha256(
        name.encode() + b"\n" + bytes([ALG_COSIGNATURE_V1]) + public_key
    ).digest()[:4]


def cosigner_vkey(name: str, public_key: bytes) -> str:
    """The verifier key string of a cosigner: ``name+hex(key ID)+base64(0x04 || key)``."""
    if not name or any(c.isspace() or c == "+" for c in name):
        raise MalformedNote(f"bad cosigner name {name!r}")
    if len(public_key) != 32:
        raise MalformedNote("an Ed25519 public key is 32 bytes")
    encoded = base64.b64encode(bytes([ALG_COSIGNATURE_V1]) + public_key).decode("ascii")
    return f"{name}+{cosigner_key_id(name, public_key).hex()}+{encoded}"


@dataclass(frozen=True, slots=True)
class CosignerKey:
    """A witness's public key, as a cosignature verifier."""

    name: str
    key_id: bytes
    public_key: bytes

    @property
    def vkey(self) -> str:
        """The verifier key string."""
        return cosigner_vkey(self.name, self.public_key)


@dataclass(frozen=True, slots=True)
class Cosignature:
    """A verified cosignature: which witness, and the time it states (POSIX seconds)."""

    name: str
    key_id: bytes
    timestamp: int


def parse_cosigner_key(vkey: str) -> CosignerKey:
    """Parse ``name+hex(key ID)+base64(0x04 || public key)``, checking the key ID.

    Raises MalformedNote.
    """
    parts = vkey.strip().split("+", 2)
    if len(parts) != 3:
        raise MalformedNote("a cosigner key has three '+'-separated fields")
    name, hex_id, b64 = parts
    if not re.fullmatch(r"[0-9a-f]{8}", hex_id):
        raise MalformedNote("the key id is 8 lowercase hex digits")
    try:
        key = base64.b64decode(b64, validate=True)
    except binascii.Error as exc:
        raise MalformedNote("the cosigner key is not base64") from exc
    if len(key) != 33 or key[0] != ALG_COSIGNATURE_V1:
        raise MalformedNote("a cosigner key is of type 0x04 (cosignature/v1) with 32 bytes")
    if cosigner_vkey(name, key[1:]) != vkey.strip():
        raise MalformedNote("the key id does not match the name and key")
    return CosignerKey(name=name, key_id=bytes.fromhex(hex_id), public_key=key[1:])


def cosigned_message(body: str, timestamp: int) -> bytes:
    """What a cosignature of the checkpoint ``body`` at ``timestamp`` signs."""
    if not 0 <= timestamp <= _MAX_TIMESTAMP:
        raise MalformedNote(f"timestamp {timestamp} is out of range")
    if not body.endswith("\n"):
        raise MalformedNote("a checkpoint body ends in a newline")
    return _HEADER + f"time {timestamp}\n".encode() + body.encode()


def cosign(body: str, name: str, key: Ed25519PrivateKey, timestamp: int) -> str:
    """The signature line (with its newline) of the cosignature of ``body`` by the witness
    ``name`` with ``key``, at ``timestamp``."""
    signature = key.sign(cosigned_message(body, timestamp))
    public = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    raw = cosigner_key_id(name, public) + struct.pack(">Q", timestamp)
    return f"{_SIG_PREFIX}{name} {base64.b64encode(raw + signature).decode('ascii')}\n"


def verify_cosignatures(note: str, keys: Iterable[CosignerKey]) -> list[Cosignature]:
    """The valid cosignatures in ``note`` by the witnesses ``keys`` name, one per witness.

    Lines of other keys (the log's own signature, unknown witnesses) are ignored. Raises
    MalformedNote when the note is malformed or a known witness's line does not verify.
    """
    known = {(k.name, k.key_id): k for k in keys}
    parsed = split_note(note)
    found: dict[str, Cosignature] = {}
    for name, key_id, raw in parsed.signatures:
        key = known.get((name, key_id))
        if key is None:
            continue
        if len(raw) != 8 + 64:
            raise MalformedNote(f"the cosignature of {name} is not a timestamped signature")
        (timestamp,) = struct.unpack(">Q", raw[:8])
        try:
            Ed25519PublicKey.from_public_bytes(key.public_key).verify(
                raw[8:], cosigned_message(parsed.text, timestamp)
            )
        except InvalidSignature as exc:
            raise MalformedNote(f"invalid cosignature by {name}+{key_id.hex()}") from exc
        found.setdefault(name, Cosignature(name=name, key_id=key_id, timestamp=timestamp))
    return list(found.values())
