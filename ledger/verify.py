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
The checks of steps (1)-(5) are the live witness's too (``ledger.checks``, and
``check_trusted_state`` here).
Imports only the standard library, ``cryptography`` and ``rfc8785``.
"""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from ledger.bundle import Fetcher, TrustedState
from ledger.checkpoint import (
    Checkpoint,
    NoteVerifier,
    parse_verifier_key,
)
from ledger.checks import (
    TreeHead,
    VerificationError,
    VerifiedHead,
    check_entry_count,
    check_link,
    check_tree_heads,
    next_key,
    open_checkpoint,
    rotated_key,
)
from ledger.entry import GENESIS_PREV, EntryType, LedgerError, parse_entry, signing_bytes
from ledger.hashing import HASH_SIZE, node_hash
from ledger.proofs import MemoryTree

__all__ = [
    "EntrySummary",
    "Report",
    "TrustedState",
    "VerificationError",
    "check_trusted_state",
    "root_from_inclusion",
    "verify_consistency",
    "verify_inclusion",
    "verify_log",
]

_PARALLEL_THRESHOLD = 4096
_CHUNK = 4096


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
class Report(VerifiedHead):
    """A successful verification of the whole log."""

    checkpoints_checked: int
    previous_size: int | None


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
    latest, latest_key = open_checkpoint(note, candidates, origin)
    earlier = {
        size: open_checkpoint(text, candidates, origin)
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
    last_digest, last_ts = GENESIS_PREV, ""
    for position, s in enumerate(summaries):
        check_link(position, s.seq, s.ts, s.prev, last_ts=last_ts, last_digest=last_digest)
        last_digest, last_ts = s.digest, s.ts

    # (4) leaf hashes recomputed, roots rebuilt and compared with every checkpoint
    check_entry_count(latest, note, len(summaries))
    tree = MemoryTree(s.leaf_hash for s in summaries)
    signer_at = _signer_by_size(summaries)
    heads = []
    for size, (checkpoint, key) in [*earlier.items(), (latest.size, (latest, latest_key))]:
        text = note if size == latest.size else earlier_notes[size]
        if checkpoint.size != size or size > tree.size:
            raise VerificationError(
                f"checkpoint of size {checkpoint.size} filed as {size} is not part of this log",
                step=4,
                evidence={"checkpoint": text},
            )
        heads.append(
            TreeHead(
                checkpoint, text, key, tree.root(size), signer_at[size], {"latest_checkpoint": note}
            )
        )
    check_tree_heads(heads, published=hinted, chain=chain)

    # (5) consistency with the last trusted checkpoint
    if state is not None:
        check_trusted_state(state, latest, note, tree.consistency, step=5)

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
    for s in summaries:
        next_key(s.key_id, chain, pinned, seq=s.seq, step=2)
        if s.type == EntryType.KEY_ROTATE:
            chain.append(rotated_key(s.new_key, chain, origin, seq=s.seq, step=2))
    return chain


def _signer_by_size(summaries: Sequence[EntrySummary]) -> list[str]:
    # A checkpoint of size n is signed by the key that signed entry n - 1.
    return ["", *(s.key_id for s in summaries)]


def check_trusted_state(
    state: TrustedState,
    latest: Checkpoint,
    note: str,
    prove: Callable[[int, int], list[bytes]],
    *,
    step: int,
) -> None:
    """The checkpoint trusted before is a prefix of ``latest``: same log, no rollback, and the
    consistency proof ``prove(state.size, latest.size)`` checks out (RFC 9162 §2.1.4.2).

    Raises VerificationError (``step``) with both checkpoints and the proof as evidence.
    """
    evidence: dict[str, Any] = {"trusted_checkpoint": state.checkpoint, "checkpoint": note}
    if state.origin != latest.origin:
        raise VerificationError(
            f"the state file is for log {state.origin!r}", step=step, evidence=evidence
        )
    if state.size > latest.size:
        raise VerificationError(
            f"rollback: the log shrank from {state.size} to {latest.size} entries",
            step=step,
            seq=latest.size,
            evidence=evidence,
        )
    try:
        proof = prove(state.size, latest.size) if 0 < state.size < latest.size else []
    except LedgerError as exc:
        raise VerificationError(
            f"cannot read the consistency proof: {exc}", step=step, evidence=evidence
        ) from exc
    evidence["proof"] = [base64.b64encode(p).decode() for p in proof]
    try:
        verify_consistency(state.size, latest.size, state.root, latest.root, proof)
    except VerificationError as exc:
        raise VerificationError(
            f"fork: the log at size {state.size} is not the one trusted before ({exc})",
            step=step,
            seq=state.size - 1,
            evidence=evidence,
        ) from exc
