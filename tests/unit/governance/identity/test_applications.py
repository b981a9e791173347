"""The application workflow both kinds share: load, decide once, claim before the expiry."""

from __future__ import annotations

import re
import uuid
from dataclasses import replace

import pytest

from governance.core.errors import Conflict, NotFound
from governance.core.work import Work
from governance.identity import applications
from governance.identity.applications import ACCOUNT_REQUESTS, REGISTRATIONS, Flow
from governance.identity.models import AccountRequest, Registration
from governance.identity.permissions import Role
from governance.identity.vocabulary import ApplicationStatus
from ledger.entry import EntryType
from tests import factories
from tests.unit.governance.identity.recorded import POLICY, claim_secret, claim_secrets, person


def _request(work: Work, email: str) -> AccountRequest:
    requester = factories.account(work.session, Role.ADMIN)
    row = applications.pending_row(
        ACCOUNT_REQUESTS,
        person(email),
        agency_id=None,
        requested_by=requester.id,
        role=Role.CURATOR.value,
        requested_at=work.now,
    )
    work.session.add(row)
    work.session.flush()
    return row


@pytest.mark.parametrize(
    ("flow", "message"),
    [(REGISTRATIONS, "No such registration."), (ACCOUNT_REQUESTS, "No such account request.")],
)
def test_an_unknown_application_is_not_found(
    work: Work, flow: Flow[Registration] | Flow[AccountRequest], message: str
) -> None:
    with pytest.raises(NotFound, match=re.escape(message)):
        applications.load(work, flow, uuid.uuid4())


def test_an_application_is_decided_once(work: Work) -> None:
    row = _request(work, "c@example.org")
    admin = factories.principal(work.session, factories.account(work.session, Role.ADMIN))
    applications.decide(
        work, row, ACCOUNT_REQUESTS, principal=admin, reason="no", status=ApplicationStatus.REJECTED
    )
    assert (row.status, row.decided_by, row.decided_at) == ("rejected", admin.account_id, work.now)
    with pytest.raises(Conflict, match=r"already decided \(rejected\)"):
        applications.decide(
            work,
            row,
            ACCOUNT_REQUESTS,
            principal=admin,
            reason="yes",
            status=ApplicationStatus.APPROVED,
        )


def test_an_expired_claim_is_refused_and_a_fresh_one_works(work: Work) -> None:
    row = _request(work, "c@example.org")
    admin = factories.principal(work.session, factories.account(work.session, Role.ADMIN))
    grant = applications.Grant(
        role=Role.CURATOR,
        agency_id=None,
        headline="Welcome.",
        entry_type=EntryType.CURATOR_CREATE,
        payload={},
    )
    applications.approve(
        work, row, ACCOUNT_REQUESTS, lambda *_: grant, principal=admin, reason="ok", policy=POLICY
    )
    later = replace(work, now=work.now + POLICY.ttl)
    with pytest.raises(Conflict) as refused:
        applications.claim(
            later,
            ACCOUNT_REQUESTS,
            row.id,
            claim_secret=claim_secret(work.session, "c@example.org"),
            policy=POLICY,
        )
    assert refused.value.code == "claim-expired"
    old = claim_secret(work.session, "c@example.org")
    applications.resend(later, row, ACCOUNT_REQUESTS, principal=admin, policy=POLICY)
    (new,) = claim_secrets(work.session, "c@example.org") - {old}
    issued = applications.claim(later, ACCOUNT_REQUESTS, row.id, claim_secret=new, policy=POLICY)
    assert issued.credential.account_id == row.account_id and row.status == "claimed"
