"""Every console page says who may open it, and a visitor who is not signed in reaches only
the open ones: the console's role matrix (the API's is tests/api/test_role_matrix.py)."""

from __future__ import annotations

import re
from uuid import uuid4

import pytest
from flask import Flask
from flask.testing import FlaskClient

from api.console.security import ANYONE, GUARD_ATTRIBUTE
from tests.console.conftest import Visitor

# The pages a visitor may open without signing in; every other page is guarded.
OPEN = {
    ("/console/", "GET"),
    ("/console/register", "GET"),
    ("/console/register", "POST"),
    ("/console/register/sent", "GET"),
    ("/console/sign-in", "GET"),
    ("/console/sign-in", "POST"),
    ("/console/sign-in/options", "POST"),
    ("/console/claim/<what>/<uuid:claim_id>", "GET"),
    ("/console/claim/<what>/<uuid:claim_id>", "POST"),
    ("/console/claim/<what>/<uuid:claim_id>/options", "POST"),
    ("/console/enrol", "GET"),
    ("/console/enrol", "POST"),
    ("/console/enrol/options", "POST"),
    ("/console/<path:unknown>", "GET"),  # the 404 page of paths no page has
}


def _routes(app: Flask) -> set[tuple[str, str]]:
    return {
        (rule.rule, method)
        for rule in app.url_map.iter_rules()
        if rule.rule.startswith("/console/") and rule.endpoint != "console.static"
        for method in rule.methods or ()
        if method not in ("HEAD", "OPTIONS")
    }


def test_every_console_page_declares_its_guard(app: Flask) -> None:
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/console/") and rule.endpoint != "console.static":
            view = app.view_functions[rule.endpoint]
            guard = getattr(view, GUARD_ATTRIBUTE, None)
            assert guard is not None, f"{rule.rule}: mark it @anyone or guard it @signed_in"
            opened = {(rule.rule, m) for m in rule.methods or ()} & OPEN
            assert (guard == ANYONE) == bool(opened), (rule.rule, guard)


def _path(rule: str) -> str:
    return re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", lambda m: str(uuid4()), rule)


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_a_visitor_who_is_not_signed_in_reaches_only_the_open_pages(
    app: Flask, visitor: Visitor, method: str
) -> None:
    for rule, verb in sorted(_routes(app)):
        if verb != method or (rule, verb) in OPEN:
            continue
        path = _path(rule)
        answer = visitor.get(path) if method == "GET" else visitor.post(path)
        assert answer.status_code == 303, (rule, answer.status_code)
        assert answer.headers["Location"].startswith("/console/sign-in?next="), rule


def test_the_service_address_leads_to_the_console(client: FlaskClient) -> None:
    answer = client.get("/", base_url="https://localhost:8443")
    assert answer.status_code == 302
    assert answer.headers["Location"] == "/console/"
