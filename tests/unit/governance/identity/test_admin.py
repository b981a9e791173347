"""``create_admin``: validated details, an admin account, a key, and two ledger entries."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from governance.core.errors import InvalidInput
from governance.core.work import Work
from governance.identity.admin import create_admin
from governance.identity.credentials import authenticate
from governance.identity.permissions import Role
from ledger.storage import entries


def test_create_admin_records_and_returns_a_working_key(session: Session, work: Work) -> None:
    before = session.scalar(select(entries.c.seq).order_by(entries.c.seq.desc()).limit(1))
    info, key = create_admin(work, email=" Ops@Example.ORG", name=" Ada  Lovelace ")
    assert info.role is Role.ADMIN and info.agency_id is None
    assert info.email == "Ops@example.org" and info.name == "Ada Lovelace"
    principal = authenticate(work, token=key)
    assert principal.account_id == info.id and principal.role is Role.ADMIN
    types = session.scalars(
        select(entries.c.type)
        .where(entries.c.seq > (before if before is not None else -1))
        .order_by(entries.c.seq)
    ).all()
    assert types == ["admin:create", "credential:issue"]


@pytest.mark.parametrize(
    ("email", "name", "field"),
    [
        ("nope", "Ada", "email"),
        ("ops@example.org", "Ada\u202e", "name"),
        ("x@y.org", "", "name"),
    ],
)
def test_create_admin_refuses_bad_details(work: Work, email: str, name: str, field: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        create_admin(work, email=email, name=name)
    assert field in caught.value.fields
