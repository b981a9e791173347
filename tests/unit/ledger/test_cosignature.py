"""C2SP tlog-cosignature (Ed25519, cosignature/v1): key IDs, the signed message, lines that
verify and lines that do not; known answers from the specification's example."""

from __future__ import annotations

import base64
import hashlib
import struct

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from ledger.checkpoint import MalformedNote, split_note
from ledger.cosignature import (
    CosignerKey,
    cosign,
    cosigned_message,
    cosigner_key_id,
    cosigner_vkey,
    parse_cosigner_key,
    verify_cosignatures,
)

# tlog-cosignature.md: the checkpoint with a cosignature, and the message its "Ed25519 signed
# message" section shows for that checkpoint at time 1679315147.
SPEC_BODY = "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
SPEC_LOG_LINE = (
    "\u2014 example.com/behind-the-sofa Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5/"
    "Zhcyv2q1gGzGku9nTo+zyWE+xeMcTOAYQ8=\n"
)
SPEC_COSIGNATURE_LINE = (
    "\u2014 witness.example.com/w1 jWbPPwAAAABkGFDLEZMHwSRaJNiIDoe9DYn/zXcrtPHeolMI5OWXEhZCB9dl"
    "rDJsX3b2oyin1nPZqhf5nNo0xUe+mbIUBkBIfZ+qnA==\n"
)
SPEC_MESSAGE = (
    b"cosignature/v1\n"
    b"time 1679315147\n"
    b"example.com/behind-the-sofa\n"
    b"20852163\n"
    b"CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
)
NAME = "witness.test/w1"


def _public(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def _note(*lines: str) -> str:
    return SPEC_BODY + "\n" + "".join(lines)


def test_the_specifications_example_has_the_layout_and_message_it_describes() -> None:
    parsed = split_note(_note(SPEC_LOG_LINE, SPEC_COSIGNATURE_LINE))
    assert parsed.text == SPEC_BODY
    name, key_id, raw = parsed.signatures[1]
    assert name == "witness.example.com/w1" and len(key_id) == 4
    assert len(raw) == 8 + 64  # timestamped_signature: u64 timestamp, Ed25519 signature
    (timestamp,) = struct.unpack(">Q", raw[:8])
    assert timestamp == 1679315147
    assert cosigned_message(parsed.text, timestamp) == SPEC_MESSAGE


def test_the_key_id_commits_to_the_name_and_the_cosignature_type() -> None:
    public = bytes(range(32))
    expected = hashlib.sha256(NAME.encode() + b"\n\x04" + public).digest()[:4]
    assert cosigner_key_id(NAME, public) == expected
    vkey = cosigner_vkey(NAME, public)
    encoded = base64.b64encode(b"\x04" + public).decode()
    assert vkey == f"{NAME}+{expected.hex()}+{encoded}"
    assert parse_cosigner_key(vkey) == CosignerKey(NAME, expected, public)


@pytest.mark.parametrize(
    "vkey",
    [
        # A log's key (type 0x01) is not a cosigner key.
        "example.com/log+00000000+" + base64.b64encode(b"\x01" + bytes(32)).decode(),
        "witness.test/w1+00000000+" + base64.b64encode(b"\x04" + bytes(32)).decode(),
        "witness.test/w1+zz+AAAA",
        "no-plus-signs",
    ],
)
def test_a_malformed_or_mismatched_cosigner_key_is_refused(vkey: str) -> None:
    with pytest.raises(MalformedNote):
        parse_cosigner_key(vkey)


def test_a_cosignature_verifies_and_states_its_time() -> None:
    key, other = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    witness = parse_cosigner_key(cosigner_vkey(NAME, _public(key)))
    line = cosign(SPEC_BODY, NAME, key, 1_790_000_000)
    stranger = cosign(SPEC_BODY, "witness.test/w2", other, 1_790_000_001)
    found = verify_cosignatures(_note(SPEC_LOG_LINE, line, stranger), [witness])
    assert [(c.name, c.timestamp) for c in found] == [(NAME, 1_790_000_000)]
    assert verify_cosignatures(_note(SPEC_LOG_LINE), [witness]) == []


def test_a_cosignature_of_another_body_or_time_does_not_verify() -> None:
    key = Ed25519PrivateKey.generate()
    witness = parse_cosigner_key(cosigner_vkey(NAME, _public(key)))
    line = cosign(SPEC_BODY, NAME, key, 1_790_000_000)
    forked = SPEC_BODY.replace("20852163", "20852164")
    with pytest.raises(MalformedNote, match="invalid cosignature"):
        verify_cosignatures(forked + "\n" + line, [witness])
    prefix, _, b64 = line.rstrip("\n").rpartition(" ")
    raw = bytearray(base64.b64decode(b64))
    raw[11] ^= 1  # the timestamp's last byte
    moved = f"{prefix} {base64.b64encode(bytes(raw)).decode()}\n"
    with pytest.raises(MalformedNote, match="invalid cosignature"):
        verify_cosignatures(_note(moved), [witness])
