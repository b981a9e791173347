"""Fixtures of the legal-basis unit tests: one agency's people on the rolled-back session, what
the ledger holds about a basis, and (``world``) a fresh migrated database per engine.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from functools import partial
from typing import Any
from uuid import UUID

import pytest
from sqlalchemy.orm import Session

from governance.core.work import Hooks, Work
from governance.identity.models import Account
from governance.identity.permissions import Role
from governance.identity.principals import Principal
from governance.legal_basis.models import LegalBasis
from tests import factories
from tests.unit.governance.legal_basis.helpers import People, counting_hook, recorded_about, world


@pytest.fixture
def people(session: Session) -> People:
    agency = factories.agency(session)
    accounts = [
        factories.account(session, Role.INVESTIGATOR, agency_row=agency),
        factories.account(session, Role.SUPERVISOR, agency_row=agency),
        factories.account(session, Role.SUPERVISOR, agency_row=agency),
        factories.account(session, Role.SUPERVISOR),
        factories.account(session, Role.OVERSIGHT),
    ]
    return People(*(factories.principal(session, a) for a in accounts))


def _account(session: Session, principal: Principal) -> Account:
    row = session.get(Account, principal.account_id)
    assert row is not None
    return row


@pytest.fixture
def make_basis(session: Session, people: People) -> Callable[..., LegalBasis]:
    """Make a basis of the investigator's (or ``by`` another): judicial or ``urgent``, pending
    or ``approved`` (by the supervisor)."""

    def make(
        *,
        urgent: bool = False,
        approved: bool = False,
        by: Principal | None = None,
        **overrides: Any,
    ) -> LegalBasis:
        author = _account(session, by or people.investigator)
        build = factories.urgent_legal_basis if urgent else factories.legal_basis
        row = build(session, author, **overrides)
        if approved:
            factories.approved(session, row, _account(session, people.supervisor))
        return row

    return make


@pytest.fixture
def recorded(session: Session) -> Callable[[UUID], list[tuple[str, dict[str, Any]]]]:
    """(type, payload) of every ledger entry about a basis, in order."""
    return partial(recorded_about, session)


@pytest.fixture
def lapse_calls(work: Work) -> tuple[Work, list[tuple[UUID, str]]]:
    """``work`` with one lapse hook (``counting_hook``), and the calls it saw."""
    calls: list[tuple[UUID, str]] = []
    return replace(work, hooks=Hooks(on_lapse=[counting_hook(calls)])), calls


__all__ = ["People", "world"]
