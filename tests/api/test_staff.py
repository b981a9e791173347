"""Staff accounts: oversight and curator, created by admins, claimed by the person."""

from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.api.helpers import (
    Agent,
    ledger_size,
    ledger_types,
    make_admin,
    make_staff,
    person,
    problem,
)


@pytest.fixture(scope="module")
def admin(app: Flask) -> Agent:
    return make_admin(app)


@pytest.mark.parametrize(
    ("role", "entries"),
    [
        # proposed by one admin, approved by a second (created from the command line)
        ("oversight", ["account:request", "admin:create", "credential:issue", "oversight:create"]),
        ("curator", ["curator:create"]),
    ],
)
def test_staff_are_created_and_claimed_by_the_person(
    app: Flask, client: FlaskClient, admin: Agent, role: str, entries: list[str]
) -> None:
    before = ledger_size(app)
    staff = make_staff(client, admin, role)
    claimed = ["credential:issue", "account:claim"]
    assert ledger_types(app, after=before - 1) == entries + claimed
    me = client.get("/v1/accounts/me", headers=staff.headers).get_json()
    assert me["role"] == role and me["agency_id"] is None


@pytest.mark.parametrize("role", ["admin", "supervisor", "investigator", ""])
def test_only_staff_roles(client: FlaskClient, admin: Agent, role: str) -> None:
    response = client.post(
        "/v1/staff", json={"role": role, "person": person()}, headers=admin.headers
    )
    assert problem(response, 422)["errors"][0]["field"] == "role"


def test_oversight_reads_everything_and_changes_nothing(client: FlaskClient, admin: Agent) -> None:
    oversight = make_staff(client, admin, "oversight")
    assert client.get("/v1/agencies", headers=oversight.headers).status_code == 200
    assert client.get("/v1/accounts", headers=oversight.headers).status_code == 200
    response = client.post(
        f"/v1/accounts/{admin.account_id}/suspend",
        json={"reason": "curious"},
        headers=oversight.headers,
    )
    problem(response, 403)
