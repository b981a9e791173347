"""Incremental verification of a live log: a witness that reads only what is new.

``verify_increment`` starts from the ``TrustedState`` it accepted last time (or from the empty
log) and, for the latest checkpoint the server publishes:
  (1) opens the checkpoint with the pinned key or a key of the trusted rotation chain;
  (2) refuses a rollback (a smaller size) and checks the server's RFC 6962 consistency proof
      from the trusted size to the new one (RFC 9162 §2.1.4.2): a fork is reported with both
      checkpoints and the proof;
  (3) verifies each new entry: canonical form, Ed25519 signature by the current key of the
      chain (``key:rotate`` hands over), seq contiguity, non-decreasing ``ts``, ``prev`` link;
  (4) appends the new leaf hashes to the trusted compact range (the perfect subtrees covering
      ``[0, size)``) and requires the resulting root to be the checkpoint's root, signed by the
      key that signed the last entry; the published key list must equal the chain.
The proof alone does not yield the new tree's leaves; the compact range does, and it is what
ties the new entries to the trusted root (see docs/ledger.md). Nothing is trusted that was
only sent; the caller saves the returned state only on success.
Imports only the standard library, ``cryptography`` and ``rfc8785``.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from ledger.bundle import Fetcher, TrustedState
from ledger.checkpoint import MalformedNote, NoteVerifier, parse_verifier_key
from ledger.compact import CompactRange
from ledger.entry import GENESIS_PREV, EntryType, LedgerError, parse_entry, signing_bytes
from ledger.hashing import leaf_hash
from ledger.verify import VerificationError, _open_checkpoint, verify_consistency

__all__ = ["LiveFetcher", "WitnessReport", "verify_increment"]


class LiveFetcher(Fetcher, Protocol):
    """A fetcher that also serves consistency proofs (``HttpFetcher``)."""

    def consistency(self, first: int, second: int) -> list[bytes]:
        """The RFC 6962 consistency proof between two sizes."""
        ...


@dataclass(frozen=True, slots=True)
class WitnessReport:
    """A successful incremental verification."""

    origin: str
    size: int
    root: bytes
    keys: tuple[str, ...]
    previous_size: int | None
    new_entries: int

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready summary."""
        return {
            "ok": True,
            "origin": self.origin,
            "size": self.size,
            "root": self.root.hex(),
            "keys": list(self.keys),
            "previous_size": self.previous_size,
            "new_entries": self.new_entries,
        }


def _keys(vkeys: Sequence[str], step: int) -> list[NoteVerifier]:
    try:
        return [parse_verifier_key(k) for k in vkeys]
    except MalformedNote as exc:
        raise VerificationError(f"bad verifier key: {exc}", step=step) from exc


