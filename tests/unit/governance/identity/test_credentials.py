"""Credentials: issued keys authenticate until revoked, expired or their holder is suspended."""

from __future__ import annotations

from datetime import timedelta

import pytest

from governance.core.errors import Conflict, Unauthenticated
from governance.core.work import Work
from governance.identity import credentials as service
from governance.identity.credentials import (
    MAX_ACTIVE_CREDENTIALS,
    SuspendedCaller,
    UnknownCredential,
)
from governance.identity.permissions import Role
from governance.identity.principals import TwoAdministratorsRequired
from tests import factories
from tests.unit.governance.identity.recorded import Ledger

TTL = timedelta(days=30)


def test_an_issued_key_authenticates_until_revoked(work: Work) -> None:
    row = factories.account(work.session, Role.INVESTIGATOR)
    holder = factories.principal(work.session, row)
    ledger = Ledger(work.session)
    issued = service.create_credential(work, principal=holder, ttl=TTL, label="laptop")
    principal = service.authenticate(work, token=issued.api_key)
    assert principal.account_id == row.id and principal.credential_id == issued.credential.id
    info = service.revoke_credential(work, principal=holder, credential_id=issued.credential.id)
    assert info.status == "revoked" and info.revoked_at == work.now
    with pytest.raises(Unauthenticated) as refused:
        service.authenticate(work, token=issued.api_key)
    assert refused.value.code == "credential-revoked"
    assert ledger.types() == ["credential:issue", "credential:revoke"]


def test_unknown_and_malformed_keys_are_unknown(work: Work) -> None:
    for token in ("fw_0123456789abcdef_" + "x" * 43, "not a key"):
        with pytest.raises(UnknownCredential):
            service.authenticate(work, token=token)


def test_a_suspended_account_or_agency_is_told_apart(work: Work) -> None:
    agency = factories.agency(work.session)
    row = factories.account(work.session, agency_row=agency)
    issued = service.create_credential(
        work, principal=factories.principal(work.session, row), ttl=TTL
    )
    agency.status = "suspended"
    with pytest.raises(SuspendedCaller) as refused:
        service.authenticate(work, token=issued.api_key)
    assert refused.value.code == "agency-suspended" and refused.value.principal.account_id == row.id
    row.status = "suspended"
    with pytest.raises(SuspendedCaller) as refused:
        service.authenticate(work, token=issued.api_key)
    assert refused.value.code == "account-suspended"


def test_at_most_so_many_active_keys(work: Work) -> None:
    holder = factories.principal(work.session, factories.account(work.session))
    for _ in range(MAX_ACTIVE_CREDENTIALS - 1):  # the factory's principal holds one already
        service.create_credential(work, principal=holder, ttl=TTL)
    with pytest.raises(Conflict) as refused:
        service.create_credential(work, principal=holder, ttl=TTL)
    assert refused.value.code == "too-many-credentials"


def test_an_oversight_key_is_revoked_by_another_only_with_a_proposal(work: Work) -> None:
    admin = factories.principal(work.session, factories.account(work.session, Role.ADMIN))
    credential = factories.credential(work.session, factories.account(work.session, Role.OVERSIGHT))
    with pytest.raises(TwoAdministratorsRequired):
        service.revoke_credential(work, principal=admin, credential_id=credential.id)
    assert credential.revoked_at is None
