"""Properties of every route of the app, walked from its URL map and its OpenAPI: bounded
integers, caching that keeps personal data private, and the browser protection headers."""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterator
from typing import Any
from uuid import uuid4

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.routing import IntegerConverter, Rule, UUIDConverter

from api.spec import generate_spec
from tests.api.bases import Team, make_team
from tests.api.helpers import Agent, make_staff

HUGE = 10**23  # past every SQL integer type, and past a float's exact integers


@pytest.fixture(scope="module")
def team(app: Flask) -> Team:
    return make_team(app)


@pytest.fixture(scope="module")
def curator(app: Flask, team: Team) -> Agent:
    return make_staff(app.test_client(), team.admin, "curator")


def _rules(app: Flask, method: str = "GET") -> Iterator[Rule]:
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        if method in (rule.methods or ()) and rule.endpoint != "static":
            yield rule


def _url(rule: Rule, integer: int = 1) -> str:
    values: dict[str, Any] = {}
    for name, converter in rule._converters.items():
        if isinstance(converter, IntegerConverter):
            values[name] = str(integer)
        elif isinstance(converter, UUIDConverter):
            values[name] = str(uuid4())
        else:
            values[name] = "x"
    path = rule.rule
    for name, value in values.items():
        path = re.sub(rf"<(?:[^:<>]+:)?{name}>", value, path)
    return path


def _integer_path_rules(app: Flask) -> list[Rule]:
    return [
        rule
        for rule in _rules(app)
        if any(isinstance(c, IntegerConverter) for c in rule._converters.values())
    ]


def test_every_route_with_an_integer_in_its_path_refuses_a_huge_one(
    app: Flask, client: FlaskClient, team: Team
) -> None:
    rules = _integer_path_rules(app)
    assert any("/ledger/checkpoints/" in r.rule for r in rules)
    for rule in rules:
        url = _url(rule, HUGE)
        for agent in (team.oversight, team.admin):
            response = client.get(url, headers=agent.headers)
            assert 400 <= response.status_code < 500, (url, response.status_code)
            assert response.mimetype == "application/problem+json"


def _integer_query_parameters() -> list[tuple[str, str]]:
    found = []
    for path, operations in generate_spec()["paths"].items():
        get = operations.get("get")
        for parameter in (get or {}).get("parameters", []):
            if parameter["in"] == "query" and parameter["schema"].get("type") == "integer":
                found.append((path, parameter["name"]))
    return found


@pytest.mark.parametrize(("path", "name"), _integer_query_parameters())
def test_every_integer_query_parameter_is_bounded_and_refuses_a_huge_one(
    app: Flask, client: FlaskClient, team: Team, curator: Agent, path: str, name: str
) -> None:
    spec = generate_spec()["paths"][path]["get"]
    schema = next(p["schema"] for p in spec["parameters"] if p["name"] == name)
    assert schema.get("maximum") is not None, f"{path} {name} has no maximum"
    url = re.sub(r"{[^}]+}", lambda _m: str(uuid4()), path)
    required = {
        p["name"]: "1"
        for p in spec["parameters"]
        if p["in"] == "query" and p.get("required") and p["name"] != name
    }
    # Whoever may call it (a role without the permission is refused before the schema).
    statuses = {
        client.get(url, query_string={**required, name: str(HUGE)}, headers=a.headers).status_code
        for a in (team.admin, team.oversight, team.sup, curator)
    }
    assert statuses - {403} == {422}, (path, name, statuses)


def test_integer_path_parameters_are_bounded_in_the_openapi() -> None:
    for path, operations in generate_spec()["paths"].items():
        parameters = list(operations.get("parameters", []))  # path-level, then each operation's
        for operation in operations.values():
            if isinstance(operation, dict):
                parameters += operation.get("parameters", [])
        for parameter in parameters:
            if parameter["in"] == "path" and parameter["schema"].get("type") == "integer":
                assert parameter["schema"]["maximum"] == 2**53 - 1, path
                assert parameter["schema"]["minimum"] == 0, path


def test_every_authenticated_answer_stays_private(
    app: Flask, client: FlaskClient, team: Team
) -> None:
    # The ledger exists (make_team appended entries): its immutable pages are cacheable,
    # but by the caller's own client only.
    checked = 0
    for rule in _rules(app):
        for agent in (team.admin, team.oversight, team.sup):
            response = client.get(_url(rule, 0), headers=agent.headers)
            policy = response.headers.get("Cache-Control", "")
            assert "public" not in policy, (rule.rule, policy)
            assert "no-store" in policy or "private" in policy, (rule.rule, policy)
            assert "Authorization" in response.headers.get("Vary", ""), rule.rule
            checked += 1
    assert checked > 60
    entries = client.get("/v1/ledger/entries?start=0&end=1", headers=team.oversight.headers)
    assert entries.status_code == 200
    assert entries.headers["Cache-Control"] == "private, max-age=31536000, immutable"
    searches = client.get("/v1/searches", headers=team.sup.headers)
    assert searches.headers["Cache-Control"] == "no-store"


def test_only_the_public_checkpoint_and_keys_may_be_cached_by_anyone(
    client: FlaskClient,
) -> None:
    assert client.get("/v1/ledger/checkpoint").headers["Cache-Control"] == "no-cache"
    assert client.get("/v1/ledger/keys?format=text").headers["Cache-Control"] == "no-cache"
    assert client.get("/v1/searches").headers["Cache-Control"] == "no-store"  # a 401


def test_every_response_carries_the_browser_protections(app: Flask, client: FlaskClient) -> None:
    for rule in _rules(app):
        response = client.get(_url(rule))
        assert response.headers["X-Content-Type-Options"] == "nosniff", rule.rule
        assert response.headers["X-Frame-Options"] == "DENY", rule.rule
        policy = response.headers["Content-Security-Policy"]
        assert "frame-ancestors 'none'" in policy, rule.rule
        if rule.rule != "/docs":
            assert policy.startswith("default-src 'none'"), rule.rule


def test_the_docs_page_allows_its_own_scripts_and_nothing_else(client: FlaskClient) -> None:
    page = client.get("/docs")
    assert page.status_code == 200 and page.mimetype == "text/html"
    directives = page.headers["Content-Security-Policy"].split("; ")
    policy = {d.split(" ", 1)[0]: d.split(" ", 1)[1] for d in directives}
    assert policy["default-src"] == "'none'"
    assert policy["frame-ancestors"] == "'none'"
    assert page.headers["X-Frame-Options"] == "DENY"
    html = page.get_data()
    inline = re.findall(rb"<script>(.*?)</script>", html, re.DOTALL)
    assert inline, "Swagger UI starts from an inline script"
    allowed = policy["script-src"].split()
    assert "'self'" in allowed and "'unsafe-inline'" not in allowed
    for script in inline:
        digest = base64.b64encode(hashlib.sha256(script).digest()).decode()
        assert f"'sha256-{digest}'" in allowed
    # Its scripts and styles are local files, and the spec it fetches is on this origin.
    for src in re.findall(rb'(?:src|href)="([^"]+)"', html):
        assert src.startswith(b"/docs/static/"), src
        assert client.get(src.decode()).status_code == 200
    assert policy["connect-src"] == "'self'"
