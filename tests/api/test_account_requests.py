"""More accounts for an agency: a supervisor asks, an admin decides, the person claims."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.api.helpers import (
    Agent,
    claim,
    decide,
    ledger_payloads,
    ledger_size,
    ledger_types,
    mail_to,
    mailed_secret,
    make_account,
    make_admin,
    make_agency,
    person,
    problem,
    runtime_of,
    secret_in,
    two_admins,
)


@pytest.fixture(scope="module")
def admin(app: Flask) -> Agent:
    return make_admin(app)


@pytest.fixture(scope="module")
def supervisor(app: Flask, admin: Agent) -> Agent:
    return make_agency(app.test_client(), admin)


def _request(
    client: FlaskClient,
    supervisor: Agent,
    role: str = "investigator",
    someone: dict[str, Any] | None = None,
) -> dict[str, str]:
    someone = someone or person()
    response = client.post(
        "/v1/account-requests",
        json={"role": role, "person": someone},
        headers=supervisor.headers,
    )
    assert response.status_code == 202, response.get_json()
    data: dict[str, str] = response.get_json()
    data["email"] = someone["email"]
    return data


def test_the_secret_is_mailed_to_the_person_on_approval_and_never_answered(
    app: Flask, client: FlaskClient, admin: Agent, supervisor: Agent
) -> None:
    before = ledger_size(app)
    receipt = _request(client, supervisor)
    assert receipt["status"] == "pending" and "claim_secret" not in receipt
    assert mail_to(app, receipt["email"]) == []  # nothing to claim before approval
    path = f"/v1/account-requests/{receipt['id']}"
    approved = client.post(f"{path}/approve", json={"reason": "checked"}, headers=admin.headers)
    assert approved.status_code == 200 and "fwc_" not in approved.get_data(as_text=True)
    assert approved.get_json()["agency_id"] == str(supervisor.agency_id)
    [message] = mail_to(app, receipt["email"])
    secret = secret_in(message)
    assert message["Subject"] == "Your FaceWarden account: claim it"
    assert message["From"] == runtime_of(app).settings.mail_from
    assert f"{path}/claim" in message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    early_shown = client.get(path, headers=supervisor.headers).get_data(as_text=True)
    assert secret not in early_shown
    issued = claim(client, path, secret)
    me = client.get("/v1/accounts/me", headers={"Authorization": f"Bearer {issued['api_key']}"})
    assert me.get_json()["role"] == "investigator"
    assert me.get_json()["agency_id"] == str(supervisor.agency_id)
    assert ledger_types(app, after=before - 1) == [
        "account:request",
        "account:approve",
        "credential:issue",
        "account:claim",
    ]
    request_entry, approve, _, claimed = ledger_payloads(app, after=before - 1)
    person_ref = runtime_of(app).keys.keyed("person", receipt["email"].casefold())
    assert request_entry["person"] == approve["person"] == claimed["person"] == person_ref
    assert approve["requested_by"] == str(supervisor.account_id)
    replay = client.post(f"{path}/claim", json={"claim_secret": secret})
    assert problem(replay, 409)["type"] == "/problems/already-claimed"


def test_rejection_is_final_and_mails_no_secret(
    app: Flask, client: FlaskClient, admin: Agent, supervisor: Agent
) -> None:
    receipt = _request(client, supervisor, "supervisor")
    path = f"/v1/account-requests/{receipt['id']}"
    assert decide(client, admin, path, "reject")["status"] == "rejected"
    again = client.post(f"{path}/approve", json={"reason": "changed mind"}, headers=admin.headers)
    problem(again, 409)
    assert mail_to(app, receipt["email"]) == []


def test_an_unknown_claim_and_a_wrong_secret_answer_alike(
    client: FlaskClient, admin: Agent, supervisor: Agent
) -> None:
    receipt = _request(client, supervisor)
    path = f"/v1/account-requests/{receipt['id']}"
    decide(client, admin, path, "approve")
    guess = {"claim_secret": "fwc_" + "a" * 52}
    wrong = problem(client.post(f"{path}/claim", json=guess), 403)
    nobody = "/v1/account-requests/00000000-0000-4000-8000-000000000009"
    unknown = problem(client.post(f"{nobody}/claim", json=guess), 403)
    assert wrong["type"] == unknown["type"] == "/problems/wrong-claim-secret"
    assert wrong["title"] == unknown["title"] and wrong["detail"] == unknown["detail"]
    assert set(wrong) == set(unknown)


def test_a_claim_secret_expires_and_an_admin_resends_a_new_one(
    app: Flask, client: FlaskClient, admin: Agent, supervisor: Agent
) -> None:
    receipt = _request(client, supervisor)
    path = f"/v1/account-requests/{receipt['id']}"
    decide(client, admin, path, "approve")
    old = mailed_secret(client, receipt["email"])
    rt = runtime_of(app)
    real = rt.clock
    ttl = timedelta(days=rt.settings.claim_ttl_days)
    rt.clock = lambda: real() + ttl + timedelta(seconds=1)
    try:
        expired = client.post(f"{path}/claim", json={"claim_secret": old})
        assert problem(expired, 409)["type"] == "/problems/claim-expired"
        before = ledger_size(app)
        resent = client.post(f"{path}/resend", headers=admin.headers)
        assert resent.status_code == 200 and "fwc_" not in resent.get_data(as_text=True)
        assert ledger_types(app, after=before - 1) == ["claim:reissue"]
        new = mailed_secret(client, receipt["email"])
        assert new != old and len(mail_to(app, receipt["email"])) == 2
        stale = client.post(f"{path}/claim", json={"claim_secret": old})
        assert problem(stale, 403)["type"] == "/problems/wrong-claim-secret"
        claim(client, path, new)
    finally:
        rt.clock = real
    problem(client.post(f"{path}/resend", headers=admin.headers), 409)


def test_one_person_holds_one_account_per_agency(
    client: FlaskClient, admin: Agent, supervisor: Agent
) -> None:
    someone = person()
    first = _request(client, supervisor, "investigator", someone)
    # The same person, the address typed in another case: a second request still waits.
    twin = dict(someone, email=someone["email"].upper())
    second = _request(client, supervisor, "supervisor", twin)
    decide(client, admin, f"/v1/account-requests/{first['id']}", "approve")
    refused = client.post(
        f"/v1/account-requests/{second['id']}/approve",
        json={"reason": "checked"},
        headers=admin.headers,
    )
    body = problem(refused, 409)
    assert body["type"] == "/problems/person-has-account"
    assert body["title"] == "The person already holds an active account in this agency"
    shown = client.get(f"/v1/account-requests/{second['id']}", headers=admin.headers)
    assert shown.get_json()["status"] == "pending"  # the refused approval rolled back
    again = client.post(
        "/v1/account-requests",
        json={"role": "supervisor", "person": someone},
        headers=supervisor.headers,
    )
    assert problem(again, 409)["type"] == "/problems/person-has-account"
    # Another agency may have the same person (a liaison officer, say).
    other = make_agency(client, admin)
    elsewhere = _request(client, other, "investigator", someone)
    decide(client, admin, f"/v1/account-requests/{elsewhere['id']}", "approve")


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
    assert two_admins(client, admin, "agency:suspend", boss.agency_id)["status"] == "confirmed"
    refused = client.post(
        f"/v1/account-requests/{receipt['id']}/approve",
        json={"reason": "looks fine"},
        headers=admin.headers,
    )
    assert problem(refused, 409)["type"] == "/problems/agency-suspended"
