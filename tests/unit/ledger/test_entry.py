"""Entries: canonical RFC 8785 bytes, signatures over the entry without ``sig``, strict parsing."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
import rfc8785
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.entry import (
    GENESIS_PREV,
    Actor,
    EntryType,
    MalformedEntry,
    build_entry,
    format_ts,
    parse_entry,
    signing_bytes,
)
from ledger.keys import Signer

from .conftest import ACTOR, T0

REQUIRED_TYPES = [
    "key:rotate",
    "admin:create",
    "registration:submit",
    "registration:approve",
    "registration:reject",
    "registration:claim",
    "account:request",
    "account:approve",
    "account:reject",
    "account:claim",
    "account:suspend",
    "account:reinstate",
    "agency:suspend",
    "agency:reinstate",
    "oversight:create",
    "curator:create",
    "credential:issue",
    "credential:revoke",
    "legal_basis:create",
    "legal_basis:approve",
    "legal_basis:reject",
    "legal_basis:ratify",
    "legal_basis:revoke",
    "legal_basis:expire",
    "legal_basis:lapse",
    "search:run",
    "search:refuse",
    "search:purge",
    "search:results_delete",
    "review:record",
    "gallery:enroll",
    "gallery:repair",
    "source_policy:set",
    "source:purge",
    "erasure:run",
    "thumbnail:view",
]


def _entry(signer: Signer, **payload: object) -> bytes:
    return build_entry(
        seq=0,
        ts=format_ts(T0),
        entry_type=EntryType.SEARCH_RUN,
        actor=ACTOR,
        payload=payload or {"search": "s-1"},
        prev=GENESIS_PREV,
        signer=signer,
    ).raw


def test_entry_types_cover_the_issue() -> None:
    assert set(REQUIRED_TYPES) <= {str(t) for t in EntryType}


def test_timestamp_format() -> None:
    assert format_ts(T0) == "2026-11-27T18:07:05.123456Z"
    with pytest.raises(MalformedEntry, match="timezone-aware"):
        format_ts(T0.replace(tzinfo=None))


def test_built_entry_is_canonical_and_signed_without_sig(signer: Signer) -> None:
    raw = _entry(signer)
    obj = json.loads(raw)
    assert list(obj) == sorted(obj)
    assert obj["v"] == 1 and obj["seq"] == 0 and obj["prev"] == "0" * 64
    assert obj["key_id"] == signer.key_id and obj["type"] == "search:run"
    assert obj["actor"] == {"kind": "user", "id": ACTOR.id, "agency": "agency-1"}
    unsigned = rfc8785.dumps({k: v for k, v in obj.items() if k != "sig"})
    entry = parse_entry(raw)
    assert signing_bytes(entry) == unsigned
    Ed25519PublicKey.from_public_bytes(signer.public_key).verify(entry.signature, unsigned)


def test_sig_lookalike_in_payload_does_not_confuse_signing_bytes(signer: Signer) -> None:
    raw = _entry(signer, sig="x", note=',"sig":"')
    obj = json.loads(raw)
    entry = parse_entry(raw)
    assert signing_bytes(entry) == rfc8785.dumps({k: v for k, v in obj.items() if k != "sig"})


@pytest.mark.parametrize(
    "payload",
    [
        {"ts": "2020-01-01T00:00:00.000000Z", "nested": {"ts": ',"ts":"x', "sig": "y"}},
        {"note": 'ends with ,"ts":"', "who": "Zoë"},
        {"z": [{"ts": 1}, ',"sig":"'], "é": "non-ASCII key"},
    ],
)
def test_sig_is_spliced_where_canonical_order_puts_it(
    signer: Signer, payload: dict[str, object]
) -> None:
    raw = _entry(signer, **payload)
    obj = json.loads(raw)
    assert raw == rfc8785.dumps(obj)
    assert obj["payload"] == payload
    unsigned = rfc8785.dumps({k: v for k, v in obj.items() if k != "sig"})
    Ed25519PublicKey.from_public_bytes(signer.public_key).verify(
        parse_entry(raw).signature, unsigned
    )


def _mutations(raw: bytes) -> dict[str, bytes]:
    obj = json.loads(raw)
    return {
        "whitespace": json.dumps(obj, sort_keys=True).encode(),
        "key order": json.dumps(dict(reversed(list(obj.items()))), separators=(",", ":")).encode(),
        "trailing newline": raw + b"\n",
        "duplicate key": raw[:-1] + b',"v":1}',
        "extra field": rfc8785.dumps({**obj, "image": "x"}),
        "missing field": rfc8785.dumps({k: v for k, v in obj.items() if k != "prev"}),
        "float payload": rfc8785.dumps({**obj, "payload": {"embedding": [0.5, 0.25]}}),
        "bad ts": rfc8785.dumps({**obj, "ts": "2026-11-27T18:07:05Z"}),
        "bad type": rfc8785.dumps({**obj, "type": "search:delete_everything"}),
        "bad prev": rfc8785.dumps({**obj, "prev": "AB" * 32}),
        "bad key id": rfc8785.dumps({**obj, "key_id": "xyz"}),
        "short sig": rfc8785.dumps({**obj, "sig": base64.b64encode(b"x" * 63).decode()}),
        "negative seq": rfc8785.dumps({**obj, "seq": -1}),
        "bool seq": rfc8785.dumps({**obj, "seq": True}),
        "version 2": rfc8785.dumps({**obj, "v": 2}),
        "not json": b"\xff" + raw,
        "actor shape": rfc8785.dumps({**obj, "actor": {"kind": "user"}}),
    }


@pytest.mark.parametrize(
    "case",
    [
        "whitespace",
        "key order",
        "trailing newline",
        "duplicate key",
        "extra field",
        "missing field",
        "float payload",
        "bad ts",
        "bad type",
        "bad prev",
        "bad key id",
        "short sig",
        "negative seq",
        "bool seq",
        "version 2",
        "not json",
        "actor shape",
    ],
)
def test_parse_rejects(signer: Signer, case: str) -> None:
    with pytest.raises(MalformedEntry):
        parse_entry(_mutations(_entry(signer))[case])


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"embedding": [0.1, 0.2]}, "float"),
        ({"image": b"\x89PNG"}, "bytes"),
        ({"n": 2**60}, "safe range"),
        ({"blob": "x" * 20_000}, "limit"),
    ],
)
def test_build_refuses_payloads_an_entry_must_not_hold(
    signer: Signer, payload: dict[str, object], message: str
) -> None:
    with pytest.raises(MalformedEntry, match=message):
        _entry(signer, **payload)


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ({"seq": -1}, "seq"),
        ({"seq": True}, "seq"),
        ({"seq": 2**53}, "seq"),
        ({"ts": "2026-11-27T18:07:05Z"}, "ts"),
        ({"ts": "2026-13-27T18:07:05.000000Z"}, "ts"),
        ({"prev": "AB" * 32}, "prev"),
        ({"prev": "ab" * 31}, "prev"),
    ],
)
def test_build_refuses_a_header_an_entry_must_not_hold(
    signer: Signer, header: dict[str, Any], message: str
) -> None:
    fields: dict[str, Any] = {"seq": 0, "ts": format_ts(T0), "prev": GENESIS_PREV} | header
    with pytest.raises(MalformedEntry, match=message):
        build_entry(
            entry_type=EntryType.SEARCH_RUN,
            actor=ACTOR,
            payload={"search": "s-1"},
            signer=signer,
            **fields,
        )


class _OddSigner:
    """A signer whose key id or signature no entry may carry."""

    def __init__(self, signer: Signer, *, key_id: str | None = None, sig_bytes: int = 64) -> None:
        self._signer, self._key_id, self._sig_bytes = signer, key_id, sig_bytes
        self.name, self.verifier_key = signer.name, signer.verifier_key

    @property
    def key_id(self) -> str:
        return self._key_id if self._key_id is not None else self._signer.key_id

    def sign(self, message: bytes) -> bytes:
        return self._signer.sign(message)[: self._sig_bytes]


@pytest.mark.parametrize(
    ("actor", "odd", "message"),
    [
        (Actor(kind="user", id=5), {}, "actor"),  # type: ignore[arg-type]
        (Actor(kind=None, id="u-1"), {}, "actor"),  # type: ignore[arg-type]
        (Actor(kind="user", id="u-1", agency=["a"]), {}, "actor"),  # type: ignore[arg-type]
        (ACTOR, {"key_id": "XYZ"}, "key_id"),
        (ACTOR, {"sig_bytes": 10}, "sig"),
    ],
)
def test_build_refuses_an_actor_key_or_signature_no_entry_may_carry(
    signer: Signer, actor: Actor, odd: dict[str, Any], message: str
) -> None:
    with pytest.raises(MalformedEntry, match=message):
        build_entry(
            seq=0,
            ts=format_ts(T0),
            entry_type=EntryType.SEARCH_RUN,
            actor=actor,
            payload={"search": "s-1"},
            prev=GENESIS_PREV,
            signer=_OddSigner(signer, **odd),
        )


def test_a_built_entry_says_what_its_bytes_say(signer: Signer) -> None:
    # Tuples become lists, and the caller's objects are not shared with the entry.
    nested = {"boxes": (1, 2), "inner": {"k": "v"}}
    entry = build_entry(
        seq=0,
        ts=format_ts(T0),
        entry_type=EntryType.SEARCH_RUN,
        actor=ACTOR,
        payload=nested,
        prev=GENESIS_PREV,
        signer=signer,
    )
    assert entry == parse_entry(entry.raw)
    assert entry.payload == {"boxes": [1, 2], "inner": {"k": "v"}}
    nested["inner"]["k"] = "changed"  # type: ignore[index]
    assert entry.payload["inner"] == {"k": "v"}


def test_actor_without_agency(signer: Signer) -> None:
    entry = build_entry(
        seq=3,
        ts=format_ts(T0),
        entry_type=EntryType.ADMIN_CREATE,
        actor=Actor(kind="system", id="bootstrap"),
        payload={},
        prev="ab" * 32,
        signer=signer,
    )
    assert parse_entry(entry.raw).actor == Actor(kind="system", id="bootstrap", agency=None)


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53) + 1, 2**53 - 1) | st.text(max_size=12),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=12,
)


_SIGNER = Signer(name="ledger.test/facewarden", private_key=Ed25519PrivateKey.generate())


@settings(max_examples=200, deadline=None)
@given(payload=st.dictionaries(st.text(max_size=8), _JSON, max_size=5))
def test_any_json_payload_round_trips_canonically(payload: dict[str, Any]) -> None:
    signer = _SIGNER
    entry = build_entry(
        seq=1,
        ts=format_ts(T0),
        entry_type=EntryType.REVIEW_RECORD,
        actor=ACTOR,
        payload=payload,
        prev=GENESIS_PREV,
        signer=signer,
    )
    assert entry.raw == rfc8785.dumps(json.loads(entry.raw))
    # build_entry does not parse its own bytes back: what it returns must be what they say.
    assert parse_entry(entry.raw) == entry
    assert entry.payload == payload
    spaced = json.dumps(json.loads(entry.raw), sort_keys=True, ensure_ascii=False).encode()
    if spaced != entry.raw:
        with pytest.raises(MalformedEntry):
            parse_entry(spaced)


@settings(max_examples=300, deadline=None)
@given(obj=st.dictionaries(st.text(max_size=8), _JSON, max_size=6))
def test_fast_canonical_path_agrees_with_rfc8785(obj: dict[str, Any]) -> None:
    canonical = rfc8785.dumps(obj)
    fast = json.dumps(obj, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode()
    if canonical.isascii() or fast.isascii():
        assert fast == canonical
