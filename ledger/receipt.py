"""Offline check of a search receipt: the entry is signed, hashed into a leaf, and included.

A receipt carries the entry's canonical bytes, its ``seq`` and leaf hash, a signed checkpoint
and the inclusion proof. With the log's verifier key(s) an agency proves, with no trust in the
server, that the log committed to this exact entry at that position. Imports only the
standard library, ``cryptography`` and ``rfc8785`` (through ``entry``).

Steps:
  (1) the checkpoint is signed by one of the given keys and names the tree size and root;
  (2) the entry parses as canonical JSON and its signature verifies with its key;
  (3) the leaf hash is recomputed from the entry bytes and matches the receipt's;
  (4) the inclusion proof leads from that leaf at ``seq`` to the checkpoint's root.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from ledger.checkpoint import open_note, parse_checkpoint, parse_verifier_key
from ledger.entry import LedgerError, parse_entry, signing_bytes
from ledger.hashing import leaf_hash
from ledger.verify import VerificationError, verify_consistency, verify_inclusion

__all__ = ["LiveLog", "LiveReceiptReport", "ReceiptReport", "verify_receipt", "verify_receipt_live"]


@dataclass(frozen=True, slots=True)
class ReceiptReport:
    seq: int
    entry_type: str
    tree_size: int
    root: str
    signed_by: str


def _field(receipt: Mapping[str, Any], name: str, kind: type) -> Any:
    value = receipt.get(name)
    if not isinstance(value, kind) or isinstance(value, bool):
        raise VerificationError(
            f"receipt field {name!r} is missing or not a {kind.__name__}", step=0
        )
    return value


def verify_receipt(receipt: Mapping[str, Any], keys: Sequence[str]) -> ReceiptReport:
    """Check a receipt (the ``receipt`` object of a search answer) against verifier keys.

    Raises VerificationError naming the failed step.
    """
    seq = _field(receipt, "seq", int)
    entry_text = _field(receipt, "entry", str)
    note = _field(receipt, "checkpoint", str)
    claimed_leaf = _field(receipt, "leaf_hash", str)
    proof_hex = _field(receipt, "inclusion_proof", list)
    try:
        verifiers = [parse_verifier_key(k) for k in keys]
        # (1) checkpoint signature and contents
        text, signers = open_note(note, verifiers)
        checkpoint = parse_checkpoint(text)
    except (LedgerError, ValueError) as exc:
        raise VerificationError(f"checkpoint: {exc}", step=1) from exc
    if not signers:
        raise VerificationError("the checkpoint is not signed by any given key", step=1)
    if not 0 <= seq < checkpoint.size:
        raise VerificationError(
            f"seq {seq} is outside the checkpoint's tree of size {checkpoint.size}", step=1
        )
    # (2) the entry: canonical, at this seq, signed by a given key
    raw = entry_text.encode("utf-8")
    try:
        entry = parse_entry(raw)
    except (LedgerError, ValueError) as exc:
        raise VerificationError(f"entry: {exc}", step=2) from exc
    if entry.seq != seq:
        raise VerificationError(f"the entry says seq {entry.seq}, the receipt {seq}", step=2)
    key = next((v for v in verifiers if v.key_id_hex == entry.key_id), None)
    if key is None:
        raise VerificationError(f"the entry is signed by unknown key {entry.key_id}", step=2)
    try:
        signature = base64.b64decode(entry.sig, validate=True)
    except ValueError as exc:
        raise VerificationError("the entry's signature is not base64", step=2) from exc
    if not key.verify(signing_bytes(entry), signature):
        raise VerificationError("the entry's signature does not verify", step=2)
    # (3) the leaf hash, recomputed (RFC 6962 §2.1: SHA-256(0x00 || entry))
    leaf = leaf_hash(raw)
    if leaf.hex() != claimed_leaf.lower():
        raise VerificationError("the leaf hash does not match the entry bytes", step=3)
    # (4) inclusion in the signed tree
    try:
        proof = [bytes.fromhex(h) for h in proof_hex]
    except (TypeError, ValueError) as exc:
        raise VerificationError("the inclusion proof is not a list of hex hashes", step=4) from exc
    try:
        verify_inclusion(seq, checkpoint.size, leaf, proof, checkpoint.root)
    except VerificationError as exc:
        raise VerificationError(f"inclusion: {exc}", step=4) from exc
    return ReceiptReport(
        seq=seq,
        entry_type=str(entry.type),
        tree_size=checkpoint.size,
        root=checkpoint.root.hex(),
        signed_by=signers[0].vkey,
    )


class LiveLog(Protocol):
    """What a receipt is checked against live: the log's current checkpoint and its proofs
    (``ledger.bundle.HttpFetcher``)."""

    def checkpoint(self) -> str:
        """The latest (cosigned) checkpoint note."""
        ...

    def consistency(self, first: int, second: int) -> list[bytes]:
        """The RFC 6962 consistency proof between two sizes."""
        ...

    def inclusion(self, seq: int, size: int) -> list[bytes]:
        """The RFC 6962 inclusion proof of entry ``seq`` in the tree of ``size``."""
        ...


@dataclass(frozen=True, slots=True)
class LiveReceiptReport:
    """A receipt that the log still contains: its tree and today's."""

    receipt: ReceiptReport
    note: str
    size: int
    root: str


def verify_receipt_live(
    receipt: Mapping[str, Any], keys: Sequence[str], log: LiveLog
) -> LiveReceiptReport:
    """Check a receipt offline, then that today's log still contains its tree and its entry:
    the current checkpoint, signed by a given key, is at least as large, a consistency proof
    from the receipt's tree verifies, and so does an inclusion proof of the receipt's leaf in
    today's tree. (5) fails with both roots as evidence.

    Raises VerificationError naming the failed step.
    """
    report = verify_receipt(receipt, keys)
    note = log.checkpoint()
    try:
        text, _ = open_note(note, [parse_verifier_key(k) for k in keys])
        today = parse_checkpoint(text)
    except (LedgerError, ValueError) as exc:
        raise VerificationError(f"the live checkpoint: {exc}", step=5) from exc
    evidence = {
        "receipt_size": report.tree_size,
        "receipt_root": report.root,
        "live_size": today.size,
        "live_root": today.root.hex(),
    }
    if today.size < report.tree_size:
        raise VerificationError(
            f"the log now holds {today.size} entries, fewer than the receipt's {report.tree_size}:"
            " it was cut or rolled back, and may no longer hold the receipt's entry",
            step=5,
            evidence=evidence,
        )
    proof = log.consistency(report.tree_size, today.size) if today.size > report.tree_size else []
    try:
        verify_consistency(
            report.tree_size, today.size, bytes.fromhex(report.root), today.root, proof
        )
    except VerificationError as exc:
        raise VerificationError(
            f"today's log of {today.size} entries does not contain the receipt's tree of "
            f"{report.tree_size} ({exc}): the log was rewritten",
            step=5,
            evidence=evidence,
        ) from exc
    try:
        path = log.inclusion(report.seq, today.size)
        verify_inclusion(
            report.seq, today.size, bytes.fromhex(str(receipt["leaf_hash"])), path, today.root
        )
    except (LedgerError, ValueError) as exc:
        raise VerificationError(
            f"today's log of {today.size} entries does not include the receipt's entry "
            f"{report.seq} ({exc})",
            step=5,
            evidence=evidence,
        ) from exc
    return LiveReceiptReport(receipt=report, note=note, size=today.size, root=today.root.hex())
