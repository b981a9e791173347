"""The supervisors' console pages: legal bases to approve or ratify, and account requests."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from api.console.agency import time_left
from tests.api.bases import Team, create, now_of, read, shift_clock
from tests.api.helpers import make_admin, make_agency, person
from tests.console.conftest import signed_in

BASES = "/console/agency/legal-bases"
REQUESTS = "/console/agency/account-requests"
REASON = "The warrant covers the comparison; the justification is sufficient."


@pytest.fixture
def offset(app: Flask) -> Iterator[list[timedelta]]:
    """Append a timedelta to move the app's clock on."""
    yield from shift_clock(app)


def section(html: str, element_id: str) -> str:
    """The HTML of the <section> whose heading has ``element_id``."""
    assert f'id="{element_id}"' in html, element_id
    return html.split(f'id="{element_id}"')[1].split("</section>", maxsplit=1)[0]


def local(when: datetime) -> str:
    """A moment as a datetime-local field holds it (UTC)."""
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")


@pytest.mark.parametrize(
    ("left", "said"),
    [
        (timedelta(hours=3, minutes=20, seconds=59), "3 h 20 min left"),
        (timedelta(minutes=7), "7 min left"),
        (timedelta(days=1, hours=23, minutes=59), "1 d 23 h left"),
        (timedelta(0), "the deadline has passed"),
        (timedelta(minutes=-5), "the deadline has passed"),
    ],
)
def test_time_left_is_said_in_days_hours_and_minutes(left: timedelta, said: str) -> None:
    now = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
    assert time_left(now + left, now) == said


def test_a_supervisor_approves_a_basis_an_investigator_wrote(
    app: Flask, client: FlaskClient, team: Team
) -> None:
    basis = create(client, app, team.inv, case_number="PJ-LYON-2026-00901")
    visitor = signed_in(app, team.sup)

    html = visitor.get(BASES).get_data(as_text=True)
    shown = section(html, f"basis-{basis['id']}")
    assert "PJ-LYON-2026-00901" in shown
    assert basis["justification"] in shown
    assert "JLD-2026-1187" in shown  # the authorisation's reference
    assert f'id="reason-{basis["id"]}"' in shown
    answer = visitor.post(f"{BASES}/{basis['id']}/decide", {"verdict": "approve", "reason": REASON})

    assert answer.status_code == 303
    assert answer.headers["Location"] == f"{BASES}?done=approved"
    decided = read(client, team.sup, basis)
    assert decided["status"] == "approved"
    assert decided["decision"]["reason"] == REASON
    assert decided["decision"]["by"] == str(team.sup.account_id)


def test_the_author_of_a_basis_cannot_approve_it(
    app: Flask, client: FlaskClient, team: Team
) -> None:
    basis = create(client, app, team.sup, case_number="PJ-LYON-2026-00902")
    author = signed_in(app, team.sup)

    shown = section(author.get(BASES).get_data(as_text=True), f"basis-{basis['id']}")
    assert "You wrote this; another supervisor must approve it." in shown
    assert f'id="reason-{basis["id"]}"' not in shown
    refused = author.post(f"{BASES}/{basis['id']}/decide", {"verdict": "approve", "reason": REASON})
    assert refused.status_code == 403
    assert read(client, team.sup, basis)["status"] == "pending"

    other = signed_in(app, team.sup2)
    approved = other.post(f"{BASES}/{basis['id']}/decide", {"verdict": "approve", "reason": REASON})
    assert approved.status_code == 303
    assert read(client, team.sup, basis)["status"] == "approved"


def test_a_decision_on_a_basis_needs_a_reason(app: Flask, client: FlaskClient, team: Team) -> None:
    basis = create(client, app, team.inv)
    visitor = signed_in(app, team.sup)

    answer = visitor.post(f"{BASES}/{basis['id']}/decide", {"verdict": "reject", "reason": ""})

    assert answer.status_code == 422
    shown = section(answer.get_data(as_text=True), f"basis-{basis['id']}")
    assert f'aria-describedby="reason-{basis["id"]}-error"' in shown
    assert 'aria-invalid="true"' in shown
    assert read(client, team.sup, basis)["status"] == "pending"


def test_people_without_the_permission_are_refused(
    app: Flask, client: FlaskClient, team: Team
) -> None:
    basis = create(client, app, team.inv)
    investigator = signed_in(app, team.inv)

    refused = investigator.post(
        f"{BASES}/{basis['id']}/decide", {"verdict": "approve", "reason": REASON}
    )

    assert refused.status_code == 403
    assert read(client, team.sup, basis)["status"] == "pending"
    page = investigator.get(BASES)  # legal_basis:read, without the forms
    assert page.status_code == 200
    assert f'id="reason-{basis["id"]}"' not in page.get_data(as_text=True)
    assert signed_in(app, team.admin).get(BASES).status_code == 403
    assert investigator.get(REQUESTS).status_code == 403


