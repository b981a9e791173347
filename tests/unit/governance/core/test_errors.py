"""Governance errors have the one domain shape: a code (the class's, or one given), a detail
for people and extra problem members, all set at construction.
"""

from __future__ import annotations

from uuid import UUID

import pytest

from biometrics.errors import DomainError
from governance.core.errors import (
    Conflict,
    GovernanceError,
    InvalidInput,
    NotFound,
    PermissionDenied,
    PolicyViolation,
    ServiceUnavailable,
    Unauthenticated,
    blank_fields,
)
from governance.core.recording import LedgerUnavailable
from governance.legal_basis.rules import BasisUnusable
from governance.search.running import ThresholdBelowFloor

BASIS = UUID("5b1f0a52-0000-4000-8000-000000000001")


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (GovernanceError, "governance-error"),
        (NotFound, "not-found"),
        (Unauthenticated, "unauthenticated"),
        (PermissionDenied, "forbidden"),
        (Conflict, "conflict"),
        (PolicyViolation, "policy-violation"),
        (InvalidInput, "invalid-input"),
        (ServiceUnavailable, "service-unavailable"),
        (LedgerUnavailable, "ledger-unavailable"),
    ],
)
def test_each_error_has_its_own_code(error: type[GovernanceError], code: str) -> None:
    raised = error("Something is wrong.")
    assert isinstance(raised, DomainError)
    assert (raised.code, raised.detail, str(raised)) == (
        code,
        "Something is wrong.",
        "Something is wrong.",
    )
    assert dict(raised.extra) == {}


def test_a_code_given_at_construction_names_that_instance_only() -> None:
    raised = Conflict("This request was already decided.", code="already-decided")
    assert raised.code == "already-decided"
    assert Conflict("Another.").code == "conflict"


def test_extra_members_are_set_at_construction_and_frozen() -> None:
    raised = GovernanceError("Refused.", extra={"legal_basis_id": str(BASIS)})
    assert dict(raised.extra) == {"legal_basis_id": str(BASIS)}
    with pytest.raises(TypeError):
        raised.extra["legal_basis_id"] = "other"  # type: ignore[index]


def test_invalid_input_carries_its_fields_and_extra_members() -> None:
    raised = InvalidInput(
        "two faces", fields={"face_index": ["Choose one."]}, code="multiple-faces", extra={"n": 2}
    )
    assert raised.fields == {"face_index": ["Choose one."]}
    assert (raised.code, dict(raised.extra)) == ("multiple-faces", {"n": 2})
    assert InvalidInput("bad").fields == {}


def test_an_unusable_basis_names_its_state_in_code_and_members() -> None:
    raised = BasisUnusable(BASIS, "expired")
    assert raised.code == "legal-basis-expired"
    assert dict(raised.extra) == {"legal_basis_id": str(BASIS), "legal_basis_state": "expired"}
    assert raised.detail.startswith(f"Legal basis {BASIS} is expired.")


def test_a_threshold_below_the_floor_names_the_floor() -> None:
    raised = ThresholdBelowFloor(0.2, 0.35, 1e-4)
    assert raised.code == "threshold-below-floor"
    assert dict(raised.extra) == {"threshold_floor": 0.35, "threshold_floor_far": 1e-4}
    assert raised.fields == {"threshold": ["Must be at least 0.35."]}


@pytest.mark.parametrize(
    ("reason", "reference", "expected"),
    [
        ("spam", "letter", {}),
        ("  ", "letter", {"reason": ["A reason."]}),
        ("", "\t", {"reason": ["A reason."], "reference": ["A reference."]}),
    ],
)
def test_blank_fields_names_each_blank_text_with_its_message(
    reason: str, reference: str, expected: dict[str, list[str]]
) -> None:
    found = blank_fields(reason=(reason, "A reason."), reference=(reference, "A reference."))
    assert found == expected
    assert list(found) == list(expected)
