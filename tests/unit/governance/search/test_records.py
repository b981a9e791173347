"""Search records (``governance.search.records``): only the searching agency reads them, every
candidate view is counted and recorded, and results go when the basis lapses or retention ends."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from uuid import uuid4

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from governance.core.errors import NotFound
from governance.core.work import Work
from governance.gallery.blobs import FileBlobStore
from governance.identity.permissions import Role
from governance.search.models import Review, Search, SearchCandidate
from governance.search.records import (
    candidate_media,
    delete_lapsed_results,
    get_search,
    list_searches,
    purge_expired_searches,
)
from tests import factories
from tests.unit.governance.search.conftest import SearchTeam, entries_since, next_seq


def test_an_agency_reads_its_own_searches_and_no_one_elses(
    work: Work, session: Session, team: SearchTeam
) -> None:
    mine = factories.search_record(session, team.searcher, team.basis)
    colleague = factories.principal(session, team.reviewer)
    assert get_search(work, principal=colleague, search_id=mine.id).id == mine.id
    with pytest.raises(NotFound, match="No such search"):
        get_search(work, principal=team.outsider, search_id=mine.id)
    items, total = list_searches(work, principal=team.outsider, limit=10, offset=0)
    assert (items, total) == ([], 0)


def test_the_list_is_newest_first_and_paged(work: Work, session: Session, team: SearchTeam) -> None:
    older = factories.search_record(
        session, team.searcher, team.basis, created_at=factories.NOW - timedelta(hours=1)
    )
    newer = factories.search_record(session, team.searcher, team.basis)
    caller = factories.principal(session, team.searcher)
    items, total = list_searches(work, principal=caller, limit=1, offset=0)
    assert (total, [s.id for s in items]) == (2, [newer.id])
    items, _ = list_searches(work, principal=caller, limit=1, offset=1)
    assert [s.id for s in items] == [older.id]


def test_viewing_a_candidate_is_counted_and_recorded(
    work: Work, session: Session, team: SearchTeam, tmp_path: Path
) -> None:
    blobs = FileBlobStore(tmp_path)
    thumbnail = blobs.put(b"thumbnail bytes")
    face = factories.gallery_face(session, thumbnail_sha256=thumbnail)
    search = factories.search_record(session, team.searcher, team.basis, face_ids=[face.id])
    start = next_seq(session)
    data, media_type = candidate_media(
        work,
        principal=factories.principal(session, team.searcher),
        blobs=blobs,
        search_id=search.id,
        face_id=face.id,
        kind="thumbnail",
    )
    assert (data, media_type) == (b"thumbnail bytes", "image/jpeg")
    [entry] = entries_since(session, start)
    assert entry["type"] == "thumbnail:view"
    assert entry["payload"] == {
        "search_id": str(search.id),
        "face_id": str(face.id),
        "kind": "thumbnail",
    }
    views = session.scalar(select(SearchCandidate.views).where(SearchCandidate.face_id == face.id))
    assert views == 1


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("not a candidate", "not among this search's candidates"),
        ("erased", "erased from the gallery"),
        ("revoked basis", "legal basis was revoked"),
    ],
)
def test_a_candidate_that_may_not_be_shown_is_not_found_and_nothing_recorded(
    work: Work, session: Session, team: SearchTeam, tmp_path: Path, case: str, message: str
) -> None:
    face = factories.gallery_face(session)
    erased = uuid4()
    search = factories.search_record(session, team.searcher, team.basis, face_ids=[face.id, erased])
    if case == "revoked basis":
        team.basis.status = "revoked"
        session.flush()
    wanted = {"not a candidate": uuid4(), "erased": erased, "revoked basis": face.id}[case]
    start = next_seq(session)
    with pytest.raises(NotFound, match=message):
        candidate_media(
            work,
            principal=factories.principal(session, team.searcher),
            blobs=FileBlobStore(tmp_path),
            search_id=search.id,
            face_id=wanted,
            kind="photo",
        )
    assert entries_since(session, start) == []


def test_a_lapse_deletes_the_results_of_the_bases_searches_on_record(
    work: Work, session: Session, team: SearchTeam
) -> None:
    face = uuid4()
    search = factories.search_record(session, team.searcher, team.basis, face_ids=[face])
    reviewer = factories.account(session, Role.INVESTIGATOR)
    session.add(
        Review(
            search_id=search.id,
            face_id=face,
            reviewer_id=reviewer.id,
            verdict="no_match",
            note="n",
            created_at=factories.NOW,
        )
    )
    untouched = factories.search_record(
        session, team.searcher, factories.approved_basis(session, team.searcher, team.supervisor)
    )
    session.flush()
    start = next_seq(session)
    assert delete_lapsed_results(work, team.basis.id) == 1
    [entry] = entries_since(session, start)
    assert entry["type"] == "search:results_delete"
    assert entry["payload"] == {
        "legal_basis_id": str(team.basis.id),
        "reason": "basis_lapsed",
        "search_ids": [str(search.id)],
    }
    session.expire_all()
    kept = session.get_one(Search, search.id)
    assert (kept.results_deleted_at, kept.results_deleted_reason) == (
        factories.NOW,
        "basis_lapsed",
    )
    assert kept.candidates == [] and kept.reviews == []
    assert session.get_one(Search, untouched.id).results_deleted_at is None
    assert delete_lapsed_results(work, team.basis.id) == 0  # once only, nothing recorded again
    assert len(entries_since(session, start)) == 1


def test_retention_purges_the_old_records_only_on_record(
    work: Work, session: Session, team: SearchTeam
) -> None:
    retention = timedelta(days=180)
    old = factories.search_record(
        session, team.searcher, team.basis, created_at=factories.NOW - timedelta(days=181)
    )
    recent = factories.search_record(
        session, team.searcher, team.basis, created_at=factories.NOW - timedelta(days=179)
    )
    start = next_seq(session)
    purged = purge_expired_searches(work, retention=retention)
    assert purged == 1
    [entry] = entries_since(session, start)
    assert entry["type"] == "search:purge"
    assert entry["payload"]["reason"] == "retention"
    assert entry["payload"]["retention_days"] == 180
    assert entry["payload"]["search_ids"] == [str(old.id)]
    session.expire_all()
    assert session.get(Search, old.id) is None
    assert session.get(Search, recent.id) is not None
