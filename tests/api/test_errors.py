"""Every error is an RFC 9457 problem with a request id; a 500 leaks nothing."""

from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient

from api.app import create_app
from api.settings import Settings

PROBLEM = "application/problem+json"


def _assert_problem(response, status: int) -> dict:  # type: ignore[no-untyped-def]
    assert response.status_code == status
    assert response.mimetype == PROBLEM
    body = response.get_json()
    assert {"type", "title", "status", "detail", "request_id"} <= set(body)
    assert body["status"] == status
    assert body["request_id"] == response.headers["X-Request-ID"]
    return body


def test_unknown_path_is_a_404_problem(client: FlaskClient) -> None:
    body = _assert_problem(client.get("/v1/no-such-thing"), 404)
    assert body["type"] == "about:blank"


def test_wrong_method_is_a_405_problem_with_allow(client: FlaskClient) -> None:
    response = client.delete("/healthz")
    _assert_problem(response, 405)
    assert "GET" in response.headers["Allow"]


def test_oversized_body_is_a_413_problem(client: FlaskClient, app: Flask) -> None:
    limit = app.config["MAX_CONTENT_LENGTH"]
    response = client.post(
        "/healthz", data=b"x" * (limit + 1), content_type="application/octet-stream"
    )
    assert response.status_code in (405, 413)
    _assert_problem(response, response.status_code)


@pytest.fixture
def boom_app(app: Flask, settings: Settings) -> Flask:
    """A fresh app on the same settings, with one route that fails unexpectedly."""
    fresh = create_app(settings)
    fresh.add_url_rule("/boom", "boom", lambda: 1 / 0)
    return fresh


def test_unexpected_errors_are_a_generic_500_without_internals(boom_app: Flask) -> None:
    body = _assert_problem(boom_app.test_client().get("/boom"), 500)
    assert "ZeroDivision" not in str(body) and "Traceback" not in str(body)
    assert body["request_id"] in body["detail"]


def _domain_errors() -> list[type[Exception]]:
    import api.resources  # noqa: F401  (every resource, and so every domain module, loaded)
    from biometrics.errors import BiometricsError
    from governance.core.errors import GovernanceError

    found: list[type[Exception]] = []
    stack: list[type[Exception]] = [GovernanceError, BiometricsError]
    while stack:
        cls = stack.pop()
        if cls not in found:
            found.append(cls)
            stack.extend(cls.__subclasses__())
    return sorted(found, key=lambda c: f"{c.__module__}.{c.__qualname__}")


@pytest.mark.parametrize("error", _domain_errors(), ids=lambda c: c.__qualname__)
def test_every_problem_title_is_written_not_a_docstring(error: type[Exception]) -> None:
    from api.errors import title_of

    title = title_of(error.__new__(error))  # type: ignore[arg-type]
    first_line = (error.__doc__ or "").strip().splitlines()[0].rstrip(".")
    assert title and title != first_line
    assert len(title) <= 60 and not title.endswith(".")


def test_every_problem_code_in_the_source_has_a_written_title() -> None:
    import re
    from pathlib import Path

    from api.errors import TITLE_BY_CODE
    from governance.legal_basis.rules import _REFUSALS

    root = Path(__file__).resolve().parents[2]
    literal = re.compile(r'\bcode\s*=\s*"([a-z0-9-]+)"')
    codes = {
        code
        for package in ("api", "governance", "biometrics")
        for path in (root / package).rglob("*.py")
        for code in literal.findall(path.read_text(encoding="utf-8"))
    }
    codes |= {f"legal-basis-{state}" for state in _REFUSALS}  # code=f"legal-basis-{state}"
    codes |= {"already-active", "already-suspended"}  # code=f"already-{status}"
    generic = {"governance-error", "not-found", "unauthenticated", "forbidden", "conflict"}
    generic |= {"policy-violation", "invalid-input", "service-unavailable"}
    missing = sorted(codes - generic - set(TITLE_BY_CODE))
    assert missing == []


def test_a_problem_answer_carries_the_written_title(client: FlaskClient) -> None:
    from uuid import uuid4

    from api.errors import TITLE_BY_CODE

    registration = client.post(
        f"/v1/registrations/{uuid4()}/claim", json={"claim_secret": "fwc_" + "a" * 52}
    )
    body = registration.get_json()
    assert body["title"] in (*TITLE_BY_CODE.values(), "Not found")
    assert "caller may not know" not in body["title"]
