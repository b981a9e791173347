"""``basis_info``: the status shown (``exhausted`` is never stored), whether a basis is usable,
and its decision, ratification and revocation as values.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from governance.legal_basis.models import LegalBasis
from governance.legal_basis.values import (
    AuthorisationKind,
    BasisStatus,
    LapseCause,
    RatificationOutcome,
    basis_info,
)
from tests.factories import NOW
from tests.unit.governance.legal_basis.helpers import People

Make = Callable[..., LegalBasis]


@pytest.mark.parametrize(
    ("changes", "status", "usable", "left"),
    [
        ({}, BasisStatus.PENDING, False, 10),
        ({"approved": True}, BasisStatus.APPROVED, True, 10),
        ({"approved": True, "searches_used": 9}, BasisStatus.APPROVED, True, 1),
        ({"approved": True, "searches_used": 10}, BasisStatus.EXHAUSTED, False, 0),
        ({"status": "revoked"}, BasisStatus.REVOKED, False, 10),
    ],
)
def test_the_status_shown_and_whether_it_is_usable(
    make_basis: Make, changes: dict[str, Any], status: BasisStatus, usable: bool, left: int
) -> None:
    info = basis_info(make_basis(**changes), NOW)
    assert (info.status, info.usable, info.searches_left) == (status, usable, left)


def test_an_approved_basis_past_its_expiry_is_not_usable(make_basis: Make) -> None:
    row = make_basis(approved=True)
    assert basis_info(row, row.expires_at).usable is False


def test_the_decision_is_a_value(make_basis: Make, people: People) -> None:
    info = basis_info(make_basis(approved=True), NOW)
    assert info.decision is not None
    assert (info.decision.at, info.decision.by) == (NOW, people.supervisor.account_id)
    assert (info.revocation, info.ratification) == (None, None)
    assert info.authorisation.kind is AuthorisationKind.JUDICIAL


def test_an_urgent_basis_shows_its_ratification(make_basis: Make) -> None:
    row = make_basis(
        urgent=True,
        status="lapsed",
        ratification_outcome="refused",
        ratified_at=NOW,
        lapsed_at=NOW,
        lapse_cause="refused",
        results_deleted=3,
    )
    info = basis_info(row, NOW)
    assert info.ratification is not None
    assert info.ratification.deadline == NOW + timedelta(hours=48)
    assert info.ratification.outcome is RatificationOutcome.REFUSED
    assert (info.status, info.lapse_cause, info.results_deleted) == (
        BasisStatus.LAPSED,
        LapseCause.REFUSED,
        3,
    )
