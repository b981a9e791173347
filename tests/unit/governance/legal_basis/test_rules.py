"""The rules every act applies: reach (another agency's basis does not exist), four eyes, the
validity of an authorisation, and refusals that name the state.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import pytest
from sqlalchemy.orm import Session

from governance.core.errors import NotFound, PermissionDenied, PolicyViolation
from governance.identity.permissions import Permission
from governance.legal_basis.models import LegalBasis
from governance.legal_basis.rules import (
    BasisUnusable,
    authorisation_errors,
    reach,
    reach_standing,
    second_person,
)
from governance.legal_basis.values import Authorisation, AuthorisationKind
from tests.factories import NOW
from tests.unit.governance.legal_basis.helpers import POLICY, People

Make = Callable[..., LegalBasis]
_NAMED = {"reference": "JLD-1", "authority": "TJ Lyon"}
MISSING = UUID(int=1)  # no basis has this id


def test_the_agency_and_oversight_reach_a_basis(
    session: Session, people: People, make_basis: Make
) -> None:
    row = make_basis()
    assert reach(session, people.supervisor, Permission.LEGAL_BASIS_READ, row.id) is row
    assert reach(session, people.oversight, Permission.LEGAL_BASIS_READ, row.id) is row
    standing = reach_standing(session, people.investigator, Permission.LEGAL_BASIS_USE, row.id)
    assert (standing.id, standing.status, standing.max_searches) == (row.id, "pending", 10)


@pytest.mark.parametrize("reacher", [reach, reach_standing])
def test_another_agencys_basis_answers_like_a_missing_one(
    session: Session, people: People, make_basis: Make, reacher: Any
) -> None:
    row = make_basis()
    with pytest.raises(NotFound) as foreign:
        reacher(session, people.stranger, Permission.LEGAL_BASIS_READ, row.id)
    with pytest.raises(NotFound) as missing:
        reacher(session, people.stranger, Permission.LEGAL_BASIS_READ, MISSING)
    assert (foreign.value.code, str(foreign.value)) == (missing.value.code, str(missing.value))
    assert foreign.value.code == "legal-basis-not-found"


def test_a_role_without_the_permission_is_refused(
    session: Session, people: People, make_basis: Make
) -> None:
    with pytest.raises(PermissionDenied):
        reach(session, people.oversight, Permission.LEGAL_BASIS_DECIDE, make_basis().id)


def test_the_author_is_refused_a_second_persons_decision(
    session: Session, people: People, make_basis: Make
) -> None:
    row = make_basis()
    second_person(session, people.supervisor, row, "approve")
    with pytest.raises(PermissionDenied, match="other than the author must approve") as caught:
        second_person(session, people.investigator, row, "approve")
    assert caught.value.code == "four-eyes-required"


def _auth(kind: AuthorisationKind, **changes: Any) -> Authorisation:
    values: dict[str, Any] = {
        "reference": None,
        "authority": None,
        "issued_at": NOW - timedelta(hours=1),
        "expires_at": NOW + timedelta(days=3),
    }
    if kind is not AuthorisationKind.URGENT:
        values |= _NAMED
    return Authorisation(kind=kind, **(values | changes))


@pytest.mark.parametrize(
    ("kind", "changes", "errors"),
    [
        (AuthorisationKind.JUDICIAL, {}, {}),
        (AuthorisationKind.URGENT, {}, {}),
        (AuthorisationKind.JUDICIAL, {"reference": None}, {"reference"}),
        (AuthorisationKind.ADMINISTRATIVE, {"authority": ""}, {"authority"}),
        (AuthorisationKind.URGENT, _NAMED, {"reference", "authority"}),
        (AuthorisationKind.JUDICIAL, {"issued_at": NOW + timedelta(seconds=1)}, {"issued_at"}),
        (AuthorisationKind.JUDICIAL, {"expires_at": NOW}, {"expires_at"}),
        (AuthorisationKind.JUDICIAL, {"expires_at": NOW + timedelta(days=180)}, {"expires_at"}),
        (AuthorisationKind.JUDICIAL, {"issued_at": datetime(2026, 6, 1)}, {"issued_at"}),
    ],
)
def test_an_authorisation_is_checked_per_field(
    kind: AuthorisationKind, changes: dict[str, Any], errors: set[str]
) -> None:
    found = authorisation_errors(_auth(kind, **changes), policy=POLICY, now=NOW, prefix="a.")
    assert set(found) == {f"a.{name}" for name in errors}


def test_an_authorisation_may_not_predate_the_basis() -> None:
    found = authorisation_errors(
        _auth(AuthorisationKind.JUDICIAL), policy=POLICY, now=NOW, not_before=NOW
    )
    assert found == {"issued_at": ["Must not be before the legal basis was recorded."]}


@pytest.mark.parametrize(
    "state", ["pending", "rejected", "expired", "revoked", "lapsed", "exhausted"]
)
def test_a_refusal_names_the_state(state: str) -> None:
    error = BasisUnusable(MISSING, state)
    assert isinstance(error, PolicyViolation)
    assert (error.code, error.state) == (f"legal-basis-{state}", state)
    assert error.extra == {"legal_basis_id": str(MISSING), "legal_basis_state": state}
    assert str(error).startswith(f"Legal basis {MISSING} is {state}. ")
