"""Ledger entries: the event types, and the canonical RFC 8785 bytes that are signed and hashed.

Imports only the standard library, ``cryptography`` and ``rfc8785``: the offline verifier uses it.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Protocol

import rfc8785

__all__ = [
    "FORMAT_VERSION",
    "GENESIS_PREV",
    "MAX_ENTRY_BYTES",
    "Actor",
    "Entry",
    "EntrySigner",
    "EntryType",
    "LedgerError",
    "MalformedEntry",
    "build_entry",
    "format_ts",
    "parse_entry",
    "signing_bytes",
]

FORMAT_VERSION = 1
GENESIS_PREV = "0" * 64
# Entries describe acts, never images or embeddings; a hard cap keeps it that way.
MAX_ENTRY_BYTES = 16 * 1024

_FIELDS = frozenset({"v", "seq", "ts", "type", "actor", "payload", "prev", "key_id", "sig"})
_ACTOR_FIELDS = frozenset({"kind", "id", "agency"})
_TS = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z")
_HEX64 = re.compile(r"[0-9a-f]{64}")
_HEX8 = re.compile(r"[0-9a-f]{8}")
_SAFE_INT = 2**53 - 1


class LedgerError(Exception):
    """Root of every error raised by the ``ledger`` package."""


class MalformedEntry(LedgerError, ValueError):
    """Bytes or values that are not a well-formed, canonical ledger entry."""


class EntryType(StrEnum):
    """What an entry records; the value is the ``type`` field on the wire."""

    KEY_ROTATE = "key:rotate"
    ADMIN_CREATE = "admin:create"
    REGISTRATION_SUBMIT = "registration:submit"
    REGISTRATION_APPROVE = "registration:approve"
    REGISTRATION_REJECT = "registration:reject"
    REGISTRATION_CLAIM = "registration:claim"
    ACCOUNT_REQUEST = "account:request"
    ACCOUNT_APPROVE = "account:approve"
    ACCOUNT_REJECT = "account:reject"
    ACCOUNT_CLAIM = "account:claim"
    CLAIM_REISSUE = "claim:reissue"
    ACCOUNT_SUSPEND = "account:suspend"
    ACCOUNT_REINSTATE = "account:reinstate"
    AGENCY_SUSPEND = "agency:suspend"
    AGENCY_REINSTATE = "agency:reinstate"
    OVERSIGHT_CREATE = "oversight:create"
    CURATOR_CREATE = "curator:create"
    PROPOSAL_CREATE = "proposal:create"
    PROPOSAL_REJECT = "proposal:reject"
    CREDENTIAL_ISSUE = "credential:issue"
    CREDENTIAL_REVOKE = "credential:revoke"
    LEGAL_BASIS_CREATE = "legal_basis:create"
    LEGAL_BASIS_APPROVE = "legal_basis:approve"
    LEGAL_BASIS_REJECT = "legal_basis:reject"
    LEGAL_BASIS_RATIFY = "legal_basis:ratify"
    LEGAL_BASIS_REVOKE = "legal_basis:revoke"
    LEGAL_BASIS_EXPIRE = "legal_basis:expire"
    LEGAL_BASIS_LAPSE = "legal_basis:lapse"
    SEARCH_RUN = "search:run"
    SEARCH_REFUSE = "search:refuse"
    # Refusals of one credential in one window counted, not recorded one by one (see
    # docs/ledger.md): the total refused is the search:refuse entries plus these counts.
    SEARCH_REFUSE_REPEATS = "search:refuse_repeats"
    SEARCH_PURGE = "search:purge"
    SEARCH_RESULTS_DELETE = "search:results_delete"
    REVIEW_RECORD = "review:record"
    GALLERY_ENROLL = "gallery:enroll"
    # The counts of what `facewarden doctor --repair` put right (docs/ledger.md).
    GALLERY_REPAIR = "gallery:repair"
    SOURCE_POLICY_SET = "source_policy:set"
    SOURCE_PURGE = "source:purge"
    ERASURE_PREVIEW = "erasure:preview"
    ERASURE_RUN = "erasure:run"
    ERASURE_THUMBNAIL_VIEW = "erasure:thumbnail_view"
    THUMBNAIL_VIEW = "thumbnail:view"
    PROBE_VIEW = "probe:view"
    PASSKEY_ENROL = "passkey:enrol"
    PASSKEY_REVOKE = "passkey:revoke"
    SESSION_START = "session:start"


class EntrySigner(Protocol):
    """What signs entries and checkpoints (``ledger.keys.Signer`` is one)."""

    @property
    def name(self) -> str: ...

    @property
    def key_id(self) -> str: ...

    @property
    def verifier_key(self) -> str: ...

    def sign(self, message: bytes) -> bytes: ...


@dataclass(frozen=True, slots=True)
class Actor:
    """Who acted: ``kind`` (e.g. ``"user"``, ``"system"``), an id, and the agency if any."""

    kind: str
    id: str
    agency: str | None = None


@dataclass(frozen=True, slots=True)
class Entry:
    """One signed ledger entry; ``raw`` holds its exact canonical bytes (the Merkle leaf)."""

    seq: int
    ts: str
    type: EntryType
    actor: Actor
    payload: Mapping[str, Any]
    prev: str
    key_id: str
    sig: str
    raw: bytes = field(repr=False)
    v: int = FORMAT_VERSION

    @property
    def signature(self) -> bytes:
        """The raw 64-byte Ed25519 signature."""
        return base64.b64decode(self.sig)


def format_ts(when: datetime) -> str:
    """Render an aware datetime as ``2026-11-27T18:07:05.123456Z`` (UTC, microseconds).

    Raises MalformedEntry for a naive datetime.
    """
    if when.tzinfo is None or when.utcoffset() is None:
        raise MalformedEntry("timestamps must be timezone-aware")
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _check_json(value: Any, path: str) -> None:
    # Floats are refused: canonical numbers stay exact, and no embedding fits in an entry.
    if value is None or isinstance(value, bool | str):
        return
    if isinstance(value, int):
        if abs(value) > _SAFE_INT:
            raise MalformedEntry(f"{path}: integer outside the JSON safe range")
        return
    if isinstance(value, list | tuple):
        for i, item in enumerate(value):
            _check_json(item, f"{path}[{i}]")
        return
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                raise MalformedEntry(f"{path}: object keys must be strings")
            _check_json(item, f"{path}.{key}")
        return
    raise MalformedEntry(f"{path}: {type(value).__name__} is not an allowed JSON value")


def build_entry(
    *,
    seq: int,
    ts: str,
    entry_type: EntryType,
    actor: Actor,
    payload: Mapping[str, Any],
    prev: str,
    signer: EntrySigner,
) -> Entry:
    """Build and sign the entry; its ``raw`` bytes are what the log stores and hashes.

    Raises MalformedEntry when a field or the payload is not allowed in an entry.
    """
    _check_json(payload, "payload")
    _check_json([actor.kind, actor.id, actor.agency], "actor")
    unsigned = {
        "v": FORMAT_VERSION,
        "seq": seq,
        "ts": ts,
        "type": str(EntryType(entry_type)),
        "actor": {"kind": actor.kind, "id": actor.id, "agency": actor.agency},
        "payload": dict(payload),
        "prev": prev,
        "key_id": signer.key_id,
    }
    message = _canonical(unsigned)
    sig = base64.b64encode(signer.sign(message)).decode("ascii")
    # ``sig`` sorts between ``seq`` and ``ts``, the last top-level member before it: splicing it
    # in keeps the bytes canonical without a second pass (``signing_bytes`` is the inverse).
    at = message.rfind(b',"ts":"')
    raw = message[:at] + b',"sig":"' + sig.encode("ascii") + b'"' + message[at:]
    if len(raw) > MAX_ENTRY_BYTES:
        raise MalformedEntry(f"entry is {len(raw)} bytes, over the {MAX_ENTRY_BYTES} limit")
    # The bytes are canonical by construction (tested against rfc8785), so only the fields are
    # checked, with parse_entry's own checks, on the unsigned bytes read back: the entry then
    # says exactly what its bytes say (lists where the payload held tuples, no shared objects).
    obj = json.loads(message)
    obj["sig"] = sig
    return _entry_of(obj, raw)


def signing_bytes(entry: Entry) -> bytes:
    """The canonical bytes of ``entry`` without ``sig``: what its Ed25519 signature covers.

    ``entry.raw`` is canonical (``parse_entry`` checked it), so dropping the top-level ``sig``
    member, which sorts after ``payload`` and is therefore the last occurrence, keeps it
    canonical without a second RFC 8785 pass.
    """
    marker = b',"sig":"' + entry.sig.encode("ascii") + b'"'
    at = entry.raw.rfind(marker)
    return entry.raw[:at] + entry.raw[at + len(marker) :]


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise MalformedEntry("duplicate object key")
    return result


def _parse_actor(value: Any) -> Actor:
    if not isinstance(value, dict) or set(value) != _ACTOR_FIELDS:
        raise MalformedEntry("actor must be an object with kind, id and agency")
    kind, ident, agency = value["kind"], value["id"], value["agency"]
    if not isinstance(kind, str) or not isinstance(ident, str):
        raise MalformedEntry("actor kind and id must be strings")
    if agency is not None and not isinstance(agency, str):
        raise MalformedEntry("actor agency must be a string or null")
    return Actor(kind=kind, id=ident, agency=agency)


def _canonical(obj: dict[str, Any]) -> bytes:
    # Fast path: for ASCII text without floats (entries hold none), RFC 8785 output is exactly
    # json.dumps with sorted keys and no whitespace (same escapes; code point order equals
    # UTF-16 order for ASCII keys). Anything else is left to rfc8785 itself.
    fast = json.dumps(obj, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
    if fast.isascii():
        return fast.encode("ascii")
    try:
        return rfc8785.dumps(obj)
    except rfc8785.CanonicalizationError as exc:
        raise MalformedEntry(f"not canonicalizable: {exc}") from exc


def _is_canonical(obj: dict[str, Any], data: bytes) -> bool:
    return _canonical(obj) == data


def parse_entry(data: bytes) -> Entry:
    """Parse one entry, refusing anything but the exact canonical encoding of a valid entry.

    The signature is decoded but not verified (``ledger.verify`` does that).
    Raises MalformedEntry.
    """
    if len(data) > MAX_ENTRY_BYTES:
        raise MalformedEntry("entry too large")
    try:
        obj = json.loads(data, object_pairs_hook=_no_duplicates)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MalformedEntry(f"not JSON: {exc}") from exc
    if not isinstance(obj, dict) or set(obj) != _FIELDS:
        raise MalformedEntry("entry must have exactly the fields " + ", ".join(sorted(_FIELDS)))
    if not _is_canonical(obj, data):
        raise MalformedEntry("not in canonical RFC 8785 form")
    return _entry_of(obj, data)


def _entry_of(obj: dict[str, Any], data: bytes) -> Entry:
    # The checks every entry passes, parsed (parse_entry) or just built (build_entry).
    v, seq, ts, prev, key_id, sig = (obj[k] for k in ("v", "seq", "ts", "prev", "key_id", "sig"))
    if v != FORMAT_VERSION or isinstance(v, bool):
        raise MalformedEntry(f"unsupported format version {v!r}")
    if not isinstance(seq, int) or isinstance(seq, bool) or seq < 0:
        raise MalformedEntry("seq must be a non-negative integer")
    if not isinstance(ts, str) or not _TS.fullmatch(ts):
        raise MalformedEntry("ts must look like 2026-11-27T18:07:05.123456Z")
    if seq > _SAFE_INT:
        raise MalformedEntry("seq outside the JSON safe range")
    try:
        datetime.fromisoformat(ts[:-1])
        entry_type = EntryType(obj["type"])
    except (ValueError, TypeError) as exc:
        raise MalformedEntry(f"bad ts or type: {exc}") from exc
    if not isinstance(prev, str) or not _HEX64.fullmatch(prev):
        raise MalformedEntry("prev must be 64 lowercase hex digits")
    if not isinstance(key_id, str) or not _HEX8.fullmatch(key_id):
        raise MalformedEntry("key_id must be 8 lowercase hex digits")
    if not isinstance(obj["payload"], dict):
        raise MalformedEntry("payload must be an object")
    _check_json(obj["payload"], "payload")
    try:
        if not isinstance(sig, str) or len(base64.b64decode(sig, validate=True)) != 64:
            raise MalformedEntry("sig must be a base64 64-byte Ed25519 signature")
    except binascii.Error as exc:
        raise MalformedEntry("sig is not base64") from exc
    if base64.b64encode(base64.b64decode(sig)).decode("ascii") != sig:
        raise MalformedEntry("sig is not in canonical base64")
    return Entry(
        seq=seq,
        ts=ts,
        type=entry_type,
        actor=_parse_actor(obj["actor"]),
        payload=obj["payload"],
        prev=prev,
        key_id=key_id,
        sig=sig,
        raw=data,
    )