def verify_increment(
    fetcher: LiveFetcher, *, pinned: Sequence[str], state: TrustedState | None
) -> tuple[WitnessReport, TrustedState]:
    """Run steps (1)-(4) of the module docstring; returns the report and the new state.

    A ``state`` without a compact range (``not state.incremental``) is checked by reading
    the whole log: its root must be the rebuilt root at its size.
    Raises VerificationError with the step, the first bad seq and the evidence.
    """
    pinned_keys = _keys(pinned, 1)
    if not pinned_keys:
        raise VerificationError("no pinned key", step=1)
    origin = pinned_keys[0].name
    resume = state is not None and state.incremental
    chain = _keys(state.chain, 1) if resume and state is not None else []
    try:
        hinted = _keys(fetcher.verifier_keys(), 1)
        note = fetcher.checkpoint()
    except LedgerError as exc:
        raise VerificationError(f"cannot read the log: {exc}", step=1) from exc

    # (1) the checkpoint, signed by a pinned key, a key of the trusted chain, or a hinted one
    known = list({v.key_id: v for v in [*pinned_keys, *chain, *hinted]}.values())
    latest, signer = _open_checkpoint(note, known, origin)

    # (2) rollback and the server's consistency proof from the trusted checkpoint
    if state is not None:
        _check_consistency(fetcher, state, latest.size, latest.root, note)

    base = state if resume and state is not None else None
    tree = _trusted_range(base) if base else CompactRange()
    prev, prev_ts = (base.last_digest, base.last_ts) if base else (GENESIS_PREV, "")
    last_key = base.last_key_id if base else ""
    try:
        lines = fetcher.entries(tree.size, latest.size)
    except LedgerError as exc:
        raise VerificationError(f"cannot read the entries: {exc}", step=3) from exc
    if len(lines) != latest.size - tree.size:
        raise VerificationError(
            f"the checkpoint commits to {latest.size} entries, the server sent "
            f"{tree.size + len(lines)}",
            step=4,
            seq=tree.size + len(lines),
            evidence={"checkpoint": note},
        )

    # (3) each new entry: form, signature by the chain's current key, seq, ts, prev
    pinned_ids = {v.key_id_hex: v for v in pinned_keys}
    for line in lines:
        seq = tree.size
        try:
            entry = parse_entry(line)
        except LedgerError as exc:
            raise VerificationError(f"entry {seq} is malformed: {exc}", step=3, seq=seq) from exc
        if not chain:
            if entry.key_id not in pinned_ids:
                raise VerificationError(
                    f"entry {seq} is signed by {entry.key_id}, not a pinned key", step=3, seq=seq
                )
            chain.append(pinned_ids[entry.key_id])
        current = chain[-1]
        if entry.key_id != current.key_id_hex:
            raise VerificationError(
                f"entry {seq} is signed by key {entry.key_id}, but the current key is "
                f"{current.key_id_hex} (unannounced key)",
                step=3,
                seq=seq,
            )
        if not current.verify(signing_bytes(entry), entry.signature):
            raise VerificationError(f"entry {seq} has an invalid signature", step=3, seq=seq)
        if entry.seq != seq:
            raise VerificationError(f"expected seq {seq}, found {entry.seq}", step=3, seq=seq)
        if entry.ts < prev_ts:
            raise VerificationError(f"entry {seq} is dated before {prev_ts}", step=3, seq=seq)
        if entry.prev != prev:
            raise VerificationError(
                f"entry {seq} does not link to entry {seq - 1}", step=3, seq=seq
            )
        if entry.type is EntryType.KEY_ROTATE:
            chain.append(_rotation(entry.payload.get("new_key"), chain, origin, seq))
        prev, prev_ts, last_key = hashlib.sha256(line).hexdigest(), entry.ts, entry.key_id
        tree.append(leaf_hash(line))

    # (4) the root over the trusted range and the new leaves, its signer, the key list
    if tree.root() != latest.root:
        raise VerificationError(
            f"fork: the entries up to {latest.size} do not produce the checkpoint's root",
            step=4,
            seq=latest.size - 1,
            evidence={
                "trusted_checkpoint": state.checkpoint if state else None,
                "checkpoint": note,
                "recomputed_root": base64.b64encode(tree.root()).decode(),
            },
        )
    if latest.size and last_key and signer.key_id_hex != last_key:
        raise VerificationError(
            f"the checkpoint of size {latest.size} is signed by {signer.vkey}, not by the key "
            "that signed its last entry",
            step=4,
            evidence={"checkpoint": note},
        )
    if [v.vkey for v in hinted] != [v.vkey for v in chain]:
        raise VerificationError(
            "the published key list differs from the rotation chain",
            step=4,
            evidence={"chain": [v.vkey for v in chain], "published": [v.vkey for v in hinted]},
        )
    report = WitnessReport(
        origin=origin,
        size=latest.size,
        root=latest.root,
        keys=tuple(v.vkey for v in chain),
        previous_size=None if state is None else state.size,
        new_entries=latest.size - (state.size if state else 0),
    )
    new_state = TrustedState(
        origin=origin,
        size=latest.size,
        root=latest.root,
        checkpoint=note,
        cover=tree.hashes,
        chain=report.keys,
        last_digest=prev,
        last_ts=prev_ts,
        last_key_id=last_key,
    )
    return report, new_state


def _trusted_range(state: TrustedState) -> CompactRange:
    # The state's compact range must fold into the root it trusts, or the new root means nothing.
    try:
        tree = CompactRange.from_hashes(state.size, state.cover)
    except ValueError as exc:
        raise VerificationError(f"the state's compact range is unusable: {exc}", step=4) from exc
    if tree.root() != state.root:
        raise VerificationError(
            "the state's compact range does not fold into its trusted root",
            step=4,
            evidence={"trusted_checkpoint": state.checkpoint},
        )
    return tree


def _rotation(new_key: object, chain: list[NoteVerifier], origin: str, seq: int) -> NoteVerifier:
    try:
        new = parse_verifier_key(str(new_key or ""))
    except MalformedNote as exc:
        message = f"entry {seq}: bad key:rotate payload: {exc}"
        raise VerificationError(message, step=3, seq=seq) from exc
    if new.name != origin or any(new.key_id == v.key_id for v in chain):
        raise VerificationError(
            f"entry {seq}: key:rotate must name a fresh key under {origin!r}", step=3, seq=seq
        )
    return new


def _check_consistency(
    fetcher: LiveFetcher, state: TrustedState, size: int, root: bytes, note: str
) -> None:
    evidence: dict[str, Any] = {"trusted_checkpoint": state.checkpoint, "checkpoint": note}
    if state.size > size:
        raise VerificationError(
            f"rollback: the log shrank from {state.size} to {size} entries",
            step=2,
            seq=size,
            evidence=evidence,
        )
    try:
        proof = fetcher.consistency(state.size, size) if 0 < state.size < size else []
    except LedgerError as exc:
        raise VerificationError(
            f"cannot read the consistency proof: {exc}", step=2, evidence=evidence
        ) from exc
    evidence["proof"] = [base64.b64encode(p).decode() for p in proof]
    try:
        verify_consistency(state.size, size, state.root, root, proof)
    except VerificationError as exc:
        raise VerificationError(
            f"fork: the log at size {state.size} is not the one trusted before ({exc})",
            step=2,
            seq=state.size - 1,
            evidence=evidence,
        ) from exc
