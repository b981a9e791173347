"""One person is one person: a second account of theirs is no second pair of eyes."""

from __future__ import annotations

from flask import Flask
from flask.testing import FlaskClient

from tests.api.bases import act, create
from tests.api.helpers import decide, make_account, make_admin, make_agency, person, problem


def test_the_author_of_a_basis_cannot_approve_it_from_another_account(
    app: Flask, client: FlaskClient
) -> None:
    admin = make_admin(app)
    supervisor = make_agency(client, admin)
    someone = person()
    author = make_account(client, admin, supervisor, "investigator", someone)
    basis = create(client, app, author)
    # The same person, their first account suspended, is given a supervisor account.
    decide(client, admin, f"/v1/accounts/{author.account_id}", "suspend")
    again = make_account(client, admin, supervisor, "supervisor", someone)
    refused = problem(act(client, again, basis, "approve"), 403)
    assert refused["type"] == "/problems/four-eyes-required"
    assert refused["title"] == "A second person must take this decision"
    # A reinstatement would give the person two active accounts in the agency.
    twice = client.post(
        f"/v1/accounts/{author.account_id}/reinstate",
        json={"reason": "cleared"},
        headers=admin.headers,
    )
    assert problem(twice, 409)["type"] == "/problems/person-has-account"
    assert act(client, supervisor, basis, "approve").status_code == 200  # a real second person
