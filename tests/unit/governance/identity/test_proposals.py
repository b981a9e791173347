"""Proposals: one administrator proposes, a different person confirms or rejects."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from governance.core.errors import Conflict, PermissionDenied
from governance.core.work import Work
from governance.identity import proposals as service
from governance.identity.models import Account, Credential
from governance.identity.permissions import Role
from governance.identity.principals import Principal
from governance.identity.proposals import ProposedAct
from tests import factories
from tests.unit.governance.identity.recorded import Ledger


def _admin(session: Session, **overrides: object) -> Principal:
    return factories.principal(session, factories.account(session, Role.ADMIN, **overrides))


def test_a_confirmed_proposal_suspends_the_oversight_account(work: Work) -> None:
    first, second = _admin(work.session), _admin(work.session)
    oversight = factories.account(work.session, Role.OVERSIGHT)
    ledger = Ledger(work.session)
    proposal = service.propose(
        work,
        principal=first,
        action=ProposedAct.ACCOUNT_SUSPEND,
        target_id=oversight.id,
        reason="leaked key",
    )
    info = service.confirm_proposal(
        work, principal=second, proposal_id=proposal.id, reason="agreed"
    )
    assert info.status == "confirmed" and info.decided_by == second.account_id
    row = work.session.get(Account, oversight.id)
    assert row is not None and row.status == "suspended"
    assert row.status_reason == "leaked key\n-- confirmed: agreed"
    (created, _), (suspended, payload) = ledger.entries()
    assert (created, suspended) == ("proposal:create", "account:suspend")
    assert payload["proposal"] == str(proposal.id)


def test_the_proposer_cannot_decide_even_under_another_account(work: Work) -> None:
    first = _admin(work.session, email="ops@example.org")
    twin = _admin(work.session, email="OPS@example.org", status="suspended")
    oversight = factories.account(work.session, Role.OVERSIGHT)
    credential = factories.credential(work.session, oversight)
    proposal = service.propose(
        work,
        principal=first,
        action=ProposedAct.CREDENTIAL_REVOKE,
        target_id=credential.id,
        reason="leaked",
    )
    for decider in (first, twin):
        with pytest.raises(PermissionDenied) as refused:
            service.reject_proposal(work, principal=decider, proposal_id=proposal.id, reason="no")
        assert refused.value.code == "four-eyes-required"
    assert work.session.get(Credential, credential.id).revoked_at is None  # type: ignore[union-attr]


def test_a_rejected_proposal_is_final_and_does_nothing(work: Work) -> None:
    first, second = _admin(work.session), _admin(work.session)
    agency = factories.agency(work.session)
    proposal = service.propose(
        work, principal=first, action=ProposedAct.AGENCY_SUSPEND, target_id=agency.id, reason="x"
    )
    ledger = Ledger(work.session)
    info = service.reject_proposal(work, principal=second, proposal_id=proposal.id, reason="no")
    assert info.status == "rejected" and agency.status == "active"
    assert ledger.types() == ["proposal:reject"]
    with pytest.raises(Conflict) as again:
        service.confirm_proposal(work, principal=second, proposal_id=proposal.id, reason="yes")
    assert again.value.code == "already-decided"


def test_one_pending_proposal_per_act_and_target(work: Work) -> None:
    admin = _admin(work.session)
    agency = factories.agency(work.session)
    service.propose(
        work, principal=admin, action=ProposedAct.AGENCY_SUSPEND, target_id=agency.id, reason="a"
    )
    with pytest.raises(Conflict) as refused:
        service.propose(
            work,
            principal=admin,
            action=ProposedAct.AGENCY_SUSPEND,
            target_id=agency.id,
            reason="b",
        )
    assert refused.value.code == "duplicate-proposal"
