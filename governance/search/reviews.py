"""Two-person review of search candidates (EU AI Act Art. 14(5)).

A reviewer of the searching agency, who did not run the search, gives each candidate a verdict
(``possible_match``, ``no_match`` or ``inconclusive``) with a note. A candidate becomes a
confirmed lead only when two distinct such reviewers say ``possible_match``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from uuid import UUID, uuid4

from sqlalchemy import select

from governance.core.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from governance.core.work import Work
from governance.identity.permissions import Permission
from governance.identity.persons import same_person
from governance.identity.principals import Principal, actor_of
from governance.search.models import VERDICTS, Review
from governance.search.records import SearchView, reach_search, view_of
from ledger.entry import EntryType

__all__ = ["ReviewInput", "record_reviews"]


@dataclass(frozen=True, slots=True)
class ReviewInput:
    face_id: UUID
    verdict: str
    note: str


def record_reviews(
    work: Work,
    *,
    principal: Principal,
    search_id: UUID,
    reviews: Sequence[ReviewInput],
) -> SearchView:
    """Record the caller's verdicts on candidates of a search of their agency.

    Raises NotFound (another agency's search, or a face not among its candidates),
    PermissionDenied (the searcher reviewing their own search), Conflict (a verdict already
    given, results deleted), InvalidInput (unknown verdict, duplicate face in one request).
    """
    session = work.session
    search = reach_search(session, principal, search_id, Permission.SEARCH_REVIEW)
    if same_person(session, search.account_id, principal.account_id):
        raise PermissionDenied(
            "The person who ran a search may not review it, from any of their accounts: ask "
            "two colleagues.",
            code="reviewer-is-searcher",
        )
    if search.results_deleted_at is not None:
        raise Conflict(
            "This search's results were deleted; there is nothing to review.",
            code="results-deleted",
        )
    faces = [r.face_id for r in reviews]
    errors: dict[str, list[str]] = {}
    if not reviews:
        errors["reviews"] = ["Give at least one review."]
    if len(set(faces)) != len(faces):
        errors["reviews"] = ["Review each candidate at most once per request."]
    if any(r.verdict not in VERDICTS for r in reviews):
        errors["verdict"] = [f"Must be one of: {', '.join(VERDICTS)}."]
    if errors:
        raise InvalidInput("the reviews are invalid", fields=errors)
    candidates = {c.face_id for c in search.candidates}
    unknown = [str(f) for f in faces if f not in candidates]
    if unknown:
        raise NotFound(f"Not among this search's candidates: {', '.join(unknown)}.")
    already = set(
        session.scalars(
            select(Review.face_id).where(
                Review.search_id == search_id,
                Review.reviewer_id == principal.account_id,
                Review.face_id.in_(faces),
            )
        )
    )
    if already:
        raise Conflict(
            f"You already reviewed {', '.join(sorted(str(f) for f in already))}.",
            code="already-reviewed",
        )
    for item in reviews:
        row = Review(
            id=uuid4(),
            search_id=search_id,
            face_id=item.face_id,
            reviewer_id=principal.account_id,
            verdict=item.verdict,
            note=item.note,
            created_at=work.now,
        )
        session.add(row)
        search.reviews.append(row)
    session.flush()
    view = view_of(session, search)
    confirmed = [str(c.face_id) for c in view.candidates if c.confirmed_lead]
    work.record(
        EntryType.REVIEW_RECORD,
        actor=actor_of(principal),
        payload={
            "search_id": str(search_id),
            "searcher_id": str(search.account_id),
            "reviewer_id": str(principal.account_id),
            "reviews": [
                {
                    "face_id": str(r.face_id),
                    "verdict": r.verdict,
                    "note_sha256": hashlib.sha256(r.note.encode()).hexdigest(),
                }
                for r in reviews
            ],
            "confirmed_leads": confirmed,
        },
    )
    return view
