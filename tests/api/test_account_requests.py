"""More accounts for an agency: a supervisor asks, an admin decides, the person claims."""

from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.api.helpers import (
    Agent,
    claim,
    decide,
    ledger_size,
    ledger_types,
    make_account,
    make_admin,
    make_agency,
    person,
    problem,
)


@pytest.fixture(scope="module")
def admin(app: Flask) -> Agent:
    return make_admin(app)


@pytest.fixture(scope="module")
def supervisor(app: Flask, admin: Agent) -> Agent:
    return make_agency(app.test_client(), admin)


def _request(client: FlaskClient, supervisor: Agent, role: str = "investigator") -> dict[str, str]:
    response = client.post(
        "/v1/account-requests",
        json={"role": role, "person": person()},
        headers=supervisor.headers,
    )
    assert response.status_code == 202, response.get_json()
    data: dict[str, str] = response.get_json()
    return data


def test_request_approve_claim(
    app: Flask, client: FlaskClient, admin: Agent, supervisor: Agent
) -> None:
    before = ledger_size(app)
    receipt = _request(client, supervisor)
    assert receipt["status"] == "pending" and receipt["claim_secret"].startswith("fwc_")
    path = f"/v1/account-requests/{receipt['id']}"
    early = client.post(f"{path}/claim", json={"claim_secret": receipt["claim_secret"]})
    assert problem(early, 409)["type"] == "/problems/not-approved"
    approved = decide(client, admin, path, "approve")
    assert approved["agency_id"] == str(supervisor.agency_id)
    issued = claim(client, path, receipt["claim_secret"])
    me = client.get("/v1/accounts/me", headers={"Authorization": f"Bearer {issued['api_key']}"})
    assert me.get_json()["role"] == "investigator"
    assert me.get_json()["agency_id"] == str(supervisor.agency_id)
    assert ledger_types(app, after=before - 1) == [
        "account:request",
        "account:approve",
        "credential:issue",
        "account:claim",
    ]
    replay = client.post(f"{path}/claim", json={"claim_secret": receipt["claim_secret"]})
    assert problem(replay, 409)["type"] == "/problems/already-claimed"


def test_rejection_is_final(client: FlaskClient, admin: Agent, supervisor: Agent) -> None:
    receipt = _request(client, supervisor, "supervisor")
    path = f"/v1/account-requests/{receipt['id']}"
    assert decide(client, admin, path, "reject")["status"] == "rejected"
    again = client.post(f"{path}/approve", json={"reason": "changed mind"}, headers=admin.headers)
    problem(again, 409)
    refused = client.post(f"{path}/claim", json={"claim_secret": receipt["claim_secret"]})
    problem(refused, 409)


@pytest.mark.parametrize("role", ["admin", "oversight", "curator", "boss"])
def test_agencies_request_only_agency_roles(
    client: FlaskClient, supervisor: Agent, role: str
) -> None:
    response = client.post(
        "/v1/account-requests",
        json={"role": role, "person": person()},
        headers=supervisor.headers,
    )
    body = problem(response, 422)
    assert body["errors"][0]["field"] == "role"


def test_duplicate_pending_request_is_a_conflict(client: FlaskClient, supervisor: Agent) -> None:
    details = person()
    first = client.post(
        "/v1/account-requests",
        json={"role": "investigator", "person": details},
        headers=supervisor.headers,
    )
    assert first.status_code == 202
    second = client.post(
        "/v1/account-requests",
        json={"role": "supervisor", "person": details},
        headers=supervisor.headers,
    )
    assert problem(second, 409)["type"] == "/problems/duplicate-request"


def test_supervisors_see_only_their_agencys_requests(
    client: FlaskClient, admin: Agent, supervisor: Agent
) -> None:
    other = make_agency(client, admin)
    theirs = _request(client, other)
    mine = _request(client, supervisor)
    listed = client.get("/v1/account-requests?status=pending", headers=supervisor.headers)
    ids = {r["id"] for r in listed.get_json()["items"]}
    assert mine["id"] in ids and theirs["id"] not in ids
    problem(client.get(f"/v1/account-requests/{theirs['id']}", headers=supervisor.headers), 404)
    shown = client.get(f"/v1/account-requests/{mine['id']}", headers=supervisor.headers)
    assert "claim_secret" not in shown.get_json()


def test_investigators_cannot_request(client: FlaskClient, admin: Agent, supervisor: Agent) -> None:
    investigator = make_account(client, admin, supervisor, "investigator")
    response = client.post(
        "/v1/account-requests",
        json={"role": "investigator", "person": person()},
        headers=investigator.headers,
    )
    assert problem(response, 403)["type"] == "/problems/forbidden"


def test_approving_for_a_suspended_agency_is_a_conflict(client: FlaskClient, admin: Agent) -> None:
    boss = make_agency(client, admin)
    receipt = _request(client, boss)
    suspended = client.post(
        f"/v1/agencies/{boss.agency_id}/suspend",
        json={"reason": "audit pending"},
        headers=admin.headers,
    )
    assert suspended.status_code == 200
    refused = client.post(
        f"/v1/account-requests/{receipt['id']}/approve",
        json={"reason": "looks fine"},
        headers=admin.headers,
    )
    assert problem(refused, 409)["type"] == "/problems/agency-suspended"
