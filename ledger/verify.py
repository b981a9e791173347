"""Offline verification of a FaceWarden ledger: pure checks over bytes and integers.

``verify_log`` reads through a ``Fetcher`` and never trusts a hash it was sent:
  (1) checkpoint signatures against the pinned key(s) and the announced successors;
  (2) every entry parsed as canonical RFC 8785 JSON and its Ed25519 signature checked, and the
      key-rotation chain followed from the pinned first key (unannounced keys rejected);
  (3) seq contiguity from 0, non-decreasing timestamps, and every ``prev`` link;
  (4) every leaf hash recomputed from the entry bytes, the RFC 6962 root rebuilt and compared
      with the checkpoint and with every earlier checkpoint supplied;
  (5) consistency with the last checkpoint trusted before (witness-style ``TrustedState``):
      truncation, rollback and forks are caught, and the state only advances on success;
  (6) transport integrity (a bundle's manifest).
Imports only the standard library, ``cryptography`` and ``rfc8785``.
"""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from ledger.bundle import Fetcher, TrustedState
from ledger.checkpoint import (
    Checkpoint,
    MalformedNote,
    NoteVerifier,
    open_note,
    parse_checkpoint,
    parse_verifier_key,
)
from ledger.entry import GENESIS_PREV, EntryType, LedgerError, parse_entry, signing_bytes
from ledger.hashing import HASH_SIZE, node_hash
from ledger.proofs import MemoryTree

__all__ = [
    "EntrySummary",
    "Report",
    "TrustedState",
    "VerificationError",
    "root_from_inclusion",
    "verify_consistency",
    "verify_inclusion",
    "verify_log",
]

_PARALLEL_THRESHOLD = 4096
_CHUNK = 4096


