"""The one table from domain error to problem: each class answers its status, its type and
its written title; an unknown one answers as its nearest ancestor; extra members reach the body.
"""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask

from api.errors import ANSWERS, PROBLEM_MEDIA_TYPE, install_error_handlers
from api.problems import PROBLEMS
from api.ratelimit import RateLimitStoreUnavailable
from biometrics.errors import (
    BiometricsError,
    DimensionMismatch,
    DomainError,
    ImageTooLarge,
    IndexUnavailable,
    InvalidImage,
    InvalidQuery,
    ModelError,
    NoFaceFound,
    PackError,
    UnsupportedImageType,
)
from governance.core.db import DatabaseUnavailable
from governance.core.errors import (
    Conflict,
    GovernanceError,
    InvalidInput,
    NotFound,
    PermissionDenied,
    PolicyViolation,
    ServiceUnavailable,
    Unauthenticated,
)
from governance.core.recording import LedgerUnavailable


class Unforeseen(GovernanceError):
    """A governance error the table does not name."""

    code = "unforeseen"


class UnforeseenConflict(Conflict):
    """A conflict the table does not name."""


def _problem(error: DomainError) -> dict[str, Any]:
    """The problem answered to ``POST /things/7?q=1`` (a JSON body) whose view raises ``error``."""
    app = Flask(__name__)
    install_error_handlers(app)

    def fail(n: int) -> str:
        raise error

    app.add_url_rule("/things/<int:n>", "fail", fail, methods=["POST"])
    response = app.test_client().post("/things/7?q=1", json={"name": "x"})
    assert response.mimetype == PROBLEM_MEDIA_TYPE
    body: dict[str, Any] = response.get_json()
    assert body["status"] == response.status_code
    assert body["instance"] == "/things/7"
    return body


@pytest.mark.parametrize(
    ("error", "status", "code", "title"),
    [
        (NotFound, 404, "not-found", "Not found"),
        (Unauthenticated, 401, "unauthenticated", "Authentication required"),
        (PermissionDenied, 403, "forbidden", "Forbidden"),
        (Conflict, 409, "conflict", "Conflict with the current state"),
        (PolicyViolation, 403, "policy-violation", "Not allowed by the rules"),
        (InvalidInput, 422, "invalid-input", "Invalid input"),
        (DatabaseUnavailable, 503, "database-unavailable", "Database unavailable"),
        (LedgerUnavailable, 503, "ledger-unavailable", "The ledger cannot record now"),
        (ServiceUnavailable, 503, "service-unavailable", "Service unavailable"),
        (GovernanceError, 400, "governance-error", "Request refused"),
        (UnsupportedImageType, 415, "unsupported-image-type", "Unsupported image type"),
        (InvalidImage, 422, "invalid-image", "Unreadable image"),
        (NoFaceFound, 422, "no-face", "No face found"),
        (IndexUnavailable, 503, "vector-index-unavailable", "Vector index unavailable"),
        (DimensionMismatch, 422, "biometrics-error", "Face analysis failed"),
        (InvalidQuery, 422, "biometrics-error", "Face analysis failed"),
        (ModelError, 503, "model-unavailable", "Face models unavailable"),
        (PackError, 503, "model-unavailable", "Face models unavailable"),
        (BiometricsError, 422, "biometrics-error", "Face analysis failed"),
        (DomainError, 400, "domain-error", "Request refused"),
    ],
    ids=lambda value: value.__name__ if isinstance(value, type) else None,
)
def test_each_error_class_answers_its_status_type_and_title(
    error: type[DomainError], status: int, code: str, title: str
) -> None:
    body = _problem(error("Refused for a reason."))
    assert (body["status"], body["type"], body["title"]) == (status, f"/problems/{code}", title)
    assert body["detail"] == "Refused for a reason."


def test_an_unavailable_part_asks_the_client_to_retry_after_a_pause() -> None:
    app = Flask(__name__)
    install_error_handlers(app)

    def fail() -> str:
        raise DatabaseUnavailable("the database cannot be reached; retry shortly")

    app.add_url_rule("/things", "fail", fail)
    response = app.test_client().get("/things")
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    assert response.get_json()["type"] == "/problems/database-unavailable"


def test_an_image_too_large_is_a_413() -> None:
    body = _problem(ImageTooLarge("image is 2 bytes; the limit is 1", limit=1, actual=2))
    assert (body["status"], body["type"], body["title"]) == (
        413,
        "/problems/image-too-large",
        "Image too large",
    )


def test_the_table_names_every_class_tested_here() -> None:
    assert set(ANSWERS) == {
        NotFound,
        Unauthenticated,
        PermissionDenied,
        Conflict,
        PolicyViolation,
        InvalidInput,
        DatabaseUnavailable,
        LedgerUnavailable,
        RateLimitStoreUnavailable,
        ServiceUnavailable,
        UnsupportedImageType,
        ImageTooLarge,
        InvalidImage,
        NoFaceFound,
        IndexUnavailable,
        ModelError,
        PackError,
        BiometricsError,
        DomainError,
    }


def test_an_unknown_governance_error_is_a_400_of_its_own_type() -> None:
    body = _problem(Unforeseen("Odd."))
    assert (body["status"], body["type"], body["title"], body["detail"]) == (
        400,
        "/problems/unforeseen",
        "Request refused",
        "Odd.",
    )


def test_an_unknown_subclass_answers_as_its_nearest_ancestor() -> None:
    body = _problem(UnforeseenConflict("Clash."))
    assert (body["status"], body["type"], body["title"]) == (
        409,
        "/problems/conflict",
        "Conflict with the current state",
    )


def test_a_code_given_at_construction_names_the_type_and_its_written_title() -> None:
    body = _problem(Conflict("This request was already decided.", code="already-decided"))
    assert (body["status"], body["type"], body["title"]) == (
        409,
        "/problems/already-decided",
        "Already decided",
    )


def test_extra_members_appear_in_the_body() -> None:
    error = PolicyViolation(
        "Expired.", code="legal-basis-expired", extra={"legal_basis_state": "expired"}
    )
    body = _problem(error)
    assert body["legal_basis_state"] == "expired"
    assert (body["status"], body["title"]) == (403, "Legal basis expired")


def test_invalid_fields_say_where_they_were_sent() -> None:
    error = InvalidInput(
        "bad",
        fields={"n": ["Too big."], "q": ["Odd."], "name": ["Taken."]},
        extra={"faces": []},
    )
    body = _problem(error)
    assert body["errors"] == [
        {"in": "path", "field": "n", "detail": "Too big."},
        {"in": "query", "field": "q", "detail": "Odd."},
        {"in": "json", "field": "name", "detail": "Taken."},
    ]
    assert body["faces"] == []


def test_the_table_agrees_with_the_documented_problem_types() -> None:
    documented = {p.code: p for p in PROBLEMS if not p.generic}
    disagree = [
        cls.__name__
        for cls, answer in ANSWERS.items()
        if cls.code in documented
        and (answer.status, answer.title)
        != (documented[cls.code].status, documented[cls.code].title)
    ]
    assert disagree == []
