"""Incremental verification of a live log: a witness that reads only what is new.

``verify_increment`` starts from the ``TrustedState`` it accepted last time (or from the empty
log) and, for the latest checkpoint the server publishes:
  (1) opens the checkpoint with the pinned key or a key of the trusted rotation chain;
  (2) refuses another log's state or a rollback (a smaller size) and checks the server's
      RFC 6962 consistency proof from the trusted size to the new one (RFC 9162 §2.1.4.2):
      a fork is reported with both checkpoints and the proof;
  (3) verifies each new entry: canonical form, Ed25519 signature by the current key of the
      chain (``key:rotate`` hands over), seq contiguity, non-decreasing ``ts``, ``prev`` link;
  (4) appends the new leaf hashes to the trusted compact range (``ledger.compact``: the
      perfect subtrees covering ``[0, size)``, which must fold into the trusted root) and
      requires the resulting root to be the checkpoint's root, signed by the key that signed
      the last entry; the published key list must equal the chain.
The proof alone does not yield the new tree's leaves; the compact range does, and it is what
ties the new entries to the trusted root (see docs/ledger.md). Nothing is trusted that was
only sent; the caller saves the returned state only on success. The checks themselves are
``ledger.checks``, shared with the offline verifier.
Imports only the standard library, ``cryptography`` and ``rfc8785``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from ledger import checks
from ledger.bundle import Fetcher, TrustedState
from ledger.checkpoint import MalformedNote, NoteVerifier, parse_verifier_key
from ledger.checks import VerificationError, VerifiedHead
from ledger.compact import CompactRange
from ledger.entry import GENESIS_PREV, EntryType, LedgerError, parse_entry, signing_bytes
from ledger.hashing import leaf_hash
from ledger.verify import check_trusted_state

__all__ = ["LiveFetcher", "WitnessReport", "verify_increment"]


class LiveFetcher(Fetcher, Protocol):
    """A fetcher that also serves consistency proofs (``HttpFetcher``)."""

    def consistency(self, first: int, second: int) -> list[bytes]:
        """The RFC 6962 consistency proof between two sizes."""
        ...


@dataclass(frozen=True, slots=True)
class WitnessReport(VerifiedHead):
    """A successful incremental verification."""

    previous_size: int | None
    new_entries: int


def _keys(vkeys: Sequence[str], step: int) -> list[NoteVerifier]:
    try:
        return [parse_verifier_key(k) for k in vkeys]
    except MalformedNote as exc:
        raise VerificationError(f"bad verifier key: {exc}", step=step) from exc


def verify_increment(
    fetcher: LiveFetcher,
    *,
    pinned: Sequence[str],
    state: TrustedState | None,
    full: bool = False,
) -> tuple[WitnessReport, TrustedState]:
    """Run steps (1)-(4) of the module docstring; returns the report and the new state.

    ``full`` re-reads and re-verifies every entry from the first, as for a state without a
    compact range; the state's checkpoint must still be a prefix of the latest (step 2).

    A ``state`` without a compact range (``not state.incremental``) is checked by reading
    the whole log: its root must be the rebuilt root at its size.
    Raises VerificationError with the step, the first bad seq and the evidence.
    """
    pinned_keys = _keys(pinned, 1)
    if not pinned_keys:
        raise VerificationError("no pinned key", step=1)
    origin = pinned_keys[0].name
    resume = state is not None and state.incremental and not full
    chain = _keys(state.chain, 1) if resume and state is not None else []
    try:
        hinted = _keys(fetcher.verifier_keys(), 1)
        note = fetcher.checkpoint()
    except LedgerError as exc:
        raise VerificationError(f"cannot read the log: {exc}", step=1) from exc

    # (1) the checkpoint, signed by a pinned key, a key of the trusted chain, or a hinted one
    known = list({v.key_id: v for v in [*pinned_keys, *chain, *hinted]}.values())
    latest, signer = checks.open_checkpoint(note, known, origin)

    # (2) rollback and the server's consistency proof from the trusted checkpoint
    if state is not None:
        check_trusted_state(state, latest, note, fetcher.consistency, step=2)

    base = state if resume and state is not None else None
    tree = _trusted_range(base) if base else CompactRange()
    prev, prev_ts = (base.last_digest, base.last_ts) if base else (GENESIS_PREV, "")
    last_key = base.last_key_id if base else ""
    try:
        lines = fetcher.entries(tree.size, latest.size)
    except LedgerError as exc:
        raise VerificationError(f"cannot read the entries: {exc}", step=3) from exc
    checks.check_entry_count(latest, note, tree.size + len(lines))

    # (3) each new entry: form, signature by the chain's current key, seq, ts, prev
    for line in lines:
        seq = tree.size
        try:
            entry = parse_entry(line)
        except LedgerError as exc:
            raise VerificationError(f"entry {seq} is malformed: {exc}", step=3, seq=seq) from exc
        current = checks.next_key(entry.key_id, chain, pinned_keys, seq=seq, step=3)
        if not current.verify(signing_bytes(entry), entry.signature):
            raise VerificationError(f"entry {seq} has an invalid signature", step=3, seq=seq)
        checks.check_link(seq, entry.seq, entry.ts, entry.prev, last_ts=prev_ts, last_digest=prev)
        if entry.type is EntryType.KEY_ROTATE:
            new_key = entry.payload.get("new_key")
            chain.append(checks.rotated_key(new_key, chain, origin, seq=seq, step=3))
        prev, prev_ts, last_key = hashlib.sha256(line).hexdigest(), entry.ts, entry.key_id
        tree.append(leaf_hash(line))

    # (4) the root over the trusted range and the new leaves, its signer, the key list
    trusted = {"trusted_checkpoint": state.checkpoint if state else None}
    head = checks.TreeHead(latest, note, signer, tree.root(), last_key, trusted)
    checks.check_tree_heads([head], published=hinted, chain=chain)
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
