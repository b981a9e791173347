"""A console visitor for the Flask test client: cookies over HTTPS, the CSRF token sent back,
and a software passkey authenticator."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from api.console.security import CSRF_COOKIE, SESSION_COOKIE
from tests.api.bases import Team, make_team
from tests.api.helpers import (
    Agent,
    decide,
    fresh_address,
    mail_to,
    make_admin,
    make_staff,
    registration_body,
    runtime_of,
    secret_in,
    submit,
)
from tests.console.authenticator import Authenticator

BASE = "https://localhost:8443"
_LINK = re.compile(r"Console link: (\S+)")


@pytest.fixture(scope="module")
def team(app: Flask) -> Team:
    """Two agencies, their supervisors and an investigator, an admin and oversight."""
    return make_team(app)


@pytest.fixture(scope="module")
def curator_agent(app: Flask, team: Team) -> Agent:
    return make_staff(app.test_client(), team.admin, "curator")


@dataclass
class Visitor:
    """One person's browser: a cookie jar, an address and a passkey authenticator."""

    client: FlaskClient
    authenticator: Authenticator = field(default_factory=lambda: Authenticator(BASE))
    address: str = field(default_factory=fresh_address)

    def get(self, path: str, **kw: Any) -> TestResponse:
        return self.client.get(
            path, base_url=BASE, environ_base={"REMOTE_ADDR": self.address}, **kw
        )

    def post(self, path: str, data: dict[str, Any] | None = None, **kw: Any) -> TestResponse:
        """A form post carrying the CSRF token (fetch it with a page first)."""
        form = {"csrf_token": self.csrf, **(data or {})}
        return self.client.post(
            path, data=form, base_url=BASE, environ_base={"REMOTE_ADDR": self.address}, **kw
        )

    @property
    def csrf(self) -> str:
        cookie = self.client.get_cookie(CSRF_COOKIE, domain="localhost")
        if cookie is None:
            self.get("/console/")
            cookie = self.client.get_cookie(CSRF_COOKIE, domain="localhost")
        assert cookie is not None
        return cookie.value

    @property
    def session_cookie(self) -> str | None:
        cookie = self.client.get_cookie(SESSION_COOKIE, domain="localhost")
        return cookie.value if cookie else None

    def claim(self, link: str, secret: str, *, label: str = "laptop") -> TestResponse:
        """Claim through the console link: options, the authenticator's answer, the form."""
        path = link.removeprefix(BASE)
        started = self.post(f"{path}/options", {"claim_secret": secret})
        assert started.status_code == 200, started.get_data(as_text=True)
        answer = self.authenticator.create(started.get_json()["options"])
        return self.post(
            path,
            {
                "claim_secret": secret,
                "label": label,
                "ceremony": started.get_json()["ceremony"],
                "response": answer,
            },
        )

    def sign_in(self, **kw: Any) -> TestResponse:
        started = self.post("/console/sign-in/options")
        assert started.status_code == 200, started.get_data(as_text=True)
        answer = self.authenticator.get(started.get_json()["options"], **kw)
        return self.post(
            "/console/sign-in",
            {"ceremony": started.get_json()["ceremony"], "response": answer},
        )


@dataclass(frozen=True)
class Claimable:
    """An approved registration: its console link and claim secret, and who approved it."""

    link: str
    secret: str
    admin: Agent
    registration_id: UUID
    account_id: UUID
    agency_id: UUID
    email: str


def approved_registration(client: FlaskClient) -> Claimable:
    body = registration_body()
    receipt = submit(client, body)
    admin = make_admin(client.application)
    approved = decide(client, admin, f"/v1/registrations/{receipt['id']}", "approve")
    email = body["contact"]["email"]
    message = mail_to(client.application, email)[-1]
    text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    match = _LINK.search(text)
    assert match is not None, text
    return Claimable(
        link=match.group(1),
        secret=secret_in(message),
        admin=admin,
        registration_id=UUID(receipt["id"]),
        account_id=UUID(approved["account_id"]),
        agency_id=UUID(approved["agency_id"]),
        email=email,
    )


@pytest.fixture
def visitor(app: Flask) -> Visitor:
    assert runtime_of(app).settings.public_url == BASE
    return Visitor(app.test_client())


@pytest.fixture
def claimed(app: Flask, client: FlaskClient) -> tuple[Visitor, Claimable]:
    """A supervisor who claimed an agency's account through the console, signed in."""
    claimable = approved_registration(client)
    someone = Visitor(app.test_client())
    answer = someone.claim(claimable.link, claimable.secret)
    assert answer.status_code == 303, answer.get_data(as_text=True)
    return someone, claimable


def enrol_with_key(visitor: Visitor, agent: Agent, *, label: str = "laptop") -> TestResponse:
    """Enrol a passkey for ``agent``'s account with its API key, and sign in."""
    started = visitor.post("/console/enrol/options", {"api_key": agent.token})
    assert started.status_code == 200, started.get_data(as_text=True)
    answer = visitor.authenticator.create(started.get_json()["options"])
    return visitor.post(
        "/console/enrol",
        {
            "api_key": agent.token,
            "label": label,
            "ceremony": started.get_json()["ceremony"],
            "response": answer,
        },
    )


# The authenticator that holds each account's passkey: an API key enrols only the first one,
# so the next browser of the same account signs in with it.
_HELD: dict[UUID, Authenticator] = {}


def signed_in(app: Flask, agent: Agent) -> Visitor:
    """A browser signed in to the console as ``agent`` (any role), with a passkey of its own."""
    held = _HELD.get(agent.account_id)
    if held is not None:
        visitor = Visitor(app.test_client(), authenticator=held)
        answer = visitor.sign_in()
    else:
        visitor = Visitor(app.test_client())
        answer = enrol_with_key(visitor, agent)
        _HELD[agent.account_id] = visitor.authenticator
    assert answer.status_code == 303, answer.get_data(as_text=True)
    return visitor
