"""The administrators' console pages: the review queue, agencies, accounts and proposals."""

from __future__ import annotations

from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from tests.api.helpers import (
    Agent,
    mail_to,
    make_account,
    make_admin,
    make_agency,
    make_staff,
    person,
    registration_body,
    submit,
)
from tests.console.conftest import Visitor, signed_in

QUEUE = "/console/admin/queue"
AGENCIES = "/console/admin/agencies"
ACCOUNTS = "/console/admin/accounts"
PROPOSALS = "/console/admin/proposals"
REASON = "Checked with the ministry's register of police units."


def page_with(visitor: Visitor, path: str, marker: str, param: str = "offset") -> str:
    """The page of a paged listing whose HTML holds ``marker`` (other tests add rows)."""
    offset = 0
    while True:
        answer = visitor.get(f"{path}?{param}={offset}")
        assert answer.status_code == 200, answer.get_data(as_text=True)
        html = answer.get_data(as_text=True)
        if marker in html:
            return html
        assert "Next page" in html, f"{marker} is on no page of {path}"
        offset += 50


def api(client: FlaskClient, agent: Agent, path: str) -> dict[str, Any]:
    answer = client.get(path, headers=agent.headers)
    assert answer.status_code == 200, answer.get_json()
    data: dict[str, Any] = answer.get_json()
    return data


def request_account(client: FlaskClient, supervisor: Agent, **who: Any) -> tuple[str, str]:
    """A pending account request of the supervisor's agency: its id and the person's e-mail."""
    someone = person(**who)
    answer = client.post(
        "/v1/account-requests",
        json={"role": "investigator", "person": someone},
        headers=supervisor.headers,
    )
    assert answer.status_code == 202, answer.get_json()
    return answer.get_json()["id"], someone["email"]


# The review queue ---------------------------------------------------------------------------


def test_an_admin_sees_a_registration_and_approves_it_with_a_reason(
    app: Flask, client: FlaskClient
) -> None:
    body = registration_body()
    receipt = submit(client, body)
    admin = make_admin(app)
    visitor = signed_in(app, admin)

    html = page_with(visitor, QUEUE, body["agency"]["name"], "registrations_offset")
    assert body["contact"]["email"] in html
    assert body["contact"]["job_title"] in html
    assert body["intended_use"] in html
    answer = visitor.post(
        f"/console/admin/registrations/{receipt['id']}/decide",
        {"verdict": "approve", "reason": REASON},
    )

    assert answer.status_code == 303
    assert answer.headers["Location"] == f"{QUEUE}?done=registration-approved"
    notice = visitor.get(answer.headers["Location"]).get_data(as_text=True)
    assert "The registration is approved." in notice
    decided = api(client, admin, f"/v1/registrations/{receipt['id']}")
    assert decided["status"] == "approved"
    assert decided["decision_reason"] == REASON
    assert len(mail_to(app, body["contact"]["email"])) == 1  # the claim letter


def test_a_decision_without_a_reason_is_refused_beside_the_field(
    app: Flask, client: FlaskClient
) -> None:
    receipt = submit(client)
    admin = make_admin(app)
    visitor = signed_in(app, admin)

    answer = visitor.post(
        f"/console/admin/registrations/{receipt['id']}/decide",
        {"verdict": "reject", "reason": "  "},
    )

    assert answer.status_code == 422
    html = answer.get_data(as_text=True)
    assert "The decision was not taken: Give a reason" in html
    assert api(client, admin, f"/v1/registrations/{receipt['id']}")["status"] == "pending"


def test_an_admin_rejects_an_account_request(app: Flask, client: FlaskClient) -> None:
    admin = make_admin(app)
    supervisor = make_agency(client, admin)
    request_id, email = request_account(client, supervisor)
    visitor = signed_in(app, admin)

    html = page_with(visitor, QUEUE, email, "requests_offset")
    field = f'id="reason-{request_id}"'
    assert field in html
    answer = visitor.post(
        f"/console/admin/account-requests/{request_id}/decide",
        {"verdict": "reject", "reason": "The person left the unit."},
    )

    assert answer.status_code == 303
    assert answer.headers["Location"] == f"{QUEUE}?done=request-rejected"
    decided = api(client, admin, f"/v1/account-requests/{request_id}")
    assert decided["status"] == "rejected"
    assert decided["decision_reason"] == "The person left the unit."
    assert mail_to(app, email) == []


