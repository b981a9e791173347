"""C2SP signed notes and tlog checkpoints, with the golang.org/x/mod/sumdb/note known answers."""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger.checkpoint import (
    Checkpoint,
    MalformedNote,
    ed25519_key_id,
    format_checkpoint,
    open_note,
    parse_checkpoint,
    parse_verifier_key,
    sign_checkpoint,
    sign_note,
    split_note,
    verifier_key_string,
)
from ledger.hashing import EMPTY_ROOT
from ledger.keys import Signer

# golang.org/x/mod/sumdb/note note_test.go (TestSign, TestOpen, TestNewVerifier).
PETER_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
PETER_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
ENOCH_VKEY = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop"
TEXT = (
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n"
)
PETER_B64 = (
    "x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM="
)
PETER_SIG = f"\u2014 PeterNeumann {PETER_B64}\n"
ENOCH_SIG = (
    "\u2014 EnochRoot "
    "rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=\n"
)
# The example note of c2sp.org/signed-note (its key is not published: format only).
C2SP_EXAMPLE = (
    "Ognuno sta solo sul cuor della terra\ntrafitto da un raggio di sole:\n\ned è subito sera.\n"
    "\n\u2014 quasimodo.example/salvatore NnugSzTjtVAewIS+Z/iJhUPeFDkO/5QQ2i5ddnGITLlC+EhfLW9oJ"
    "KONrMouFSQU0xMcXxj99ihAQwaqP3ZekRwNtIc=\n"
)


def _peter() -> Signer:
    seed = base64.b64decode(PETER_SKEY.split("+", 4)[4])
    assert seed[0] == 1
    return Signer(name="PeterNeumann", private_key=Ed25519PrivateKey.from_private_bytes(seed[1:]))


def test_go_sign_known_answer() -> None:
    peter = _peter()
    assert peter.key_id == "c74f20a3"
    assert peter.verifier_key == PETER_VKEY
    assert sign_note(TEXT, peter) == TEXT + "\n" + PETER_SIG


def test_go_open_known_answer() -> None:
    peter, enoch = parse_verifier_key(PETER_VKEY), parse_verifier_key(ENOCH_VKEY)
    text, good = open_note(TEXT + "\n" + PETER_SIG + ENOCH_SIG, [peter])
    assert text == TEXT and good == [peter]
    _, good = open_note(TEXT + "\n" + PETER_SIG + ENOCH_SIG, [peter, enoch])
    assert good == [peter, enoch]
    with pytest.raises(MalformedNote, match="no verifiable signatures"):
        open_note(TEXT + "\n" + PETER_SIG + ENOCH_SIG, [])
    bad = TEXT + "\n" + PETER_SIG[:60] + "ABCD" + PETER_SIG[60:]
    with pytest.raises(MalformedNote, match="invalid signature for key PeterNeumann\\+c74f20a3"):
        open_note(bad, [peter])


@pytest.mark.parametrize(
    "note",
    [
        TEXT,
        TEXT + "\n",
        TEXT + "\n" + PETER_SIG[:-1],
        "\x01" + TEXT + "\n" + PETER_SIG,
        TEXT + "\n" + f"\u2014 Bad Name {PETER_B64}\n",
        TEXT + "\n" + PETER_SIG + "Unexpected line.\n",
    ],
)
def test_go_malformed_notes(note: str) -> None:
    with pytest.raises(MalformedNote):
        open_note(note, [parse_verifier_key(PETER_VKEY)])


def test_c2sp_example_note_parses() -> None:
    parsed = split_note(C2SP_EXAMPLE)
    assert parsed.text.endswith("sera.\n") and "\n\n" in parsed.text
    ((name, key_id, sig),) = parsed.signatures
    assert name == "quasimodo.example/salvatore" and len(key_id) == 4 and len(sig) == 64


def test_verifier_key_manglings_are_refused() -> None:
    parse_verifier_key(PETER_VKEY)
    for i in range(len(PETER_VKEY)):
        mangled = PETER_VKEY[:i] + chr(ord(PETER_VKEY[i]) + 1) + PETER_VKEY[i + 1 :]
        with pytest.raises(MalformedNote):
            parse_verifier_key(mangled)
    for cut in (1, 10, len(PETER_VKEY) - 1):
        with pytest.raises(MalformedNote):
            parse_verifier_key(PETER_VKEY[:cut])


def test_key_id_definition() -> None:
    peter = parse_verifier_key(PETER_VKEY)
    assert ed25519_key_id("PeterNeumann", peter.public_key).hex() == "c74f20a3"
    assert verifier_key_string("PeterNeumann", peter.public_key) == PETER_VKEY


def test_checkpoint_round_trip_and_signature() -> None:
    peter = _peter()
    body = format_checkpoint(Checkpoint("example.com/log", 0, EMPTY_ROOT))
    assert body == "example.com/log\n0\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n"
    note = sign_checkpoint(Checkpoint("PeterNeumann", 12, b"\x01" * 32, ("ext",)), peter)
    text, _ = open_note(note, [parse_verifier_key(PETER_VKEY)])
    assert parse_checkpoint(text) == Checkpoint("PeterNeumann", 12, b"\x01" * 32, ("ext",))


@pytest.mark.parametrize(
    "body",
    [
        "log\n012\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n",
        "log\n-1\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n",
        "log\n1\nAAAA\n",
        "log\n1\n",
        "\n1\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n",
        "log\n1\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=",
    ],
)
def test_bad_checkpoints(body: str) -> None:
    with pytest.raises(MalformedNote):
        parse_checkpoint(body)
