"""Two-person review (``governance.search.reviews``): never the searcher, in any of their
accounts; a confirmed lead takes two distinct people; each verdict once; on the record."""

from __future__ import annotations

import hashlib
from uuid import UUID, uuid4

import pytest
from sqlalchemy.orm import Session

from governance.core.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from governance.core.work import Work
from governance.identity.models import Account, Agency
from governance.identity.permissions import Role
from governance.search.records import SearchView
from governance.search.reviews import ReviewInput, record_reviews
from tests import factories
from tests.unit.governance.search.conftest import SearchTeam, entries_since, next_seq

FACE = uuid4()
OTHER_FACE = uuid4()


@pytest.fixture
def search_id(session: Session, team: SearchTeam) -> UUID:
    row = factories.search_record(session, team.searcher, team.basis, face_ids=[FACE, OTHER_FACE])
    return UUID(str(row.id))


def _review(
    work: Work, reviewer: Account, search_id: UUID, verdict: str = "possible_match", **kw: str
) -> SearchView:
    face = UUID(kw.get("face", str(FACE)))
    return record_reviews(
        work,
        principal=factories.principal(work.session, reviewer),
        search_id=search_id,
        reviews=[ReviewInput(face_id=face, verdict=verdict, note=kw.get("note", "same scar"))],
    )


def _second_account(session: Session, holder: Account) -> Account:
    """Another account of ``holder``'s person in the same agency: one kept from before the
    one-account rule (its scope key is its own), which the database now refuses to create."""
    return factories.account(
        session,
        Role.SUPERVISOR,
        agency_row=session.get_one(Agency, holder.agency_id),
        person_key=holder.person_key,
        scope_key=str(uuid4()),
    )


def _candidate(view: SearchView, face: UUID = FACE) -> tuple[int, bool]:
    found = next(c for c in view.candidates if c.face_id == face)
    return found.possible_match_votes, found.confirmed_lead


def test_two_distinct_reviewers_confirm_a_lead_and_one_does_not(
    work: Work, team: SearchTeam, search_id: UUID
) -> None:
    first = _review(work, team.reviewer, search_id)
    assert _candidate(first) == (1, False)
    assert first.review_state == "in_review"
    second = _review(work, team.reviewer2, search_id)
    assert _candidate(second) == (2, True)
    assert second.review_state == "confirmed_lead"


def test_a_verdict_is_recorded_with_the_note_hashed_and_the_confirmed_leads(
    work: Work, session: Session, team: SearchTeam, search_id: UUID
) -> None:
    _review(work, team.reviewer, search_id)
    start = next_seq(session)
    _review(work, team.reviewer2, search_id, note="the tattoo matches")
    [entry] = entries_since(session, start)
    assert entry["type"] == "review:record"
    assert entry["payload"] == {
        "search_id": str(search_id),
        "searcher_id": str(team.searcher.id),
        "reviewer_id": str(team.reviewer2.id),
        "reviews": [
            {
                "face_id": str(FACE),
                "verdict": "possible_match",
                "note_sha256": hashlib.sha256(b"the tattoo matches").hexdigest(),
            }
        ],
        "confirmed_leads": [str(FACE)],
    }


def test_the_searcher_may_not_review_their_own_search(
    work: Work, team: SearchTeam, search_id: UUID
) -> None:
    with pytest.raises(PermissionDenied) as raised:
        _review(work, team.searcher, search_id)
    assert raised.value.code == "reviewer-is-searcher"


def test_nor_may_the_searcher_from_another_of_their_accounts(
    work: Work, session: Session, team: SearchTeam, search_id: UUID
) -> None:
    second_account = _second_account(session, team.searcher)
    with pytest.raises(PermissionDenied, match="any of their accounts"):
        _review(work, second_account, search_id)


def test_one_persons_two_accounts_count_as_one_vote(
    work: Work, session: Session, team: SearchTeam, search_id: UUID
) -> None:
    twin = _second_account(session, team.reviewer)
    _review(work, team.reviewer, search_id)
    assert _candidate(_review(work, twin, search_id)) == (1, False)


def test_a_reviewer_gives_each_verdict_once(work: Work, team: SearchTeam, search_id: UUID) -> None:
    _review(work, team.reviewer, search_id)
    with pytest.raises(Conflict) as raised:
        _review(work, team.reviewer, search_id, "no_match")
    assert raised.value.code == "already-reviewed"


def test_only_the_searchs_candidates_can_be_reviewed(
    work: Work, team: SearchTeam, search_id: UUID
) -> None:
    with pytest.raises(NotFound, match="Not among this search's candidates"):
        _review(work, team.reviewer, search_id, face=str(uuid4()))


def test_an_unknown_verdict_is_invalid(work: Work, team: SearchTeam, search_id: UUID) -> None:
    with pytest.raises(InvalidInput) as raised:
        _review(work, team.reviewer, search_id, "probably")
    assert list(raised.value.fields) == ["verdict"]


def test_another_agencys_search_does_not_exist_for_the_reviewer(
    work: Work, session: Session, search_id: UUID
) -> None:
    outsider = factories.account(session, Role.SUPERVISOR)
    with pytest.raises(NotFound, match="No such search"):
        _review(work, outsider, search_id)


def test_deleted_results_leave_nothing_to_review(
    work: Work, session: Session, team: SearchTeam
) -> None:
    row = factories.search_record(
        session, team.searcher, team.basis, face_ids=[FACE], results_deleted_at=factories.NOW
    )
    with pytest.raises(Conflict) as raised:
        _review(work, team.reviewer, row.id)
    assert raised.value.code == "results-deleted"