def test_an_oversight_account_needs_an_administrator_other_than_its_proposer(
    app: Flask, client: FlaskClient
) -> None:
    admin = make_admin(app)
    someone = person()
    proposed = client.post(
        "/v1/staff",
        json={"role": "oversight", "person": someone, "reason": "named by the statute"},
        headers=admin.headers,
    )
    assert proposed.status_code == 201, proposed.get_json()
    request_id = proposed.get_json()["id"]
    visitor = signed_in(app, admin)

    html = page_with(visitor, QUEUE, someone["email"], "requests_offset")
    assert "You requested this account; another administrator must decide it." in html
    refused = visitor.post(
        f"/console/admin/account-requests/{request_id}/decide",
        {"verdict": "approve", "reason": "I approve my own"},
    )
    assert refused.status_code == 403
    assert "other than the requester" in refused.get_data(as_text=True)
    assert api(client, admin, f"/v1/account-requests/{request_id}")["status"] == "pending"

    second = signed_in(app, make_admin(app))
    approved = second.post(
        f"/console/admin/account-requests/{request_id}/decide",
        {"verdict": "approve", "reason": "The statute names this body."},
    )
    assert approved.status_code == 303
    assert api(client, admin, f"/v1/account-requests/{request_id}")["status"] == "approved"


def test_the_queue_is_for_administrators_only(app: Flask, client: FlaskClient) -> None:
    admin = make_admin(app)
    supervisor = make_agency(client, admin)
    receipt = submit(client)
    visitor = signed_in(app, supervisor)

    assert visitor.get(QUEUE).status_code == 403
    refused = visitor.post(
        f"/console/admin/registrations/{receipt['id']}/decide",
        {"verdict": "approve", "reason": REASON},
    )
    assert refused.status_code == 403
    assert "<h1>Forbidden</h1>" in refused.get_data(as_text=True)
    assert api(client, admin, f"/v1/registrations/{receipt['id']}")["status"] == "pending"
    assert 'href="/console/admin/queue"' not in visitor.get("/console/").get_data(as_text=True)


# Agencies and proposals ---------------------------------------------------------------------


def test_suspending_an_agency_takes_a_second_administrator(app: Flask, client: FlaskClient) -> None:
    admin = make_admin(app)
    supervisor = make_agency(client, admin)
    agency = f"/v1/agencies/{supervisor.agency_id}"
    first = signed_in(app, admin)

    answer = first.post(
        f"{AGENCIES}/{supervisor.agency_id}/suspend", {"reason": "Searches outside any case."}
    )

    assert answer.status_code == 303
    assert answer.headers["Location"] == f"{AGENCIES}?done=agency-proposed"
    assert api(client, admin, agency)["status"] == "active"  # not yet
    html = page_with(first, AGENCIES, f'id="agency-{supervisor.agency_id}"')
    section = html.split(f'id="agency-{supervisor.agency_id}"')[1].split("</section>")[0]
    assert "Suspension waiting for a second administrator." in section
    assert "You proposed this; another administrator must confirm it." in section
    pending = api(client, admin, "/v1/proposals?status=pending&limit=100&offset=0")
    (proposal,) = [p for p in pending["items"] if p["target_id"] == str(supervisor.agency_id)]
    proposals = page_with(first, PROPOSALS, f'id="proposal-{proposal["id"]}"')
    mine = proposals.split(f'id="proposal-{proposal["id"]}"')[1].split("</section>")[0]
    assert "You proposed this; another administrator must confirm it." in mine
    assert "Confirm and carry it out" not in mine

    # The proposer cannot confirm it, even by posting the form.
    own = first.post(
        f"{PROPOSALS}/{proposal['id']}/decide", {"verdict": "confirm", "reason": "confirming"}
    )
    assert own.status_code == 403
    assert "other than the proposer" in own.get_data(as_text=True)
    assert api(client, admin, agency)["status"] == "active"

    second = signed_in(app, make_admin(app))
    theirs = page_with(second, PROPOSALS, f'id="proposal-{proposal["id"]}"')
    assert f'id="reason-{proposal["id"]}"' in theirs
    confirmed = second.post(
        f"{PROPOSALS}/{proposal['id']}/decide",
        {"verdict": "confirm", "reason": "The audit confirms the misuse."},
    )
    assert confirmed.status_code == 303
    assert confirmed.headers["Location"] == f"{PROPOSALS}?done=proposal-confirmed"
    assert api(client, admin, agency)["status"] == "suspended"
    assert client.get("/v1/accounts/me", headers=supervisor.headers).status_code == 403

    reinstated = second.post(
        f"{AGENCIES}/{supervisor.agency_id}/reinstate", {"reason": "The audit is closed."}
    )
    assert reinstated.status_code == 303
    assert api(client, admin, agency)["status"] == "active"


def test_a_second_administrator_may_reject_a_proposal(app: Flask, client: FlaskClient) -> None:
    admin = make_admin(app)
    supervisor = make_agency(client, admin)
    signed_in(app, admin).post(
        f"{AGENCIES}/{supervisor.agency_id}/suspend", {"reason": "A hunch, no evidence."}
    )
    pending = api(client, admin, "/v1/proposals?status=pending&limit=100&offset=0")
    (proposal,) = [p for p in pending["items"] if p["target_id"] == str(supervisor.agency_id)]
    second = signed_in(app, make_admin(app))

    answer = second.post(
        f"{PROPOSALS}/{proposal['id']}/decide", {"verdict": "reject", "reason": "No evidence."}
    )

    assert answer.status_code == 303
    assert api(client, admin, f"/v1/proposals/{proposal['id']}")["status"] == "rejected"
    assert api(client, admin, f"/v1/agencies/{supervisor.agency_id}")["status"] == "active"


