"""Agency registrations: submit, decide once, approve into an agency and a supervisor, claim."""

from __future__ import annotations

import pytest

from governance.core.errors import Conflict
from governance.core.work import Work
from governance.identity import registrations as service
from governance.identity.agencies import AgencyDetails
from governance.identity.claims import WrongClaim
from governance.identity.models import Account, Agency, Registration
from governance.identity.permissions import Role
from governance.identity.vocabulary import AgencyKind, ApplicationStatus
from tests import factories
from tests.unit.governance.identity.recorded import POLICY, Ledger, claim_secret, person

AGENCY = AgencyDetails(
    name="Utrecht Police", kind=AgencyKind.POLICE, country="NL", jurisdiction="Utrecht"
)


def _submit(work: Work, email: str | None = None) -> service.Submitted:
    return service.submit_registration(
        work, agency=AGENCY, contact=person(email), intended_use="Find suspects."
    )


def test_a_submission_is_pending_and_recorded(work: Work) -> None:
    ledger = Ledger(work.session)
    submitted = _submit(work)
    assert submitted.status is ApplicationStatus.PENDING
    row = work.session.get(Registration, submitted.id)
    assert row is not None and row.status == "pending" and row.submitted_at == work.now
    assert ledger.entries() == [
        (
            "registration:submit",
            {"registration": str(submitted.id), "agency_kind": "police", "country": "NL"},
        )
    ]


def test_the_same_agency_and_email_wait_once(work: Work) -> None:
    _submit(work, "contact@police.example")
    with pytest.raises(Conflict) as refused:
        _submit(work, "contact@police.example")
    assert refused.value.code == "duplicate-registration"


def test_approval_creates_the_agency_and_its_supervisor_and_the_contact_claims(
    work: Work,
) -> None:
    admin = factories.principal(work.session, factories.account(work.session, Role.ADMIN))
    submitted = _submit(work, "contact@police.example")
    ledger = Ledger(work.session)
    info = service.approve_registration(
        work, principal=admin, registration_id=submitted.id, reason="checked", claims=POLICY
    )
    assert info.status is ApplicationStatus.APPROVED and info.decided_by == admin.account_id
    agency = work.session.get(Agency, info.agency_id)
    account = work.session.get(Account, info.account_id)
    assert agency is not None and agency.name == "Utrecht Police"
    assert account is not None and account.role == "supervisor" and account.agency_id == agency.id
    issued = service.claim_registration(
        work,
        registration_id=submitted.id,
        claim_secret=claim_secret(work.session, "contact@police.example"),
        claims=POLICY,
    )
    assert issued.credential.account_id == account.id
    assert ledger.types() == ["registration:approve", "credential:issue", "registration:claim"]
    with pytest.raises(Conflict) as again:
        service.claim_registration(
            work,
            registration_id=submitted.id,
            claim_secret=claim_secret(work.session, "contact@police.example"),
            claims=POLICY,
        )
    assert again.value.code == "already-claimed"


def test_a_rejection_is_final_and_nothing_can_be_claimed(work: Work) -> None:
    admin = factories.principal(work.session, factories.account(work.session, Role.ADMIN))
    submitted = _submit(work)
    info = service.reject_registration(
        work, principal=admin, registration_id=submitted.id, reason="unknown agency"
    )
    assert info.status is ApplicationStatus.REJECTED and info.agency_id is None
    with pytest.raises(Conflict) as refused:
        service.approve_registration(
            work, principal=admin, registration_id=submitted.id, reason="after all", claims=POLICY
        )
    assert refused.value.code == "already-decided"
    with pytest.raises(WrongClaim):
        service.claim_registration(
            work, registration_id=submitted.id, claim_secret="fwc_" + "a" * 52, claims=POLICY
        )


def test_a_resent_claim_replaces_the_old_secret(work: Work) -> None:
    admin = factories.principal(work.session, factories.account(work.session, Role.ADMIN))
    submitted = _submit(work, "contact@police.example")
    service.approve_registration(
        work, principal=admin, registration_id=submitted.id, reason="ok", claims=POLICY
    )
    old = claim_secret(work.session, "contact@police.example")
    ledger = Ledger(work.session)
    service.resend_claim(work, principal=admin, registration_id=submitted.id, claims=POLICY)
    assert ledger.types() == ["claim:reissue"]
    with pytest.raises(WrongClaim):
        service.claim_registration(
            work, registration_id=submitted.id, claim_secret=old, claims=POLICY
        )
