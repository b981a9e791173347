"""C2SP tlog-checkpoint bodies signed as C2SP signed notes with Ed25519.

Byte-compatible with https://c2sp.org/signed-note and golang.org/x/mod/sumdb/note.
Imports only the standard library and ``cryptography``: the offline verifier uses it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from ledger.entry import EntrySigner, LedgerError
from ledger.hashing import HASH_SIZE

__all__ = [
    "Checkpoint",
    "MalformedNote",
    "NoteVerifier",
    "SignedNote",
    "ed25519_key_id",
    "format_checkpoint",
    "open_note",
    "parse_checkpoint",
    "parse_verifier_key",
    "sign_checkpoint",
    "sign_note",
    "split_note",
    "verifier_key_string",
]

ALG_ED25519 = 0x01
_SIG_PREFIX = "\u2014 "  # EM DASH, SPACE (c2sp.org/signed-note "Format")
_MAX_SIGNATURES = 100
_DECIMAL = re.compile(r"0|[1-9][0-9]{0,19}")


class MalformedNote(LedgerError, ValueError):
    """Text that is not a well-formed signed note, checkpoint or verifier key."""


@dataclass(frozen=True, slots=True)
class NoteVerifier:
    """A parsed verifier key ``name+hex(keyid)+base64(0x01 || pubkey)``."""

    name: str
    key_id: bytes
    public_key: bytes

    @property
    def key_id_hex(self) -> str:
        """The key id as 8 lowercase hex digits (the entries' ``key_id``)."""
        return self.key_id.hex()

    @property
    def vkey(self) -> str:
        """The verifier key string."""
        return verifier_key_string(self.name, self.public_key)

    def verify(self, message: bytes, signature: bytes) -> bool:
        """Whether ``signature`` is this key's Ed25519 signature of ``message``."""
        try:
            Ed25519PublicKey.from_public_bytes(self.public_key).verify(signature, message)
        except InvalidSignature:
            return False
        return True


@dataclass(frozen=True, slots=True)
class SignedNote:
    """A note's text and its signature lines as (name, key id, signature)."""

    text: str
    signatures: tuple[tuple[str, bytes, bytes], ...]


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A C2SP tlog-checkpoint body: origin, tree size and root hash (plus extension lines)."""

    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()


def _check_name(name: str) -> None:
    if not name or any(c.isspace() or c == "+" for c in name):
        raise MalformedNote(f"bad key name {name!r}")


def ed25519_key_id(name: str, public_key: bytes) -> bytes:
    """key ID = SHA-256(key name || 0x0A || 0x01 || 32-byte public key)[:4] (signed-note)."""
    return hashlib.sha256(name.encode() + b"\n" + bytes([ALG_ED25519]) + public_key).digest()[:4]


def verifier_key_string(name: str, public_key: bytes) -> str:
    """The verifier key string for an Ed25519 public key.

    Raises MalformedNote for a bad name or key length.
    """
    _check_name(name)
    if len(public_key) != 32:
        raise MalformedNote("an Ed25519 public key is 32 bytes")
    encoded = base64.b64encode(bytes([ALG_ED25519]) + public_key).decode("ascii")
    return f"{name}+{ed25519_key_id(name, public_key).hex()}+{encoded}"


def parse_verifier_key(vkey: str) -> NoteVerifier:
    """Parse ``name+hex(keyid)+base64(0x01 || pubkey)``, checking the key id.

    Raises MalformedNote.
    """
    parts = vkey.split("+", 2)
    if len(parts) != 3:
        raise MalformedNote("a verifier key has three '+'-separated fields")
    name, hex_id, b64 = parts
    _check_name(name)
    try:
        if not re.fullmatch(r"[0-9a-f]{8}", hex_id):
            raise MalformedNote("the key id is 8 lowercase hex digits")
        key = base64.b64decode(b64, validate=True)
    except binascii.Error as exc:
        raise MalformedNote("the key is not base64") from exc
    if base64.b64encode(key).decode("ascii") != b64:
        raise MalformedNote("the key is not canonical base64")
    if len(key) != 33 or key[0] != ALG_ED25519:
        raise MalformedNote("only Ed25519 (type 0x01) 32-byte keys are supported")
    if ed25519_key_id(name, key[1:]).hex() != hex_id:
        raise MalformedNote("the key id does not match the name and key")
    return NoteVerifier(name=name, key_id=bytes.fromhex(hex_id), public_key=key[1:])


def sign_note(text: str, signer: EntrySigner) -> str:
    """Sign ``text`` (ending in a newline) as a signed note with one signature line.

    Raises MalformedNote for text a note cannot hold.
    """
    if not text.endswith("\n") or any(ord(c) < 0x20 and c != "\n" for c in text):
        raise MalformedNote("note text must end in a newline and hold no control characters")
    signature = bytes.fromhex(signer.key_id) + signer.sign(text.encode())
    return f"{text}\n{_SIG_PREFIX}{signer.name} {base64.b64encode(signature).decode('ascii')}\n"


def split_note(note: str) -> SignedNote:
    """Split a signed note into its text and signature lines, without verifying them.

    Raises MalformedNote.
    """
    if any(ord(c) < 0x20 and c != "\n" for c in note) or not note.endswith("\n"):
        raise MalformedNote("malformed note")
    at = note.rfind("\n\n")
    if at < 0:
        raise MalformedNote("malformed note: no signature block")
    text, block = note[: at + 1], note[at + 2 :]
    sigs = []
    for line in block.splitlines():
        if not line.startswith(_SIG_PREFIX):
            raise MalformedNote("malformed note: bad signature line")
        name, _, b64 = line[len(_SIG_PREFIX) :].rpartition(" ")
        _check_name(name)
        try:
            raw = base64.b64decode(b64, validate=True)
        except binascii.Error as exc:
            raise MalformedNote("malformed note: signature is not base64") from exc
        if len(raw) < 5:
            raise MalformedNote("malformed note: signature too short")
        sigs.append((name, raw[:4], raw[4:]))
    if not sigs or len(sigs) > _MAX_SIGNATURES:
        raise MalformedNote("malformed note: wrong number of signatures")
    return SignedNote(text=text, signatures=tuple(sigs))


def open_note(note: str, verifiers: Iterable[NoteVerifier]) -> tuple[str, list[NoteVerifier]]:
    """Verify a signed note; returns its text and the known keys whose signatures verified.

    Signatures from unknown keys are ignored; one failing signature from a known key rejects
    the note (signed-note "Signatures"). Raises MalformedNote when the note is malformed, a
    known key's signature fails, or no known key signed it.
    """
    known = {(v.name, v.key_id): v for v in verifiers}
    parsed = split_note(note)
    good: list[NoteVerifier] = []
    for name, key_id, signature in parsed.signatures:
        verifier = known.get((name, key_id))
        if verifier is None:
            continue
        if not verifier.verify(parsed.text.encode(), signature):
            raise MalformedNote(f"invalid signature for key {name}+{key_id.hex()}")
        if verifier not in good:
            good.append(verifier)
    if not good:
        raise MalformedNote("note has no verifiable signatures")
    return parsed.text, good


def format_checkpoint(checkpoint: Checkpoint) -> str:
    """The checkpoint body: origin, decimal size, base64 root, extensions; each line ends "\\n"."""
    lines = [
        checkpoint.origin,
        str(checkpoint.size),
        base64.b64encode(checkpoint.root).decode("ascii"),
    ]
    return "".join(line + "\n" for line in (*lines, *checkpoint.extensions))


def parse_checkpoint(text: str) -> Checkpoint:
    """Parse a checkpoint body (the note text, signatures already removed).

    Raises MalformedNote.
    """
    if not text.endswith("\n"):
        raise MalformedNote("checkpoint must end in a newline")
    lines: Sequence[str] = text[:-1].split("\n")
    if len(lines) < 3 or not lines[0] or any(not line for line in lines):
        raise MalformedNote("checkpoint needs origin, size and root lines")
    if not _DECIMAL.fullmatch(lines[1]):
        raise MalformedNote("checkpoint size is not a decimal number")
    try:
        root = base64.b64decode(lines[2], validate=True)
    except binascii.Error as exc:
        raise MalformedNote("checkpoint root is not base64") from exc
    if len(root) != HASH_SIZE:
        raise MalformedNote("checkpoint root is not a SHA-256 hash")
    return Checkpoint(origin=lines[0], size=int(lines[1]), root=root, extensions=tuple(lines[3:]))


def sign_checkpoint(checkpoint: Checkpoint, signer: EntrySigner) -> str:
    """Format and sign a checkpoint. Raises MalformedNote."""
    return sign_note(format_checkpoint(checkpoint), signer)
