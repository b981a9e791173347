"""Accounts and agencies: scoped reads, suspension effective on the very next request."""

from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.api.helpers import (
    Agent,
    decide,
    ledger_size,
    ledger_types,
    make_account,
    make_admin,
    make_agency,
    problem,
)


@pytest.fixture(scope="module")
def admin(app: Flask) -> Agent:
    return make_admin(app)


def _act(client: FlaskClient, admin: Agent, path: str, reason: str = "misuse reported") -> int:
    return int(client.post(path, json={"reason": reason}, headers=admin.headers).status_code)


def test_account_suspension_and_reinstatement(
    app: Flask, client: FlaskClient, admin: Agent
) -> None:
    supervisor = make_agency(client, admin)
    investigator = make_account(client, admin, supervisor, "investigator")
    path = f"/v1/accounts/{investigator.account_id}"
    assert client.get("/v1/accounts/me", headers=investigator.headers).status_code == 200
    problem(client.post(f"{path}/suspend", json={}, headers=admin.headers), 422)
    before = ledger_size(app)
    assert _act(client, admin, f"{path}/suspend") == 200
    refused = problem(client.get("/v1/accounts/me", headers=investigator.headers), 403)
    assert refused["type"] == "/problems/account-suspended"
    assert client.get("/v1/accounts/me", headers=supervisor.headers).status_code == 200
    assert _act(client, admin, f"{path}/suspend") == 409
    assert _act(client, admin, f"{path}/reinstate", "cleared") == 200
    assert client.get("/v1/accounts/me", headers=investigator.headers).status_code == 200
    assert ledger_types(app, after=before - 1) == ["account:suspend", "account:reinstate"]
    shown = client.get(path, headers=admin.headers).get_json()
    assert shown["status"] == "active" and shown["status_reason"] == "cleared"


def test_agency_suspension_stops_every_member(
    app: Flask, client: FlaskClient, admin: Agent
) -> None:
    supervisor = make_agency(client, admin)
    investigator = make_account(client, admin, supervisor, "investigator")
    before = ledger_size(app)
    proposed = client.post(
        f"/v1/agencies/{supervisor.agency_id}/suspend",
        json={"reason": "misuse reported"},
        headers=admin.headers,
    )
    assert proposed.status_code == 202 and proposed.get_json()["status"] == "pending"
    assert client.get("/v1/accounts/me", headers=supervisor.headers).status_code == 200
    second = make_admin(app)
    decide(client, second, f"/v1/proposals/{proposed.get_json()['id']}", "confirm")
    for member in (supervisor, investigator):
        body = problem(client.get("/v1/accounts/me", headers=member.headers), 403)
        assert body["type"] == "/problems/agency-suspended"
    assert _act(client, admin, f"/v1/agencies/{supervisor.agency_id}/reinstate", "resolved") == 200
    for member in (supervisor, investigator):
        assert client.get("/v1/accounts/me", headers=member.headers).status_code == 200
    assert ledger_types(app, after=before - 1) == [
        "proposal:create",
        "admin:create",  # the second administrator
        "credential:issue",
        "agency:suspend",
        "agency:reinstate",
    ]
    assert _act(client, admin, f"/v1/agencies/{supervisor.agency_id}/reinstate") == 409


def test_admins_cannot_suspend_themselves(client: FlaskClient, admin: Agent) -> None:
    response = client.post(
        f"/v1/accounts/{admin.account_id}/suspend", json={"reason": "oops"}, headers=admin.headers
    )
    assert problem(response, 409)["type"] == "/problems/own-account"


def test_reads_are_scoped_to_the_agency(client: FlaskClient, admin: Agent) -> None:
    mine = make_agency(client, admin)
    colleague = make_account(client, admin, mine, "investigator")
    other = make_agency(client, admin)
    listed = client.get("/v1/accounts?limit=100", headers=mine.headers).get_json()
    assert {a["agency_id"] for a in listed["items"]} == {str(mine.agency_id)}
    assert listed["total"] == 2
    assert (
        client.get(f"/v1/accounts/{colleague.account_id}", headers=mine.headers).status_code == 200
    )
    problem(client.get(f"/v1/accounts/{other.account_id}", headers=mine.headers), 404)
    # Investigators see only themselves; filtering cannot widen a scope.
    solo = client.get(f"/v1/accounts?agency_id={other.agency_id}", headers=colleague.headers)
    assert solo.get_json()["items"] == []
    problem(client.get(f"/v1/accounts/{mine.account_id}", headers=colleague.headers), 404)
    agencies = client.get("/v1/agencies", headers=colleague.headers).get_json()
    assert [a["id"] for a in agencies["items"]] == [str(mine.agency_id)]
    problem(client.get(f"/v1/agencies/{other.agency_id}", headers=colleague.headers), 404)
    everyone = client.get(f"/v1/accounts?agency_id={other.agency_id}", headers=admin.headers)
    assert [a["id"] for a in everyone.get_json()["items"]] == [str(other.account_id)]


def test_unknown_ids_are_404(client: FlaskClient, admin: Agent) -> None:
    nobody = "00000000-0000-4000-8000-000000000001"
    for path in (
        f"/v1/accounts/{nobody}",
        f"/v1/agencies/{nobody}",
        f"/v1/account-requests/{nobody}",
        f"/v1/registrations/{nobody}",
        f"/v1/credentials/{nobody}",
    ):
        problem(client.get(path, headers=admin.headers), 404)
    problem(client.get("/v1/accounts/not-a-uuid", headers=admin.headers), 404)