def test_an_agency_suspension_without_a_reason_proposes_nothing(
    app: Flask, client: FlaskClient
) -> None:
    admin = make_admin(app)
    supervisor = make_agency(client, admin)
    visitor = signed_in(app, admin)

    answer = visitor.post(f"{AGENCIES}/{supervisor.agency_id}/suspend", {"reason": ""})

    assert answer.status_code == 422
    html = answer.get_data(as_text=True)
    assert "The decision was not taken: Give a reason" in html
    pending = api(client, admin, "/v1/proposals?status=pending&limit=100&offset=0")
    assert not [p for p in pending["items"] if p["target_id"] == str(supervisor.agency_id)]


def test_agency_pages_refuse_people_without_the_permission(app: Flask, client: FlaskClient) -> None:
    admin = make_admin(app)
    supervisor = make_agency(client, admin)
    visitor = signed_in(app, supervisor)

    own = visitor.get(AGENCIES)  # agency:read: the supervisor's own agency, without forms
    assert own.status_code == 200
    assert "Propose to suspend" not in own.get_data(as_text=True)
    assert (
        visitor.post(f"{AGENCIES}/{supervisor.agency_id}/suspend", {"reason": "x" * 10}).status_code
        == 403
    )
    assert visitor.get(PROPOSALS).status_code == 403


# Accounts -----------------------------------------------------------------------------------


def test_an_admin_suspends_and_reinstates_an_account(app: Flask, client: FlaskClient) -> None:
    admin = make_admin(app)
    supervisor = make_agency(client, admin)
    investigator = make_account(client, admin, supervisor, "investigator")
    visitor = signed_in(app, admin)
    assert f'id="account-{investigator.account_id}"' in page_with(
        visitor, ACCOUNTS, f'id="account-{investigator.account_id}"'
    )

    answer = visitor.post(
        f"{ACCOUNTS}/{investigator.account_id}/suspend", {"reason": "Lost the badge."}
    )

    assert answer.status_code == 303
    assert answer.headers["Location"] == f"{ACCOUNTS}?done=account-suspended"
    account = api(client, admin, f"/v1/accounts/{investigator.account_id}")
    assert account["status"] == "suspended"
    assert account["status_reason"] == "Lost the badge."
    assert client.get("/v1/accounts/me", headers=investigator.headers).status_code == 403

    back = visitor.post(f"{ACCOUNTS}/{investigator.account_id}/reinstate", {"reason": "Found."})
    assert back.status_code == 303
    assert api(client, admin, f"/v1/accounts/{investigator.account_id}")["status"] == "active"


def test_an_oversight_account_is_suspended_only_by_a_proposal(
    app: Flask, client: FlaskClient
) -> None:
    admin = make_admin(app)
    oversight = make_staff(client, admin, "oversight")
    visitor = signed_in(app, admin)

    direct = visitor.post(f"{ACCOUNTS}/{oversight.account_id}/suspend", {"reason": "Too nosy."})
    assert direct.status_code == 403
    assert "needs two administrators" in direct.get_data(as_text=True)
    assert api(client, admin, f"/v1/accounts/{oversight.account_id}")["status"] == "active"

    proposed = visitor.post(
        f"{ACCOUNTS}/{oversight.account_id}/propose-suspension", {"reason": "Key leaked."}
    )
    assert proposed.status_code == 303
    html = page_with(visitor, ACCOUNTS, f'id="account-{oversight.account_id}"')
    row = html.split(f'id="account-{oversight.account_id}"')[1].split("</tr>")[0]
    assert "You proposed this; another administrator must confirm it." in row
    assert api(client, admin, f"/v1/accounts/{oversight.account_id}")["status"] == "active"


def test_only_administrators_suspend_accounts(app: Flask, client: FlaskClient) -> None:
    admin = make_admin(app)
    supervisor = make_agency(client, admin)
    investigator = make_account(client, admin, supervisor, "investigator")
    visitor = signed_in(app, supervisor)

    refused = visitor.post(f"{ACCOUNTS}/{investigator.account_id}/suspend", {"reason": "Bye."})

    assert refused.status_code == 403
    assert api(client, admin, f"/v1/accounts/{investigator.account_id}")["status"] == "active"
    listing = visitor.get(ACCOUNTS)  # account:read, the agency's own, without forms
    assert listing.status_code == 200
    html = listing.get_data(as_text=True)
    assert f'id="account-{investigator.account_id}"' in html
    assert "Reason for suspending" not in html
    # The supervisor's navigation leads there (an investigator's does not).
    assert f'href="{ACCOUNTS}"' in html
    mine = signed_in(app, investigator).get("/console/").get_data(as_text=True)
    assert f'href="{ACCOUNTS}"' not in mine