class VerificationError(LedgerError):
    """The log failed a check; ``step`` is the numbered step, ``evidence`` shows why."""

    def __init__(
        self,
        message: str,
        *,
        step: int = 0,
        seq: int | None = None,
        evidence: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.step = step
        self.seq = seq
        self.evidence = evidence or {}


def _lsb(n: int) -> int:
    return n & 1


def root_from_inclusion(index: int, size: int, leaf: bytes, proof: Sequence[bytes]) -> bytes:
    """The root implied by an inclusion proof (RFC 9162 §2.1.3.2).

    Raises VerificationError for a malformed proof.
    """
    if not 0 <= index < size:
        raise VerificationError(f"leaf index {index} is not below tree size {size}")
    if any(len(p) != HASH_SIZE for p in proof) or len(leaf) != HASH_SIZE:
        raise VerificationError("proof hashes must be 32 bytes")
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            raise VerificationError("inclusion proof is too long")
        if _lsb(fn) or fn == sn:
            r = node_hash(p, r)
            while not _lsb(fn) and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise VerificationError("inclusion proof is too short")
    return r


def verify_inclusion(
    index: int, size: int, leaf: bytes, proof: Sequence[bytes], root: bytes
) -> None:
    """Check that ``leaf`` (a leaf hash) is entry ``index`` of the tree ``(size, root)``.

    Raises VerificationError.
    """
    if root_from_inclusion(index, size, leaf, proof) != root:
        raise VerificationError("inclusion proof does not lead to the root")


def verify_consistency(
    first: int, second: int, first_root: bytes, second_root: bytes, proof: Sequence[bytes]
) -> None:
    """Check that tree ``(first, first_root)`` is a prefix of ``(second, second_root)``.

    RFC 9162 §2.1.4.2. Raises VerificationError.
    """
    if not 0 <= first <= second:
        raise VerificationError(f"size {first} cannot grow into size {second}")
    if any(len(p) != HASH_SIZE for p in proof):
        raise VerificationError("proof hashes must be 32 bytes")
    if first == second:
        if proof or first_root != second_root:
            raise VerificationError("equal sizes need equal roots and an empty proof")
        return
    if first == 0:
        if proof:
            raise VerificationError("a proof from the empty tree must be empty")
        return
    if not proof:
        raise VerificationError("empty consistency proof")
    path = list(proof)
    if first & (first - 1) == 0:
        path.insert(0, first_root)
    fn, sn = first - 1, second - 1
    while _lsb(fn):
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise VerificationError("consistency proof is too long")
        if _lsb(fn) or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            while not _lsb(fn) and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0 or fr != first_root or sr != second_root:
        raise VerificationError("consistency proof does not match the roots")


@dataclass(frozen=True, slots=True)
class EntrySummary:
    """What the steps after (2) need from one entry, once its signature has checked out."""

    seq: int
    ts: str
    type: str
    prev: str
    key_id: str
    new_key: str | None
    leaf_hash: bytes
    digest: str


def _check_chunk(
    start: int, lines: list[bytes], keys: dict[str, bytes]
) -> tuple[list[EntrySummary], tuple[int, str] | None]:
    # (2) runs here, possibly in a worker process: parse, then verify each signature.
    public = {kid: Ed25519PublicKey.from_public_bytes(pub) for kid, pub in keys.items()}
    out: list[EntrySummary] = []
    for offset, line in enumerate(lines):
        position = start + offset
        try:
            entry = parse_entry(line)
        except LedgerError as exc:
            return out, (position, f"entry at line {position + 1} is malformed: {exc}")
        key = public.get(entry.key_id)
        if key is None:
            return out, (
                position,
                f"entry {entry.seq} is signed by key {entry.key_id}, "
                "which is neither pinned nor announced",
            )
        try:
            key.verify(entry.signature, signing_bytes(entry))
        except InvalidSignature:
            return out, (position, f"entry {entry.seq} has an invalid signature")
        new_key = entry.payload.get("new_key") if entry.type is EntryType.KEY_ROTATE else None
        out.append(
            EntrySummary(
                seq=entry.seq,
                ts=entry.ts,
                type=str(entry.type),
                prev=entry.prev,
                key_id=entry.key_id,
                new_key=new_key if isinstance(new_key, str) else None,
                leaf_hash=hashlib.sha256(b"\x00" + line).digest(),
                digest=hashlib.sha256(line).hexdigest(),
            )
        )
    return out, None


def _check_entries(
    lines: list[bytes], keys: dict[str, bytes], workers: int | None
) -> list[EntrySummary]:
    chunks = [(at, lines[at : at + _CHUNK]) for at in range(0, len(lines), _CHUNK)]
    workers = workers if workers is not None else (os.cpu_count() or 1)
    if len(lines) < _PARALLEL_THRESHOLD or workers <= 1:
        results = [_check_chunk(at, chunk, keys) for at, chunk in chunks]
    else:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            futures = [pool.submit(_check_chunk, at, chunk, keys) for at, chunk in chunks]
            results = [f.result() for f in futures]
    summaries: list[EntrySummary] = []
    for part, problem in results:
        summaries += part
        if problem is not None:
            raise VerificationError(problem[1], step=2, seq=problem[0])
    return summaries


@dataclass(frozen=True, slots=True)
class Report:
    """A successful verification."""

    origin: str
    size: int
    root: bytes
    keys: tuple[str, ...]
    checkpoints_checked: int
    previous_size: int | None

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready summary."""
        return {
            "ok": True,
            "origin": self.origin,
            "size": self.size,
            "root": self.root.hex(),
            "keys": list(self.keys),
            "checkpoints_checked": self.checkpoints_checked,
            "previous_size": self.previous_size,
        }


def _open_checkpoint(
    note: str, known: Sequence[NoteVerifier], origin: str
) -> tuple[Checkpoint, NoteVerifier]:
    try:
        text, good = open_note(note, known)
        checkpoint = parse_checkpoint(text)
    except MalformedNote as exc:
        raise VerificationError(
            f"checkpoint rejected: {exc}", step=1, evidence={"checkpoint": note}
        ) from exc
    if checkpoint.origin != origin:
        raise VerificationError(
            f"checkpoint origin {checkpoint.origin!r} is not {origin!r}",
            step=1,
            evidence={"checkpoint": note},
        )
    return checkpoint, good[0]


def verify_log(
    fetcher: Fetcher,
    *,
    pinned: Sequence[str],
    state: TrustedState | None = None,
    workers: int | None = None,
) -> Report:
    """Run steps (1)-(6) on the log behind ``fetcher``; see the module docstring.

    ``pinned`` are verifier keys; the first entry must be signed by one of them.
    Raises VerificationError with the step, the first bad seq and the evidence.
    """
    try:
        pinned_keys = [parse_verifier_key(k) for k in pinned]
        hinted = [parse_verifier_key(k) for k in fetcher.verifier_keys()]
        note = fetcher.checkpoint()
        earlier_notes = fetcher.checkpoints()
    except (LedgerError, ValueError) as exc:
        raise VerificationError(f"cannot read the log: {exc}", step=1) from exc
    if not pinned_keys:
        raise VerificationError("no pinned key", step=1)
    origin = pinned_keys[0].name
    candidates = list({(v.name, v.key_id): v for v in [*pinned_keys, *hinted]}.values())

    # (1) checkpoint signatures against the pinned key(s) and announced successors
    latest, latest_key = _open_checkpoint(note, candidates, origin)
    earlier = {
        size: _open_checkpoint(text, candidates, origin)
        for size, text in sorted(earlier_notes.items())
    }

    # (2) every entry signature, then the key-rotation chain from the pinned first key
    try:
        lines = fetcher.entries(0, latest.size + 1)
    except LedgerError as exc:
        raise VerificationError(f"cannot read the entries: {exc}", step=2) from exc
    keys = {v.key_id_hex: v.public_key for v in candidates}
    summaries = _check_entries(lines, keys, workers)
    chain = _follow_chain(summaries, pinned_keys, origin)

    # (3) seq contiguity, non-decreasing timestamps, prev links
    prev_digest, prev_ts = GENESIS_PREV, ""
    for position, s in enumerate(summaries):
        if s.seq != position:
            raise VerificationError(
                f"expected seq {position} at line {position + 1}, found seq {s.seq}",
                step=3,
                seq=position,
            )
        if s.ts < prev_ts:
            raise VerificationError(
                f"entry {s.seq} is dated {s.ts}, before {prev_ts}", step=3, seq=s.seq
            )
        if s.prev != prev_digest:
            raise VerificationError(
                f"entry {s.seq} does not link to entry {s.seq - 1}", step=3, seq=s.seq
            )
        prev_digest, prev_ts = s.digest, s.ts

    # (4) leaf hashes recomputed, roots rebuilt and compared with every checkpoint
    if len(summaries) != latest.size:
        raise VerificationError(
            f"the checkpoint commits to {latest.size} entries but the log holds {len(summaries)}",
            step=4,
            seq=min(len(summaries), latest.size),
            evidence={"checkpoint": note},
        )
    tree = MemoryTree(s.leaf_hash for s in summaries)
    signer_at = _signer_by_size(summaries)
    for size, (checkpoint, key) in [*earlier.items(), (latest.size, (latest, latest_key))]:
        text = note if size == latest.size else earlier_notes[size]
        if checkpoint.size != size or size > tree.size:
            raise VerificationError(
                f"checkpoint of size {checkpoint.size} filed as {size} is not part of this log",
                step=4,
                evidence={"checkpoint": text},
            )
        if tree.root(size) != checkpoint.root:
            raise VerificationError(
                f"fork: the checkpoint of size {size} commits to a root the entries do not produce",
                step=4,
                seq=size - 1,
                evidence={
                    "checkpoint": text,
                    "latest_checkpoint": note,
                    "recomputed_root": base64.b64encode(tree.root(size)).decode(),
                },
            )
        if size and key.key_id_hex != signer_at[size]:
            raise VerificationError(
                f"checkpoint of size {size} is signed by {key.vkey}, not "
                "the key current at that size",
                step=4,
                evidence={"checkpoint": text},
            )
    if [v.vkey for v in hinted] != [v.vkey for v in chain]:
        raise VerificationError(
            "the published key list differs from the rotation chain",
            step=4,
            evidence={"chain": [v.vkey for v in chain]},
        )

    # (5) consistency with the last trusted checkpoint
    if state is not None:
        _check_against_state(state, latest, note, tree)

    # (6) transport integrity
    try:
        problems = fetcher.integrity_problems()
    except LedgerError as exc:
        raise VerificationError(f"cannot check the bundle's integrity: {exc}", step=6) from exc
    if problems:
        raise VerificationError(
            "bundle files differ from the manifest: " + "; ".join(problems),
            step=6,
            evidence={"problems": problems},
        )
    return Report(
        origin=origin,
        size=latest.size,
        root=latest.root,
        keys=tuple(v.vkey for v in chain),
        checkpoints_checked=len(earlier) + 1,
        previous_size=None if state is None else state.size,
    )


def _follow_chain(
    summaries: Sequence[EntrySummary], pinned: Sequence[NoteVerifier], origin: str
) -> list[NoteVerifier]:
    chain: list[NoteVerifier] = []
    pinned_ids = {v.key_id_hex: v for v in pinned}
    for s in summaries:
        if not chain:
            if s.key_id not in pinned_ids:
                raise VerificationError(
                    f"entry {s.seq} is signed by {s.key_id}, not a pinned key", step=2, seq=s.seq
                )
            chain.append(pinned_ids[s.key_id])
        if s.key_id != chain[-1].key_id_hex:
            raise VerificationError(
                f"entry {s.seq} is signed by key {s.key_id}, but the "
                f"current key is {chain[-1].key_id_hex} (unannounced key)",
                step=2,
                seq=s.seq,
            )
        if s.type == EntryType.KEY_ROTATE:
            try:
                new = parse_verifier_key(s.new_key or "")
            except MalformedNote as exc:
                raise VerificationError(
                    f"entry {s.seq}: bad key:rotate payload: {exc}", step=2, seq=s.seq
                ) from exc
            if new.name != origin or any(new.key_id == v.key_id for v in chain):
                raise VerificationError(
                    f"entry {s.seq}: key:rotate must name a fresh key under {origin!r}",
                    step=2,
                    seq=s.seq,
                )
            chain.append(new)
    return chain


def _signer_by_size(summaries: Sequence[EntrySummary]) -> list[str]:
    # A checkpoint of size n is signed by the key that signed entry n - 1.
    return ["", *(s.key_id for s in summaries)]


def _check_against_state(
    state: TrustedState, latest: Checkpoint, note: str, tree: MemoryTree
) -> None:
    evidence: dict[str, Any] = {"trusted_checkpoint": state.checkpoint, "checkpoint": note}
    if state.origin != latest.origin:
        raise VerificationError(
            f"the state file is for log {state.origin!r}", step=5, evidence=evidence
        )
    if state.size > latest.size:
        raise VerificationError(
            f"rollback: the log shrank from {state.size} to {latest.size} entries",
            step=5,
            seq=latest.size,
            evidence=evidence,
        )
    proof = tree.consistency(state.size, latest.size)
    evidence["proof"] = [base64.b64encode(p).decode() for p in proof]
    try:
        verify_consistency(state.size, latest.size, state.root, latest.root, proof)
    except VerificationError as exc:
        raise VerificationError(
            f"fork: the log at size {state.size} is not the one trusted before",
            step=5,
            seq=state.size - 1,
            evidence=evidence,
        ) from exc
