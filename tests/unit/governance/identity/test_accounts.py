"""Accounts: listing within scope; suspend and reinstate with their rules."""

from __future__ import annotations

import pytest

from governance.core.errors import Conflict, NotFound
from governance.core.work import Work
from governance.identity import accounts as service
from governance.identity import standing
from governance.identity.accounts import ACCOUNTS
from governance.identity.models import Account
from governance.identity.permissions import Role
from governance.identity.persons import PersonHasAccount
from governance.identity.principals import TwoAdministratorsRequired
from tests import factories
from tests.unit.governance.identity.recorded import Ledger


def test_suspend_then_reinstate(work: Work) -> None:
    admin = factories.principal(work.session, factories.account(work.session, Role.ADMIN))
    target = factories.account(work.session, Role.INVESTIGATOR)
    ledger = Ledger(work.session)
    info = standing.suspend(
        work, ACCOUNTS, principal=admin, target_id=target.id, reason="left the force"
    )
    assert info.status == "suspended" and info.status_reason == "left the force"
    with pytest.raises(Conflict) as again:
        standing.suspend(work, ACCOUNTS, principal=admin, target_id=target.id, reason="twice")
    assert again.value.code == "already-suspended"
    info = standing.reinstate(work, ACCOUNTS, principal=admin, target_id=target.id, reason="back")
    assert info.status == "active" and info.status_changed_at == work.now
    (suspend, payload), (reinstate, _) = ledger.entries()
    assert (suspend, reinstate) == ("account:suspend", "account:reinstate")
    assert payload["account"] == str(target.id) and payload["agency"] == str(target.agency_id)
    assert "proposal" not in payload


def test_nobody_changes_their_own_account(work: Work) -> None:
    row = factories.account(work.session, Role.ADMIN)
    admin = factories.principal(work.session, row)
    with pytest.raises(Conflict) as refused:
        standing.suspend(work, ACCOUNTS, principal=admin, target_id=row.id, reason="me")
    assert refused.value.code == "own-account"


def test_an_oversight_account_is_suspended_only_by_a_proposal(work: Work) -> None:
    admin = factories.principal(work.session, factories.account(work.session, Role.ADMIN))
    oversight = factories.account(work.session, Role.OVERSIGHT)
    with pytest.raises(TwoAdministratorsRequired):
        standing.suspend(work, ACCOUNTS, principal=admin, target_id=oversight.id, reason="alone")
    assert work.session.get(Account, oversight.id).status == "active"  # type: ignore[union-attr]


def test_reinstating_refuses_a_second_active_account_of_the_person(work: Work) -> None:
    admin = factories.principal(work.session, factories.account(work.session, Role.ADMIN))
    agency = factories.agency(work.session)
    old = factories.account(
        work.session, agency_row=agency, status="suspended", email="ada@example.org"
    )
    factories.account(work.session, agency_row=agency, email="Ada@example.org")
    with pytest.raises(PersonHasAccount):
        standing.reinstate(work, ACCOUNTS, principal=admin, target_id=old.id, reason="back")


def test_a_supervisor_sees_only_its_agency(work: Work) -> None:
    supervisor_row = factories.account(work.session, Role.SUPERVISOR)
    supervisor = factories.principal(work.session, supervisor_row)
    other = factories.account(work.session, Role.INVESTIGATOR)
    page = service.list_accounts(work, principal=supervisor, limit=50, offset=0)
    assert {a.agency_id for a in page.items} == {supervisor_row.agency_id}
    with pytest.raises(NotFound):
        service.get_account(work, principal=supervisor, account_id=other.id)
