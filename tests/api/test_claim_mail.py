"""Claim secrets reach their person over real SMTP, and an SMTP outage never loses the act."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from governance.core.mail import Mailer, MailMessage, SmtpTransport, deliver, parse_smtp_url
from tests.api.helpers import (
    Agent,
    claim,
    decide,
    make_admin,
    make_agency,
    person,
    runtime_of,
    secret_in,
)
from tests.smtp import PASSWORD, USER, free_port, smtp_server


@pytest.fixture(scope="module")
def admin(app: Flask) -> Agent:
    return make_admin(app)


@pytest.fixture
def smtp_mailer(app: Flask) -> Iterator[None]:
    """Restore the app's mailer after a test swapped it for SMTP."""
    rt = runtime_of(app)
    saved = rt.mailer
    yield
    rt.mailer = saved


def _request(client: FlaskClient, supervisor: Agent) -> tuple[str, str]:
    someone = person()
    response = client.post(
        "/v1/account-requests",
        json={"role": "investigator", "person": someone},
        headers=supervisor.headers,
    )
    assert response.status_code == 202, response.get_json()
    return f"/v1/account-requests/{response.get_json()['id']}", someone["email"]


def test_the_person_reads_the_secret_from_smtp_and_claims(
    app: Flask, client: FlaskClient, admin: Agent, tmp_path: Path, smtp_mailer: None
) -> None:
    supervisor = make_agency(client, admin)
    path, address = _request(client, supervisor)
    rt = runtime_of(app)
    with smtp_server(tmp_path) as server:
        target = parse_smtp_url(f"smtp://{USER}@127.0.0.1:{server.port}")
        transport = SmtpTransport(target, password=PASSWORD, ca_file=server.ca_file)
        rt.mailer = Mailer(transport, rt.settings.mail_from)
        decide(client, admin, path, "approve")
        [message] = server.inbox.messages
        [(_, recipients)] = server.inbox.envelopes
    assert recipients == [address] and message["To"] == address
    issued = claim(client, path, secret_in(message))
    assert issued["api_key"].startswith("fw_")


def test_an_smtp_outage_keeps_the_act_and_the_message_for_a_retry(
    app: Flask, client: FlaskClient, admin: Agent, tmp_path: Path, smtp_mailer: None
) -> None:
    supervisor = make_agency(client, admin)
    path, address = _request(client, supervisor)
    rt = runtime_of(app)
    nowhere = parse_smtp_url(f"smtp://{USER}@127.0.0.1:{free_port()}")  # nobody listens
    rt.mailer = Mailer(SmtpTransport(nowhere, password=PASSWORD), rt.settings.mail_from)
    approved = client.post(f"{path}/approve", json={"reason": "checked"}, headers=admin.headers)
    assert approved.status_code == 200 and approved.get_json()["status"] == "approved"
    with rt.sessions() as session:
        row = session.scalars(select(MailMessage).where(MailMessage.recipient == address)).one()
        assert row.sent_at is None and row.attempts == 1 and row.last_error
    with smtp_server(tmp_path) as server:
        target = parse_smtp_url(f"smtp://{USER}@127.0.0.1:{server.port}")
        rt.mailer = Mailer(
            SmtpTransport(target, password=PASSWORD, ca_file=server.ca_file),
            rt.settings.mail_from,
        )
        deliver(rt.sessions, rt.mailer, clock=rt.clock)  # what `facewarden mail deliver` runs
        [message] = [m for m in server.inbox.messages if m["To"] == address]
    claim(client, path, secret_in(message))
