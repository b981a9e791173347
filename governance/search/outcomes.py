"""What a search answers: its candidates in rank order and a receipt of its ledger entry.

Frozen values, built once the search is recorded (``governance.search.running``); the receipt
proves, offline, that the search and its result are in the ledger.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from ledger.storage import Appended

__all__ = ["LEADS_STATEMENT", "Candidate", "Receipt", "SearchOutcome", "receipt_of"]

LEADS_STATEMENT = (
    "Candidates are investigative leads only, not identifications. Each needs review by two "
    "people other than the searcher before it may be acted upon."
)


@dataclass(frozen=True, slots=True)
class Candidate:
    rank: int
    face_id: UUID
    photo_id: UUID
    similarity: float
    source_site: str
    source_url: str
    collected_at: datetime


@dataclass(frozen=True, slots=True)
class Receipt:
    """Enough to prove offline that the search was recorded: the entry and its inclusion in
    a checkpoint; ``cosigned`` when that checkpoint carries a quorum of witness cosignatures
    (``witnesses`` names them)."""

    seq: int
    leaf_hash: str
    entry: str
    checkpoint: str
    tree_size: int
    inclusion_proof: tuple[str, ...]
    cosigned: bool = False
    witnesses: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class SearchOutcome:
    id: UUID
    created_at: datetime
    probe_face: dict[str, Any]
    candidates: tuple[Candidate, ...]
    pack: dict[str, str]
    gallery_collection: str
    gallery_size: int
    top_k: int
    threshold: float
    legal_basis_id: UUID
    statement: str
    receipt: Receipt


def receipt_of(appended: Appended) -> Receipt:
    """The receipt of an appended entry: the entry, the checkpoint and the inclusion proof.

    That checkpoint was signed a moment ago, so no witness has cosigned it yet.
    """
    return Receipt(
        seq=appended.seq,
        leaf_hash=appended.leaf_hash.hex(),
        entry=appended.entry.decode("utf-8"),
        checkpoint=appended.checkpoint,
        tree_size=appended.seq + 1,
        inclusion_proof=tuple(h.hex() for h in appended.inclusion),
    )
