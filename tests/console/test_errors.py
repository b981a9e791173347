"""The console's errors are pages: the API's status for the same error, never a traceback."""

from __future__ import annotations

import pytest

from tests.console.conftest import Visitor


def test_an_unexpected_error_is_a_page_with_a_reference_and_no_internals(
    visitor: Visitor, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken() -> None:
        raise RuntimeError("connection string postgresql://secret@db")

    monkeypatch.setattr("api.console.pages.console_principal", broken)
    answer = visitor.get("/console/", headers={"X-Request-ID": "console-test-0001"})
    assert answer.status_code == 500
    assert answer.mimetype == "text/html"
    text = answer.get_data(as_text=True)
    assert "console-test-0001" in text
    assert "secret" not in text and "Traceback" not in text


def test_a_page_that_does_not_exist_is_a_404_page(visitor: Visitor) -> None:
    answer = visitor.get("/console/no-such-page")
    assert answer.status_code == 404
    assert answer.mimetype == "text/html"
    assert "There is no page at /console/no-such-page." in answer.get_data(as_text=True)
