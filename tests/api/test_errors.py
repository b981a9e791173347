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
