"""The application workflow both kinds share: load, decide once, claim before the expiry."""

from __future__ import annotations

import re
import uuid
from dataclasses import replace
from typing import Any

import pytest

from governance.core.errors import Conflict, NotFound
from governance.core.work import Work
from governance.identity import applications
from governance.identity.account_requests import ACCOUNT_REQUESTS
from governance.identity.applications import Flow
from governance.identity.models import AccountRequest
from governance.identity.permissions import Role
from governance.identity.registrations import REGISTRATIONS
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
    work: Work, flow: Flow[Any, Any], message: str
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


def test_a_supervisor_lists_only_its_agencys_requests(work: Work) -> None:
    supervisor_row = factories.account(work.session, Role.SUPERVISOR)
    supervisor = factories.principal(work.session, supervisor_row)
    other = factories.account(work.session, Role.SUPERVISOR)
    for requester in (supervisor_row, other):
        row = applications.pending_row(
            ACCOUNT_REQUESTS,
            person(),
            agency_id=requester.agency_id,
            requested_by=requester.id,
            role=Role.INVESTIGATOR.value,
            requested_at=work.now,
        )
        work.session.add(row)
    work.session.flush()
    page = applications.list_applications(
        work, ACCOUNT_REQUESTS, principal=supervisor, limit=10, offset=0
    )
    assert [r.agency_id for r in page.items] == [supervisor_row.agency_id] and page.total == 1
    none = applications.list_applications(
        work,
        ACCOUNT_REQUESTS,
        principal=supervisor,
        limit=10,
        offset=0,
        status=ApplicationStatus.APPROVED,
    )
    assert none.items == [] and none.total == 0
