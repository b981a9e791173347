"""Persons: one active account per person and scope; persons compared by their address."""

from __future__ import annotations

import pytest

from governance.core.work import Work
from governance.identity import persons
from governance.identity.permissions import Role
from governance.identity.persons import PersonHasAccount
from tests import factories


def test_a_second_active_account_in_the_scope_is_refused(work: Work) -> None:
    agency = factories.agency(work.session)
    factories.account(work.session, agency_row=agency, email="ada@example.org")
    with pytest.raises(PersonHasAccount, match="in this agency"):
        persons.refuse_second_account(work.session, agency_id=agency.id, email=" ADA@example.org")
    # Another agency, and the platform, are other scopes.
    persons.refuse_second_account(
        work.session, agency_id=factories.agency(work.session).id, email="ada@example.org"
    )
    persons.refuse_second_account(work.session, agency_id=None, email="ada@example.org")


def test_a_suspended_account_does_not_count(work: Work) -> None:
    factories.account(work.session, Role.CURATOR, email="c@example.org", status="suspended")
    persons.refuse_second_account(work.session, agency_id=None, email="c@example.org")


def test_same_person_compares_addresses_across_accounts(work: Work) -> None:
    one = factories.account(work.session, email="ada@example.org")
    two = factories.account(work.session, Role.ADMIN, email="Ada@Example.org")
    other = factories.account(work.session, email="bob@example.org")
    assert persons.same_person(work.session, one.id, two.id) is True
    assert persons.same_person(work.session, one.id, other.id) is False
    assert persons.same_person(work.session, one.id, one.id) is True
    assert persons.persons_of(work.session, {one.id, other.id}) == {
        one.id: "ada@example.org",
        other.id: "bob@example.org",
    }
