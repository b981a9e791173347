"""The checks the offline verifier (``ledger.verify``) and the live witness (``ledger.witness``)
both run, by step: the checkpoint's signature, the key-rotation chain, the entries' links,
and the tree heads against the roots the entries rebuild.

Imports only the standard library, ``cryptography`` and ``rfc8785``.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

from ledger.checkpoint import (
    Checkpoint,
    MalformedNote,
    NoteVerifier,
    open_note,
    parse_checkpoint,
    parse_verifier_key,
)
from ledger.entry import LedgerError

__all__ = [
    "TreeHead",
    "VerificationError",
    "VerifiedHead",
    "check_entry_count",
    "check_link",
    "check_tree_heads",
    "next_key",
    "open_checkpoint",
    "rotated_key",
]


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


@dataclass(frozen=True, slots=True)
class VerifiedHead:
    """What every successful verification reports: the tree head accepted and the key chain."""

    origin: str
    size: int
    root: bytes
    keys: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready summary: ``ok``, then the fields in order (bytes as hex)."""
        out: dict[str, Any] = {"ok": True}
        for f in fields(self):
            value = getattr(self, f.name)
            out[f.name] = value.hex() if isinstance(value, bytes) else _listed(value)
        return out


def _listed(value: object) -> object:
    return list(value) if isinstance(value, tuple) else value


def open_checkpoint(
    note: str, known: Sequence[NoteVerifier], origin: str
) -> tuple[Checkpoint, NoteVerifier]:
    """Step (1): open a signed checkpoint with one of ``known`` keys; returns it and its signer.

    Raises VerificationError (step 1) for a bad signature, form or origin.
    """
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


def next_key(
    key_id: str,
    chain: list[NoteVerifier],
    pinned: Sequence[NoteVerifier],
    *,
    seq: int,
    step: int,
) -> NoteVerifier:
    """The key of the rotation ``chain`` that entry ``seq``, signed by ``key_id``, must carry.

    The first entry starts the chain with the pinned key that signed it (appended to ``chain``).
    Raises VerificationError (``step``) for an unpinned first key or an unannounced key.
    """
    if not chain:
        first = next((v for v in pinned if v.key_id_hex == key_id), None)
        if first is None:
            raise VerificationError(
                f"entry {seq} is signed by {key_id}, not a pinned key", step=step, seq=seq
            )
        chain.append(first)
    if key_id != chain[-1].key_id_hex:
        raise VerificationError(
            f"entry {seq} is signed by key {key_id}, but the current key is "
            f"{chain[-1].key_id_hex} (unannounced key)",
            step=step,
            seq=seq,
        )
    return chain[-1]


def rotated_key(
    new_key: object, chain: Sequence[NoteVerifier], origin: str, *, seq: int, step: int
) -> NoteVerifier:
    """The key a ``key:rotate`` entry ``seq`` hands over to: a fresh key under ``origin``.

    Raises VerificationError (``step``) for a malformed, foreign or reused key.
    """
    try:
        new = parse_verifier_key(new_key if isinstance(new_key, str) else "")
    except MalformedNote as exc:
        raise VerificationError(
            f"entry {seq}: bad key:rotate payload: {exc}", step=step, seq=seq
        ) from exc
    if new.name != origin or any(new.key_id == v.key_id for v in chain):
        raise VerificationError(
            f"entry {seq}: key:rotate must name a fresh key under {origin!r}", step=step, seq=seq
        )
    return new


def check_link(
    position: int, seq: int, ts: str, prev: str, *, last_ts: str, last_digest: str
) -> None:
    """Step (3): the entry at ``position`` has that seq, is dated no earlier than the one before
    (``last_ts``) and links to it: ``prev`` is the SHA-256 of its bytes (``last_digest``).

    Raises VerificationError (step 3).
    """
    if seq != position:
        raise VerificationError(
            f"expected seq {position} at line {position + 1}, found seq {seq}",
            step=3,
            seq=position,
        )
    if ts < last_ts:
        raise VerificationError(f"entry {seq} is dated {ts}, before {last_ts}", step=3, seq=seq)
    if prev != last_digest:
        raise VerificationError(f"entry {seq} does not link to entry {seq - 1}", step=3, seq=seq)


@dataclass(frozen=True, slots=True)
class TreeHead:
    """A checkpoint opened in step (1), beside what its entries say in step (4)."""

    checkpoint: Checkpoint
    note: str
    signer: NoteVerifier
    # The root rebuilt from the entries, and the key id that signed entry size - 1 ("" if none).
    root: bytes
    last_key_id: str
    # What else a fork report shows (the latest or the trusted checkpoint).
    evidence: Mapping[str, Any] = field(default_factory=dict)


def check_entry_count(checkpoint: Checkpoint, note: str, count: int) -> None:
    """Step (4): the log holds as many entries as the checkpoint commits to.

    Raises VerificationError (step 4) with the checkpoint.
    """
    if count != checkpoint.size:
        raise VerificationError(
            f"the checkpoint commits to {checkpoint.size} entries but the log holds {count}",
            step=4,
            seq=min(count, checkpoint.size),
            evidence={"checkpoint": note},
        )


def check_tree_heads(
    heads: Sequence[TreeHead],
    *,
    published: Sequence[NoteVerifier],
    chain: Sequence[NoteVerifier],
) -> None:
    """Step (4): each checkpoint's root is the root its entries rebuild (RFC 6962 §2.1), it is
    signed by the key that signed its last entry, and the published key list is the chain.

    Raises VerificationError (step 4): a fork carries the checkpoint and the recomputed root.
    """
    for head in heads:
        size = head.checkpoint.size
        if head.root != head.checkpoint.root:
            raise VerificationError(
                f"fork: the checkpoint of size {size} commits to a root the entries do not produce",
                step=4,
                seq=size - 1,
                evidence={
                    **head.evidence,
                    "checkpoint": head.note,
                    "recomputed_root": base64.b64encode(head.root).decode(),
                },
            )
        if size and head.last_key_id and head.signer.key_id_hex != head.last_key_id:
            raise VerificationError(
                f"the checkpoint of size {size} is signed by {head.signer.vkey}, not by the key "
                "that signed its last entry",
                step=4,
                evidence={"checkpoint": head.note},
            )
    if [v.vkey for v in published] != [v.vkey for v in chain]:
        raise VerificationError(
            "the published key list differs from the rotation chain",
            step=4,
            evidence={"chain": [v.vkey for v in chain], "published": [v.vkey for v in published]},
        )
