"""Account requests and staff accounts: the application workflow, four eyes, one person."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from governance.core.errors import Conflict, InvalidInput, PermissionDenied
from governance.core.work import Work
from governance.identity import account_requests as service
from governance.identity.models import Account, AccountRequest, Agency
from governance.identity.permissions import Role
from governance.identity.persons import PersonHasAccount
from governance.identity.principals import Principal
from governance.identity.vocabulary import ApplicationStatus
from tests import factories
from tests.unit.governance.identity.recorded import POLICY, Ledger, claim_secret, person


def _admin(session: Session, **overrides: object) -> Principal:
    return factories.principal(session, factories.account(session, Role.ADMIN, **overrides))


def test_a_curator_is_recorded_as_created_not_as_an_approval(work: Work) -> None:
    ledger = Ledger(work.session)
    admin = _admin(work.session)
    submitted = service.create_staff(
        work, principal=admin, role=Role.CURATOR, person=person(), reason=None, claims=POLICY
    )
    assert submitted.status is ApplicationStatus.APPROVED
    assert ledger.types() == ["curator:create"]
    ((_, payload),) = ledger.entries()
    assert payload["role"] == "curator" and payload["requested_by"] == str(admin.account_id)


def test_an_oversight_account_waits_for_a_second_administrator(work: Work) -> None:
    ledger = Ledger(work.session)
    first, second = _admin(work.session), _admin(work.session)
    someone = person()
    submitted = service.create_staff(
        work,
        principal=first,
        role=Role.OVERSIGHT,
        person=someone,
        reason="oversight",
        claims=POLICY,
    )
    assert submitted.status is ApplicationStatus.PENDING
    with pytest.raises(PermissionDenied) as refused:
        service.approve_request(
            work, principal=first, request_id=submitted.id, reason="me", claims=POLICY
        )
    assert refused.value.code == "four-eyes-required"
    info = service.approve_request(
        work, principal=second, request_id=submitted.id, reason="agreed", claims=POLICY
    )
    assert info.status is ApplicationStatus.APPROVED and info.decided_by == second.account_id
    account = work.session.get(Account, info.account_id)
    assert account is not None and account.role == "oversight" and account.agency_id is None
    assert ledger.types() == ["account:request", "oversight:create"]


def test_four_eyes_compares_persons_not_accounts(work: Work) -> None:
    first = _admin(work.session, email="ops@example.org")
    submitted = service.create_staff(
        work, principal=first, role=Role.OVERSIGHT, person=person(), reason="why", claims=POLICY
    )
    # The same person (addresses compare case-folded) under a second, suspended account.
    twin = factories.principal(
        work.session,
        factories.account(work.session, Role.ADMIN, status="suspended", email="OPS@example.org"),
    )
    with pytest.raises(PermissionDenied, match="four eyes"):
        service.approve_request(
            work, principal=twin, request_id=submitted.id, reason="me again", claims=POLICY
        )


def test_oversight_needs_a_reason(work: Work) -> None:
    with pytest.raises(InvalidInput) as refused:
        service.create_staff(
            work,
            principal=_admin(work.session),
            role=Role.OVERSIGHT,
            person=person(),
            reason=None,
            claims=POLICY,
        )
    assert "reason" in refused.value.fields


def test_a_supervisor_requests_and_the_person_claims(work: Work) -> None:
    supervisor_row = factories.account(work.session, Role.SUPERVISOR)
    supervisor = factories.principal(work.session, supervisor_row)
    admin = _admin(work.session)
    someone = person()
    submitted = service.request_account(
        work, principal=supervisor, role=Role.INVESTIGATOR, person=someone
    )
    ledger = Ledger(work.session)
    service.approve_request(
        work, principal=admin, request_id=submitted.id, reason="ok", claims=POLICY
    )
    issued = service.claim_request(
        work,
        request_id=submitted.id,
        claim_secret=claim_secret(work.session, someone.email),
        claims=POLICY,
    )
    row = work.session.get(AccountRequest, submitted.id)
    assert row is not None and row.status == "claimed" and row.claimed_at == work.now
    assert issued.credential.account_id == row.account_id
    assert ledger.types() == ["account:approve", "credential:issue", "account:claim"]
    account = work.session.get(Account, row.account_id)
    assert account is not None and account.agency_id == supervisor_row.agency_id


def test_a_request_is_decided_once(work: Work) -> None:
    supervisor = factories.principal(work.session, factories.account(work.session, Role.SUPERVISOR))
    admin = _admin(work.session)
    submitted = service.request_account(
        work, principal=supervisor, role=Role.INVESTIGATOR, person=person()
    )
    ledger = Ledger(work.session)
    info = service.reject_request(work, principal=admin, request_id=submitted.id, reason="no")
    assert info.status is ApplicationStatus.REJECTED and info.decision_reason == "no"
    assert ledger.types() == ["account:reject"]
    with pytest.raises(Conflict) as refused:
        service.approve_request(
            work, principal=admin, request_id=submitted.id, reason="yes", claims=POLICY
        )
    assert refused.value.code == "already-decided"


def test_one_person_one_account_per_agency(work: Work) -> None:
    supervisor_row = factories.account(work.session, Role.SUPERVISOR)
    factories.account(
        work.session,
        Role.INVESTIGATOR,
        agency_row=work.session.get(Agency, supervisor_row.agency_id),
        email="taken@example.org",
    )
    with pytest.raises(PersonHasAccount):
        service.request_account(
            work,
            principal=factories.principal(work.session, supervisor_row),
            role=Role.INVESTIGATOR,
            person=person("Taken@example.org"),
        )


def test_an_agency_asks_only_for_agency_roles(work: Work) -> None:
    supervisor = factories.principal(work.session, factories.account(work.session, Role.SUPERVISOR))
    with pytest.raises(InvalidInput):
        service.request_account(work, principal=supervisor, role=Role.ADMIN, person=person())
