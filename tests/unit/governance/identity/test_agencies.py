"""Agencies: suspended only by a confirmed proposal, reinstated by one administrator."""

from __future__ import annotations

import uuid

import pytest

from governance.core.errors import Conflict, NotFound
from governance.core.work import Work
from governance.identity import agencies as service
from governance.identity import standing
from governance.identity.agencies import AGENCIES
from governance.identity.permissions import Role
from governance.identity.principals import TwoAdministratorsRequired
from tests import factories
from tests.unit.governance.identity.recorded import Ledger


def test_suspension_needs_a_proposal(work: Work) -> None:
    admin = factories.principal(work.session, factories.account(work.session, Role.ADMIN))
    agency = factories.agency(work.session)
    with pytest.raises(TwoAdministratorsRequired):
        standing.suspend(
            work, AGENCIES, principal=admin, target_id=agency.id, reason="alone", proposal=None
        )
    assert agency.status == "active"


def test_suspend_by_proposal_then_reinstate(work: Work) -> None:
    admin = factories.principal(work.session, factories.account(work.session, Role.ADMIN))
    agency = factories.agency(work.session)
    proposal = uuid.uuid4()
    ledger = Ledger(work.session)
    info = standing.suspend(
        work, AGENCIES, principal=admin, target_id=agency.id, reason="abuse", proposal=proposal
    )
    assert info.status == "suspended" and info.status_reason == "abuse"
    with pytest.raises(Conflict) as again:
        standing.suspend(
            work, AGENCIES, principal=admin, target_id=agency.id, reason="again", proposal=proposal
        )
    assert again.value.code == "already-suspended"
    info = standing.reinstate(work, AGENCIES, principal=admin, target_id=agency.id, reason="fixed")
    assert info.status == "active"
    (suspend, payload), (reinstate, later) = ledger.entries()
    assert (suspend, reinstate) == ("agency:suspend", "agency:reinstate")
    assert payload["proposal"] == str(proposal) and "proposal" not in later
    with pytest.raises(Conflict) as active:
        standing.reinstate(work, AGENCIES, principal=admin, target_id=agency.id, reason="twice")
    assert active.value.code == "already-active"


def test_members_see_only_their_agency(work: Work) -> None:
    member_row = factories.account(work.session, Role.INVESTIGATOR)
    member = factories.principal(work.session, member_row)
    other = factories.agency(work.session)
    page = service.list_agencies(work, principal=member, limit=10, offset=0)
    assert [a.id for a in page.items] == [member_row.agency_id] and page.total == 1
    with pytest.raises(NotFound):
        service.get_agency(work, principal=member, agency_id=other.id)