def test_an_urgent_basis_shows_its_deadline_and_is_ratified(
    app: Flask, client: FlaskClient, team: Team, offset: list[timedelta]
) -> None:
    basis = create(client, app, team.inv, kind="urgent", case_number="PJ-LYON-2026-00903")
    deadline = datetime.fromisoformat(basis["ratification_deadline"])
    visitor = signed_in(app, team.sup)

    shown = section(visitor.get(BASES).get_data(as_text=True), f"urgent-{basis['id']}")
    assert f'Ratify before <time datetime="{deadline.isoformat()}">' in shown
    assert deadline.strftime("%Y-%m-%d %H:%M UTC") in shown
    left = re.search(r"</time>: (\d+ d \d+ h left|\d+ h \d+ min left)\.", shown)
    assert left is not None, shown
    assert left.group(1) in {
        time_left(deadline, now_of(app) - timedelta(minutes=m)) for m in range(3)
    }

    now = now_of(app)
    missing = visitor.post(
        f"{BASES}/{basis['id']}/ratification",
        {"outcome": "granted", "authority": "Tribunal judiciaire de Lyon"},
    )
    assert missing.status_code == 422
    form = section(missing.get_data(as_text=True), f"urgent-{basis['id']}")
    assert f'id="ratify-reference-{basis["id"]}-error"' in form
    assert read(client, team.sup, basis)["ratification"]["outcome"] is None

    fields: dict[str, Any] = {
        "outcome": "granted",
        "reference": "JLD-2026-2044",
        "authority": "Tribunal judiciaire de Lyon",
        "issued_at": local(now + timedelta(minutes=1)),  # signed after the basis was recorded
        "expires_at": local(now + timedelta(days=2)),
    }
    offset.append(timedelta(minutes=2))  # the ratification comes a little later
    answer = visitor.post(f"{BASES}/{basis['id']}/ratification", fields)
    assert answer.status_code == 303, answer.get_data(as_text=True)
    assert answer.headers["Location"] == f"{BASES}?done=ratified"
    ratified = read(client, team.sup, basis)
    assert ratified["ratification"]["outcome"] == "granted"
    assert ratified["authorisation"]["reference"] == "JLD-2026-2044"


def test_the_author_of_an_urgent_basis_cannot_ratify_it(
    app: Flask, client: FlaskClient, team: Team
) -> None:
    basis = create(client, app, team.sup, kind="urgent")
    author = signed_in(app, team.sup)

    shown = section(author.get(BASES).get_data(as_text=True), f"urgent-{basis['id']}")
    assert "You wrote this; another supervisor must record its ratification." in shown
    refused = author.post(
        f"{BASES}/{basis['id']}/ratification", {"outcome": "refused", "reason": "Not signed."}
    )
    assert refused.status_code == 403
    assert read(client, team.sup, basis)["status"] == "pending"


# Account requests ---------------------------------------------------------------------------


def test_a_supervisor_requests_an_account_and_sees_it_listed(
    app: Flask, client: FlaskClient
) -> None:
    admin = make_admin(app)
    supervisor = make_agency(client, admin)
    visitor = signed_in(app, supervisor)
    someone = person(first_name="Karim", last_name="Benali", job_title="Brigadier-chef")

    answer = visitor.post(REQUESTS, {"role": "investigator", **someone})

    assert answer.status_code == 303
    assert answer.headers["Location"] == f"{REQUESTS}?done=requested"
    listed = client.get("/v1/account-requests?status=pending", headers=supervisor.headers)
    (request,) = listed.get_json()["items"]
    assert request["role"] == "investigator"
    assert request["person"]["email"] == someone["email"]
    assert request["requested_by"] == str(supervisor.account_id)
    page = visitor.get(answer.headers["Location"]).get_data(as_text=True)
    assert "The account request is sent." in page
    row = page.split(f'id="request-{request["id"]}"')[1].split("</tr>")[0]
    assert "Karim Benali" in row
    assert "pending" in row


def test_a_bad_account_request_is_shown_beside_its_fields(app: Flask, client: FlaskClient) -> None:
    supervisor = make_agency(client, make_admin(app))
    visitor = signed_in(app, supervisor)

    answer = visitor.post(REQUESTS, {"role": "admin", **person(email="not an address")})

    assert answer.status_code == 422
    html = answer.get_data(as_text=True)
    assert 'aria-describedby="email-error"' in html
    assert 'aria-describedby="role-error"' in html
    assert 'value="not an address"' in html  # kept for correction
    listed = client.get("/v1/account-requests", headers=supervisor.headers).get_json()
    assert listed["items"] == []
