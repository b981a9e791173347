"""Principals: scopes, hidden objects of other agencies, and the ledger actor."""

from __future__ import annotations

import uuid

import pytest

from governance.core.errors import NotFound, PermissionDenied
from governance.identity.permissions import Permission, Role
from governance.identity.principals import Principal, actor_of, require_scope, visible

AGENCY = uuid.uuid4()
INVESTIGATOR = Principal(uuid.uuid4(), Role.INVESTIGATOR, AGENCY, uuid.uuid4())
ADMIN = Principal(uuid.uuid4(), Role.ADMIN, None, uuid.uuid4())


def test_a_role_without_the_permission_is_refused() -> None:
    with pytest.raises(PermissionDenied) as refused:
        require_scope(INVESTIGATOR, Permission.REGISTRATION_REVIEW)
    assert refused.value.code == "forbidden"


def test_another_agencys_object_is_not_found() -> None:
    visible(INVESTIGATOR, Permission.AGENCY_READ, agency_id=AGENCY)
    with pytest.raises(NotFound, match=r"No such agency\."):
        visible(INVESTIGATOR, Permission.AGENCY_READ, agency_id=uuid.uuid4(), what="agency")
    visible(ADMIN, Permission.AGENCY_READ, agency_id=uuid.uuid4())


def test_the_actor_names_ids_only() -> None:
    actor = actor_of(INVESTIGATOR)
    assert (actor.kind, actor.id, actor.agency) == (
        "account",
        str(INVESTIGATOR.account_id),
        str(AGENCY),
    )
    assert actor_of(ADMIN).agency is None
