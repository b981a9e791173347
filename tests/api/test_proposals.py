"""Acts that would silence oversight need two administrators: one proposes, another confirms."""

from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.api.helpers import (
    Agent,
    decide,
    ledger_payloads,
    ledger_size,
    ledger_types,
    mail_to,
    make_admin,
    make_agency,
    make_staff,
    person,
    problem,
    two_admins,
)

REASON = {"reason": "the body is compromised"}


@pytest.fixture(scope="module")
def admin(app: Flask) -> Agent:
    return make_admin(app)


def _propose(client: FlaskClient, admin: Agent, action: str, target: object) -> str:
    response = client.post(
        "/v1/proposals",
        json={"action": action, "target_id": str(target), **REASON},
        headers=admin.headers,
    )
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["status"] == "pending"
    return f"/v1/proposals/{response.get_json()['id']}"


def test_one_admin_alone_cannot_suspend_oversight_or_revoke_its_key(
    app: Flask, client: FlaskClient, admin: Agent
) -> None:
    oversight = make_staff(client, admin, "oversight")
    alone = [
        client.post(
            f"/v1/accounts/{oversight.account_id}/suspend", json=REASON, headers=admin.headers
        ),
        client.delete(f"/v1/credentials/{oversight.credential_id}", headers=admin.headers),
    ]
    for response in alone:
        body = problem(response, 403)
        assert body["type"] == "/problems/two-administrators-required"
        assert body["title"] == "This act needs two administrators"
    assert client.get("/v1/accounts/me", headers=oversight.headers).status_code == 200
    # The proposer cannot confirm (nor reject) their own proposal; a second admin can.
    path = _propose(client, admin, "credential:revoke", oversight.credential_id)
    for verdict in ("confirm", "reject"):
        own = client.post(f"{path}/{verdict}", json=REASON, headers=admin.headers)
        assert problem(own, 403)["type"] == "/problems/four-eyes-required"
    twin = client.post(
        "/v1/proposals",
        json={"action": "credential:revoke", "target_id": str(oversight.credential_id), **REASON},
        headers=admin.headers,
    )
    assert problem(twin, 409)["type"] == "/problems/duplicate-proposal"
    assert client.get("/v1/accounts/me", headers=oversight.headers).status_code == 200
    before = ledger_size(app)
    second = make_admin(app)
    confirmed = decide(client, second, path, "confirm")
    assert confirmed["status"] == "confirmed" and confirmed["decided_by"] == str(second.account_id)
    assert problem(client.get("/v1/accounts/me", headers=oversight.headers), 401)
    assert ledger_types(app, after=before + 1) == ["credential:revoke"]
    [revoked] = ledger_payloads(app, after=before + 1)
    assert revoked["proposal"] == confirmed["id"]
    # The oversight body itself sees what was proposed against it.
    listed = client.get("/v1/proposals?status=confirmed&limit=100", headers=second.headers)
    assert confirmed["id"] in {p["id"] for p in listed.get_json()["items"]}


def test_suspending_an_oversight_account_by_proposal(
    app: Flask, client: FlaskClient, admin: Agent
) -> None:
    oversight = make_staff(client, admin, "oversight")
    before = ledger_size(app)
    two_admins(client, admin, "account:suspend", oversight.account_id)
    assert ledger_types(app, after=before - 1)[::3] == ["proposal:create", "account:suspend"]
    problem(client.get("/v1/accounts/me", headers=oversight.headers), 403)


def test_a_rejected_proposal_changes_nothing(app: Flask, client: FlaskClient, admin: Agent) -> None:
    supervisor = make_agency(client, admin)
    path = _propose(client, admin, "agency:suspend", supervisor.agency_id)
    before = ledger_size(app)
    rejected = decide(client, make_admin(app), path, "reject")
    assert rejected["status"] == "rejected"
    assert ledger_types(app, after=before - 1)[-1] == "proposal:reject"
    assert client.get("/v1/accounts/me", headers=supervisor.headers).status_code == 200
    final = client.post(f"{path}/confirm", json=REASON, headers=admin.headers)
    assert problem(final, 409)["type"] == "/problems/already-decided"
    unknown = client.post(
        "/v1/proposals",
        json={
            "action": "agency:suspend",
            "target_id": "00000000-0000-4000-8000-000000000007",
            **REASON,
        },
        headers=admin.headers,
    )
    problem(unknown, 404)


def test_an_oversight_account_needs_a_second_admin(
    app: Flask, client: FlaskClient, admin: Agent
) -> None:
    someone = person()
    missing = client.post(
        "/v1/staff", json={"role": "oversight", "person": someone}, headers=admin.headers
    )
    assert problem(missing, 422)["errors"][0]["field"] == "reason"
    response = client.post(
        "/v1/staff",
        json={"role": "oversight", "person": someone, "reason": "named by the statute"},
        headers=admin.headers,
    )
    assert response.status_code == 201 and response.get_json()["status"] == "pending"
    assert "claim_secret" not in response.get_json()
    path = f"/v1/account-requests/{response.get_json()['id']}"
    own = client.post(f"{path}/approve", json=REASON, headers=admin.headers)
    assert problem(own, 403)["type"] == "/problems/four-eyes-required"
    assert mail_to(app, someone["email"]) == []
    before = ledger_size(app)
    second = make_admin(app)
    approved = decide(client, second, path, "approve")
    assert approved["account_id"] and len(mail_to(app, someone["email"])) == 1
    assert ledger_types(app, after=before + 1) == ["oversight:create"]
    [created] = ledger_payloads(app, after=before + 1)
    assert created["requested_by"] == str(admin.account_id)


def test_an_admin_cannot_hold_a_platform_account_twice(
    app: Flask, client: FlaskClient, admin: Agent
) -> None:
    me = client.get("/v1/accounts/me", headers=admin.headers).get_json()
    response = client.post(
        "/v1/staff",
        json={"role": "curator", "person": person(email=me["email"].upper())},
        headers=admin.headers,
    )
    assert problem(response, 409)["type"] == "/problems/person-has-account"
