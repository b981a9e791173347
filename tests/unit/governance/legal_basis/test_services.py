"""Recording, reading and using legal bases: validation, settling on read, the quota (also under
20 concurrent searches on each engine), and the refusals a use meets.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from governance.core.errors import InvalidInput, NotFound, PermissionDenied
from governance.core.work import Work
from governance.legal_basis import deadlines, decisions, offences, rules, services, values
from governance.legal_basis.models import LegalBasis
from governance.legal_basis.rules import BasisUnusable
from governance.legal_basis.services import (
    check_usable,
    consume_search,
    create_basis,
    get_basis,
    list_bases,
)
from governance.legal_basis.values import AuthorisationKind, BasisStatus, BasisUse
from tests.factories import NOW
from tests.unit.governance.legal_basis.helpers import POLICY, People, World, draft, together

Recorded = Callable[..., list[tuple[str, dict[str, Any]]]]


@pytest.mark.parametrize("module", [values, rules, deadlines, offences, services, decisions])
def test_each_module_exports_only_its_own_names(module: Any) -> None:
    foreign = [
        name
        for name in module.__all__
        if getattr(getattr(module, name), "__module__", module.__name__) != module.__name__
    ]
    assert foreign == []


# --- recording -------------------------------------------------------------------------------


def test_a_recorded_basis_is_pending_and_on_record(
    work: Work, people: People, recorded: Recorded
) -> None:
    made = create_basis(work, principal=people.investigator, draft=draft(), policy=POLICY)
    assert (made.status, made.usable, made.searches_left) == (BasisStatus.PENDING, False, 5)
    assert (made.created_at, made.created_by) == (NOW, people.investigator.account_id)
    assert made.ratification_deadline is None
    [(kind, payload)] = recorded(made.id)
    assert kind == "legal_basis:create"
    assert payload["authorisation_reference"] == "JLD-7"
    assert "justification" not in payload and len(payload["justification_sha256"]) == 64


def test_an_urgent_basis_must_be_ratified_within_the_window(work: Work, people: People) -> None:
    made = create_basis(
        work,
        principal=people.investigator,
        draft=draft(AuthorisationKind.URGENT),
        policy=POLICY,
    )
    assert made.ratification_deadline == NOW + timedelta(hours=48)
    assert made.authorisation.reference is None


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"offence_category": "shoplifting"}, "offence_category"),
        ({"max_searches": 51}, "max_searches"),
        ({"max_searches": 0}, "max_searches"),
        ({"justification": "Too short."}, "justification"),
        ({"expires_at": NOW}, "authorisation.expires_at"),
        ({"expires_at": NOW + timedelta(days=200)}, "authorisation.expires_at"),
    ],
)
def test_an_invalid_draft_is_refused_per_field(
    work: Work, people: People, changes: dict[str, Any], field: str
) -> None:
    with pytest.raises(InvalidInput) as caught:
        create_basis(work, principal=people.investigator, draft=draft(**changes), policy=POLICY)
    assert list(caught.value.fields) == [field]


def test_only_agency_roles_record_a_basis(work: Work, people: People) -> None:
    with pytest.raises(PermissionDenied):
        create_basis(work, principal=people.oversight, draft=draft(), policy=POLICY)


# --- reading ---------------------------------------------------------------------------------


def test_reading_a_basis_settles_it_first(
    work: Work, people: People, make_basis: Callable[..., LegalBasis], recorded: Recorded
) -> None:
    row = make_basis(approved=True, expires_at=NOW)
    shown = get_basis(work, principal=people.supervisor2, basis_id=row.id)
    assert (shown.status, shown.expired_at) == (BasisStatus.EXPIRED, NOW)
    assert [t for t, _ in recorded(row.id)] == ["legal_basis:expire"]


def test_another_agencys_basis_is_not_found(
    work: Work, people: People, make_basis: Callable[..., LegalBasis]
) -> None:
    row = make_basis()
    with pytest.raises(NotFound) as caught:
        get_basis(work, principal=people.stranger, basis_id=row.id)
    assert caught.value.code == "legal-basis-not-found"


def test_the_list_filters_by_the_status_shown(
    work: Work, people: People, make_basis: Callable[..., LegalBasis]
) -> None:
    pending = make_basis()
    exhausted = make_basis(approved=True, searches_used=10)
    live = make_basis(approved=True)

    def ids(principal: Any, status: BasisStatus | None = None) -> set[Any]:
        page = list_bases(work, principal=principal, limit=100, offset=0, status=status)
        return {b.id for b in page.items}

    assert ids(people.investigator) == {pending.id, exhausted.id, live.id}
    assert ids(people.investigator, BasisStatus.EXHAUSTED) == {exhausted.id}
    assert ids(people.investigator, BasisStatus.APPROVED) == {live.id}
    assert ids(people.stranger) == set()
    # Oversight reads every agency's bases (the list's first page may hold other tests' ones).
    for row in (pending, live):
        assert get_basis(work, principal=people.oversight, basis_id=row.id).id == row.id


# --- use -------------------------------------------------------------------------------------


def test_a_search_spends_one_of_the_quota(
    work: Work, people: People, make_basis: Callable[..., LegalBasis]
) -> None:
    row = make_basis(approved=True, max_searches=2)
    check_usable(work, principal=people.investigator, basis_id=row.id)
    spent = consume_search(work, principal=people.investigator, basis_id=row.id)
    assert (spent.basis_id, spent.searches_used, spent.searches_left) == (row.id, 1, 1)
    assert spent.authorisation_kind is AuthorisationKind.JUDICIAL


@pytest.mark.parametrize(
    ("state", "changes"),
    [
        ("pending", {}),
        ("exhausted", {"approved": True, "searches_used": 10}),
        ("expired", {"approved": True, "expires_at": NOW}),
        ("revoked", {"status": "revoked"}),
        ("lapsed", {"urgent": True, "approved": True, "ratification_deadline": NOW}),
    ],
)
def test_an_unusable_basis_is_refused_with_its_state(
    work: Work,
    people: People,
    make_basis: Callable[..., LegalBasis],
    state: str,
    changes: dict[str, Any],
) -> None:
    row = make_basis(**changes)
    for use in (check_usable, consume_search):
        with pytest.raises(BasisUnusable) as caught:
            use(work, principal=people.investigator, basis_id=row.id)
        assert caught.value.code == f"legal-basis-{state}"
        assert caught.value.extra["legal_basis_id"] == str(row.id)


def test_a_search_under_another_agencys_basis_is_not_found(
    work: Work, people: People, make_basis: Callable[..., LegalBasis]
) -> None:
    row = make_basis(approved=True)
    with pytest.raises(NotFound):
        consume_search(work, principal=people.stranger, basis_id=row.id)


def test_twenty_concurrent_searches_spend_a_quota_of_seven_exactly(world: World) -> None:
    basis_id = world.approved(draft(max_searches=7))
    later = NOW + timedelta(minutes=1)

    def use() -> BasisUse:
        spend = consume_search
        return world.run(
            lambda w: spend(w, principal=world.investigator, basis_id=basis_id), at=later
        )

    results = together(20, use)
    used = sorted(r.searches_used for r in results if isinstance(r, BasisUse))
    refusals = [r for r in results if not isinstance(r, BasisUse)]
    assert used == [1, 2, 3, 4, 5, 6, 7]
    assert len(refusals) == 13
    assert all(isinstance(r, BasisUnusable) and r.code == "legal-basis-exhausted" for r in refusals)
    with world.sessions() as session:
        row = session.get(LegalBasis, basis_id)
        assert row is not None and row.searches_used == 7


def test_another_agencys_basis_is_not_found_for_use(world: World) -> None:
    basis_id = world.approved(draft())
    with pytest.raises(NotFound, match="No such legal basis") as caught:
        world.run(lambda w: consume_search(w, principal=world.stranger, basis_id=basis_id))
    assert caught.value.code == "legal-basis-not-found"
