"""Reading searches back, viewing candidates, and deleting search results when the law says so.

Only the searching agency reads its searches, and only faces its own searches returned can be
viewed; every view is counted and recorded. Results are deleted when the legal basis lapses
(the hook given to Governance II) and whole records when their retention period ends.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal
from uuid import UUID

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session, selectinload

from governance.core.errors import Conflict, NotFound
from governance.core.orm import value_of
from governance.core.recording import SYSTEM
from governance.core.work import Work
from governance.gallery.blobs import BlobStore
from governance.gallery.models import GalleryFace, pack_of
from governance.identity.permissions import Permission
from governance.identity.persons import persons_of
from governance.identity.principals import Principal, actor_of, visible
from governance.legal_basis.models import LegalBasis
from governance.legal_basis.values import BasisStatus
from governance.search.models import Review, Search, SearchCandidate, SearchProbe, Verdict
from governance.search.outcomes import Receipt
from ledger import storage
from ledger.cosigned import latest_cosigned
from ledger.entry import EntryType
from ledger.hashing import leaf_hash

__all__ = [
    "CandidateView",
    "SearchView",
    "candidate_media",
    "delete_lapsed_results",
    "delete_probes_of_basis",
    "get_search",
    "list_searches",
    "probe_image",
    "purge_expired_searches",
    "reach_search",
    "search_receipt",
]

_WITHDRAWN = frozenset({BasisStatus.REVOKED.value, BasisStatus.LAPSED.value})


@dataclass(frozen=True, slots=True)
class ReviewView:
    reviewer_id: UUID
    verdict: str
    note: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class CandidateView:
    rank: int
    face_id: UUID
    similarity: float
    source_site: str
    source_url: str | None
    collected_at: datetime | None
    erased: bool
    views: int
    reviews: tuple[ReviewView, ...]
    possible_match_votes: int
    confirmed_lead: bool


@dataclass(frozen=True, slots=True)
class SearchView:
    id: UUID
    agency_id: UUID
    account_id: UUID
    legal_basis_id: UUID
    purpose: str
    probe_sha256: str
    created_at: datetime
    top_k: int
    threshold: float
    pack: dict[str, str]
    gallery_size: int
    ledger_seq: int
    results_deleted_at: datetime | None
    results_deleted_reason: str | None
    review_state: str
    candidates: tuple[CandidateView, ...]


def reach_search(
    session: Session, principal: Principal, search_id: UUID, permission: Permission
) -> Search:
    """A search within the principal's reach, its candidates and reviews loaded.

    The scope is checked on the bare row, before any child is read: another agency's search
    costs the same one lookup as a search that does not exist, so timing tells them apart no
    better than the answer does.
    Raises NotFound (also for another agency's search), PermissionDenied.
    """
    search = session.get(Search, search_id)
    if search is None:
        raise NotFound("No such search.")
    visible(principal, permission, agency_id=search.agency_id, what="search")
    session.scalars(
        select(Search)
        .where(Search.id == search_id)
        .options(selectinload(Search.candidates), selectinload(Search.reviews))
    ).one()
    return search


def view_of(session: Session, search: Search) -> SearchView:
    faces = {
        f.id: f
        for f in session.scalars(
            select(GalleryFace)
            .where(GalleryFace.id.in_([c.face_id for c in search.candidates]))
            .options(selectinload(GalleryFace.photo))
        )
    }
    persons = persons_of(session, {r.reviewer_id for r in search.reviews} | {search.account_id})
    searcher = persons.get(search.account_id, str(search.account_id))
    # A revoked or lapsed basis withdraws what identifies a candidate, as it does their media.
    withdrawn = (
        session.scalar(select(LegalBasis.status).where(LegalBasis.id == search.legal_basis_id))
        in _WITHDRAWN
    )
    candidates = []
    for c in search.candidates:
        reviews = tuple(
            ReviewView(r.reviewer_id, r.verdict, r.note, r.created_at)
            for r in search.reviews
            if r.face_id == c.face_id
        )
        # Two distinct persons, neither the searcher: one person's two accounts count once.
        votes = len(
            {
                persons.get(r.reviewer_id, str(r.reviewer_id))
                for r in reviews
                if r.verdict == Verdict.POSSIBLE_MATCH
                and persons.get(r.reviewer_id, str(r.reviewer_id)) != searcher
            }
        )
        face = None if withdrawn else faces.get(c.face_id)
        candidates.append(
            CandidateView(
                rank=c.rank,
                face_id=c.face_id,
                similarity=c.score,
                source_site=c.source_site,
                source_url=face.photo.source_url if face else None,
                collected_at=face.photo.collected_at if face else None,
                erased=c.face_id not in faces,
                views=c.views,
                reviews=reviews,
                possible_match_votes=votes,
                confirmed_lead=votes >= 2,
            )
        )
    reviewed = {r.face_id for r in search.reviews}
    if search.results_deleted_at is not None:
        state = "results_deleted"
    elif any(c.confirmed_lead for c in candidates):
        state = "confirmed_lead"
    elif candidates and all(c.face_id in reviewed for c in search.candidates):
        state = "reviewed"
    elif reviewed:
        state = "in_review"
    else:
        state = "unreviewed"
    return value_of(
        SearchView,
        search,
        pack=pack_of(search),
        review_state=state,
        candidates=tuple(candidates),
    )


def get_search(work: Work, *, principal: Principal, search_id: UUID) -> SearchView:
    """One search of the caller's agency with its candidates and review state.

    Raises NotFound (also for another agency's search), PermissionDenied.
    """
    session = work.session
    return view_of(session, reach_search(session, principal, search_id, Permission.SEARCH_READ))


def search_receipt(
    work: Work,
    *,
    principal: Principal,
    search_id: UUID,
    witnesses: Collection[str] = (),
    quorum: int = 0,
) -> Receipt:
    """The receipt of a search's ledger entry in the newest checkpoint that includes it: the
    newest that ``quorum`` of ``witnesses`` cosigned, once one reaches the entry, else the
    latest the log signed. The entry bytes are the ones the search answered with.

    Raises NotFound (also for another agency's search), PermissionDenied, Conflict (the
    search's results were deleted).
    """
    session = work.session
    search = session.get(Search, search_id)
    if search is None:
        raise NotFound("No such search.")
    visible(principal, Permission.SEARCH_READ, agency_id=search.agency_id, what="search")
    if search.results_deleted_at is not None:
        # The entry lists the candidates: it is not handed back once the law took them away.
        raise Conflict(
            "This search's results were deleted, and its ledger entry names them: the receipt "
            "is no longer given out. An oversight body can still verify the entry in the log.",
            code="results-deleted",
        )
    seq = search.ledger_seq
    cosigned = latest_cosigned(session, witnesses, quorum)
    if cosigned is not None and cosigned.size > seq:
        size, note, names = cosigned.size, cosigned.note, cosigned.witnesses
    else:
        size, names = storage.tree_size(session), ()
        note = storage.checkpoint_notes(session, [size])[size]
    [entry] = storage.entry_bytes(session, seq, seq + 1)
    proof = storage.inclusion_proof(session, seq=seq, size=size)
    return Receipt(
        seq=seq,
        leaf_hash=leaf_hash(entry).hex(),
        entry=entry.decode("utf-8"),
        checkpoint=note,
        tree_size=size,
        inclusion_proof=tuple(h.hex() for h in proof),
        cosigned=bool(names),
        witnesses=names,
    )


def probe_image(work: Work, *, principal: Principal, search_id: UUID) -> bytes:
    """The probe face of a search, for the agency's reviewers, and record ``probe:view``.

    Raises NotFound (also for another agency's search), PermissionDenied (a role that does
    not review), Conflict (the search's results, and with them its probe, were deleted).
    """
    session = work.session
    search = session.get(Search, search_id)
    if search is None:
        raise NotFound("No such search.")
    visible(principal, Permission.SEARCH_REVIEW, agency_id=search.agency_id, what="search")
    probe = session.get(SearchProbe, search_id)
    if search.results_deleted_at is not None or probe is None:
        raise Conflict(
            "This search's results were deleted, and its probe face with them.",
            code="results-deleted",
        )
    work.record(
        EntryType.PROBE_VIEW,
        actor=actor_of(principal),
        payload={"search_id": str(search_id)},
    )
    return probe.image


def list_searches(
    work: Work, *, principal: Principal, limit: int, offset: int
) -> tuple[list[SearchView], int]:
    """The caller's agency's searches, newest first, and their total. Raises PermissionDenied."""
    session = work.session
    visible(principal, Permission.SEARCH_READ, agency_id=principal.agency_id, what="search")
    where = Search.agency_id == principal.agency_id
    total = int(session.scalar(select(func.count()).select_from(Search).where(where)) or 0)
    rows = session.scalars(
        select(Search)
        .where(where)
        .options(selectinload(Search.candidates), selectinload(Search.reviews))
        .order_by(Search.created_at.desc(), Search.id)
        .limit(limit)
        .offset(offset)
    )
    return [view_of(session, s) for s in rows], total


def candidate_media(
    work: Work,
    *,
    principal: Principal,
    blobs: BlobStore,
    search_id: UUID,
    face_id: UUID,
    kind: Literal["thumbnail", "photo"],
) -> tuple[bytes, str]:
    """A candidate's thumbnail or photo, for the searching agency only; counted and recorded.

    Raises NotFound when the search is another agency's, the face was not among its
    candidates, its results were deleted, its legal basis was revoked or lapsed, or the face
    has since been erased; PermissionDenied.
    """
    session = work.session
    search = reach_search(session, principal, search_id, Permission.CANDIDATE_VIEW)
    candidate = next((c for c in search.candidates if c.face_id == face_id), None)
    if candidate is None or search.results_deleted_at is not None:
        raise NotFound("This face is not among this search's candidates.")
    # One rule for a basis that ended before its time: revoked (withdrawn) or lapsed
    # (unratified), its results are no longer shown, even before a lapse deletes them.
    status = session.scalar(select(LegalBasis.status).where(LegalBasis.id == search.legal_basis_id))
    if status in _WITHDRAWN:
        raise NotFound(
            f"This search's legal basis was {status}: its candidates can no longer be viewed."
        )
    face = session.get(GalleryFace, face_id, options=[selectinload(GalleryFace.photo)])
    if face is None:
        raise NotFound("This face has been erased from the gallery.")
    session.execute(
        update(SearchCandidate)
        .where(SearchCandidate.id == candidate.id)
        .values(views=SearchCandidate.views + 1)
    )
    work.record(
        EntryType.THUMBNAIL_VIEW,
        actor=actor_of(principal),
        payload={"search_id": str(search_id), "face_id": str(face_id), "kind": kind},
    )
    if kind == "thumbnail":
        return blobs.get(face.thumbnail_sha256), "image/jpeg"
    return blobs.get(face.photo.sha256), face.photo.media_type


def _delete_results(
    session: Session, searches: list[Search], *, reason: str, now: datetime
) -> list[str]:
    ids = [s.id for s in searches]
    if not ids:
        return []
    session.execute(delete(SearchCandidate).where(SearchCandidate.search_id.in_(ids)))
    session.execute(delete(Review).where(Review.search_id.in_(ids)))
    session.execute(delete(SearchProbe).where(SearchProbe.search_id.in_(ids)))
    for s in searches:
        s.results_deleted_at = now
        s.results_deleted_reason = reason
    session.flush()
    return sorted(str(i) for i in ids)


def delete_lapsed_results(work: Work, basis_id: UUID) -> int:
    """The lapse hook (``governance.wiring``): delete the results of a lapsed basis's searches.

    The searches stay (their ledger entries keep the hashes); candidates and reviews go, and a
    ``search:results_delete`` entry names the searches concerned. Returns how many searches lost
    their results.
    """
    session = work.session
    searches = list(
        session.scalars(
            select(Search).where(
                Search.legal_basis_id == basis_id, Search.results_deleted_at.is_(None)
            )
        )
    )
    deleted = _delete_results(session, searches, reason="basis_lapsed", now=work.now)
    if deleted:
        work.record(
            EntryType.SEARCH_RESULTS_DELETE,
            actor=SYSTEM,
            payload={
                "legal_basis_id": str(basis_id),
                "reason": "basis_lapsed",
                "search_ids": deleted,
            },
        )
    return len(deleted)


def delete_probes_of_basis(work: Work, basis_id: UUID) -> int:
    """The revocation hook (``governance.wiring``): the probe faces of a revoked basis's
    searches are deleted at once; returns how many."""
    searches = select(Search.id).where(Search.legal_basis_id == basis_id)
    deleted = work.session.execute(
        delete(SearchProbe)
        .where(SearchProbe.search_id.in_(searches))
        .execution_options(synchronize_session=False)
    )
    return int(getattr(deleted, "rowcount", 0) or 0)


def purge_expired_searches(work: Work, *, retention: timedelta, batch: int = 500) -> int:
    """Delete search records older than ``retention`` (one batch); returns how many.

    Raises LedgerUnavailable.
    """
    session = work.session
    expired = list(
        session.scalars(
            select(Search)
            .where(Search.created_at < work.now - retention)
            .order_by(Search.created_at)
            .limit(batch)
        )
    )
    if not expired:
        return 0
    ids = sorted(str(s.id) for s in expired)
    session.execute(delete(SearchProbe).where(SearchProbe.search_id.in_([s.id for s in expired])))
    for s in expired:
        session.delete(s)
    session.flush()
    work.record(
        EntryType.SEARCH_PURGE,
        actor=SYSTEM,
        payload={"reason": "retention", "retention_days": retention.days, "search_ids": ids},
    )
    return len(ids)
