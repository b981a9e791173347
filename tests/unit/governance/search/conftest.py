"""Fixtures of the search domain's unit tests: a team of one agency, another agency, and units
of work on the rolled-back test transaction (for the flows that open several)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from governance.core.work import Units
from governance.identity.models import Account
from governance.identity.permissions import Role
from governance.identity.principals import Principal
from governance.legal_basis.models import LegalBasis
from ledger.storage import entries, tree_size
from tests import factories
from tests.api.helpers import runtime_of


@dataclass(frozen=True, slots=True)
class SearchTeam:
    """An agency's searcher, two reviewers and a supervisor, an approved basis, an outsider."""

    searcher: Account
    reviewer: Account
    reviewer2: Account
    supervisor: Account
    basis: LegalBasis
    outsider: Principal


@pytest.fixture
def team(session: Session) -> SearchTeam:
    row = factories.agency(session)
    searcher = factories.account(session, Role.INVESTIGATOR, agency_row=row)
    reviewer = factories.account(session, Role.INVESTIGATOR, agency_row=row)
    reviewer2 = factories.account(session, Role.SUPERVISOR, agency_row=row)
    supervisor = factories.account(session, Role.SUPERVISOR, agency_row=row)
    outsider = factories.principal(session, factories.account(session, Role.SUPERVISOR))
    return SearchTeam(
        searcher=searcher,
        reviewer=reviewer,
        reviewer2=reviewer2,
        supervisor=supervisor,
        basis=factories.approved_basis(session, searcher, supervisor),
        outsider=outsider,
    )


@pytest.fixture
def units(app: Flask, session: Session) -> Units:
    """Units of work at ``factories.NOW``, each a savepoint of the rolled-back test transaction:
    what one unit commits the next sees, and the test's end undoes all of it."""
    rt = runtime_of(app)
    sessions = sessionmaker(
        bind=session.bind, join_transaction_mode="create_savepoint", expire_on_commit=False
    )
    return Units(sessions=sessions, keys=rt.keys, now=factories.NOW, hooks=rt.hooks)


def entries_since(session: Session, seq: int) -> list[dict[str, Any]]:
    """The ledger entries from ``seq`` on, parsed, oldest first."""
    bodies = session.scalars(
        select(entries.c.body).where(entries.c.seq >= seq).order_by(entries.c.seq)
    )
    return [dict(json.loads(bytes(body))) for body in bodies]


def next_seq(session: Session) -> int:
    """The seq the next ledger entry will have."""
    return tree_size(session)
