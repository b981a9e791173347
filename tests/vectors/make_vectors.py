"""Write ``ledger_vectors.json``: RFC 6962 proofs (with tampered cases) and a signed entry.

Proofs come from a naive recursive RFC 6962 tree written here, independent of ``ledger.proofs``;
the entry and checkpoint pin the wire format with a fixed test key. Run from the repository root:
``python -m tests.vectors.make_vectors``.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger.checkpoint import Checkpoint, sign_checkpoint
from ledger.entry import GENESIS_PREV, Actor, EntryType, build_entry, format_ts
from ledger.keys import Signer

OUT = Path(__file__).with_name("ledger_vectors.json")
SEED = hashlib.sha256(b"facewarden ledger test vector key").digest()  # test key, never deployed


def _h(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def _mth(d: list[bytes]) -> bytes:
    if len(d) == 1:
        return _h(b"\x00" + d[0])
    k = 1 << ((len(d) - 1).bit_length() - 1)
    return _h(b"\x01" + _mth(d[:k]) + _mth(d[k:]))


def _path(m: int, d: list[bytes]) -> list[bytes]:
    if len(d) == 1:
        return []
    k = 1 << ((len(d) - 1).bit_length() - 1)
    if m < k:
        return [*_path(m, d[:k]), _mth(d[k:])]
    return [*_path(m - k, d[k:]), _mth(d[:k])]


def _subproof(m: int, d: list[bytes], b: bool) -> list[bytes]:
    if m == len(d):
        return [] if b else [_mth(d)]
    k = 1 << ((len(d) - 1).bit_length() - 1)
    if m <= k:
        return [*_subproof(m, d[:k], b), _mth(d[k:])]
    return [*_subproof(m - k, d[k:], False), _mth(d[:k])]


def _flip(proof: list[bytes], i: int) -> list[bytes]:
    out = list(proof)
    out[i] = bytes([out[i][0] ^ 0x10]) + out[i][1:]
    return out


def _hex(proof: list[bytes]) -> list[str]:
    return [p.hex() for p in proof]


def inclusion_cases(leaves: list[bytes]) -> list[dict[str, Any]]:
    cases = []
    for size, index in [(1, 0), (3, 2), (5, 1), (8, 5), (13, 0), (13, 12), (13, 7)]:
        root, leaf = _mth(leaves[:size]), _h(b"\x00" + leaves[index])
        proof = _path(index, leaves[:size])
        base = {"index": index, "size": size, "leaf_hash": leaf.hex(), "root": root.hex()}
        cases.append({**base, "desc": "valid", "valid": True, "proof": _hex(proof)})
        tampered: list[tuple[str, dict[str, Any]]] = [
            ("wrong size", {"size": size * 2}),
            ("wrong index", {"index": (index + 1) % size} if size > 1 else {"index": 1}),
            ("wrong root", {"root": bytes([root[0] ^ 1]).hex() + root[1:].hex()}),
            ("trailing element", {"proof": _hex([*proof, root])}),
        ]
        if proof:
            tampered += [
                ("flipped bit", {"proof": _hex(_flip(proof, len(proof) - 1))}),
                ("truncated proof", {"proof": _hex(proof[:-1])}),
            ]
        for desc, change in tampered:
            cases.append({**base, "proof": _hex(proof), **change, "desc": desc, "valid": False})
    return cases


def consistency_cases(leaves: list[bytes]) -> list[dict[str, Any]]:
    cases = []
    for first, second in [(1, 1), (1, 8), (2, 5), (4, 13), (6, 8), (6, 7), (7, 13), (12, 13)]:
        r1, r2 = _mth(leaves[:first]), _mth(leaves[:second])
        proof = _subproof(first, leaves[:second], True) if first < second else []
        base = {"first": first, "second": second, "first_root": r1.hex(), "second_root": r2.hex()}
        cases.append({**base, "desc": "valid", "valid": True, "proof": _hex(proof)})
        if not proof:
            continue
        tampered: list[tuple[str, dict[str, Any]]] = [
            ("swapped roots", {"first_root": r2.hex(), "second_root": r1.hex()}),
            ("wrong first size", {"first": first + 1 if first + 1 < second else first - 1}),
            ("wrong second size", {"second": second * 2}),
            ("flipped bit", {"proof": _hex(_flip(proof, 0))}),
            ("truncated proof", {"proof": _hex(proof[:-1])}),
            ("empty proof", {"proof": []}),
            ("trailing root", {"proof": _hex([*proof, r2])}),
        ]
        for desc, change in tampered:
            cases.append({**base, "proof": _hex(proof), **change, "desc": desc, "valid": False})
    return cases


def entry_vector() -> dict[str, Any]:
    signer = Signer(
        name="vectors.example/ledger", private_key=Ed25519PrivateKey.from_private_bytes(SEED)
    )
    entry = build_entry(
        seq=0,
        ts=format_ts(datetime(2026, 11, 27, 18, 7, 5, 123456, tzinfo=UTC)),
        entry_type=EntryType.LEGAL_BASIS_APPROVE,
        actor=Actor(kind="user", id="oversight-7", agency=None),
        payload={"legal_basis": "lb-42", "scope": ["search:run"], "expires": "2027-01-01"},
        prev=GENESIS_PREV,
        signer=signer,
    )
    leaf = _h(b"\x00" + entry.raw)
    note = sign_checkpoint(Checkpoint(signer.name, 1, leaf), signer)
    return {
        "seed": SEED.hex(),
        "verifier_key": signer.verifier_key,
        "entry": entry.raw.decode(),
        "leaf_hash": leaf.hex(),
        "checkpoint": note,
    }


def main() -> None:
    """Regenerate the vectors file."""
    leaves = [f"leaf-{i}".encode() for i in range(13)]
    data = {
        "leaves": [x.hex() for x in leaves],
        "inclusion": inclusion_cases(leaves),
        "consistency": consistency_cases(leaves),
        "entry": entry_vector(),
    }
    OUT.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
