"""Reusable steps for API tests: an admin, an approved and claimed agency, an account of a role.

Everything but the first admin goes through HTTP, as a client would. Registrations are
rate-limited per client address, so each helper call comes from an address of its own. Claim
secrets are read where their person would read them: the mail delivered to their address (the
test app writes mail as ``.eml`` files into its outbox directory).
"""

from __future__ import annotations

import itertools
import re
import uuid
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any
from uuid import UUID

from flask import Flask
from flask.testing import FlaskClient

from api.context import EXTENSION, Runtime
from governance.identity.admin import create_admin

PROBLEM = "application/problem+json"
_addresses = itertools.count(1)
CLAIM_SECRET = re.compile(r"Claim secret: (fwc_[a-z2-7]{52})")


def fresh_address() -> str:
    """A client address no other test used (for per-address rate limits)."""
    n = next(_addresses)
    return f"10.{(n >> 16) & 255}.{(n >> 8) & 255}.{n & 255}"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def runtime_of(app: Flask) -> Runtime:
    """The runtime ``create_app`` built for ``app``."""
    value: Runtime = app.extensions[EXTENSION]
    return value


@dataclass(frozen=True, slots=True)
class Agent:
    """An account that can call the API."""

    account_id: UUID
    role: str
    agency_id: UUID | None
    token: str
    credential_id: UUID | None = None

    @property
    def headers(self) -> dict[str, str]:
        return bearer(self.token)


def person(**overrides: Any) -> dict[str, Any]:
    body = {
        "first_name": "Amélie",
        "last_name": "Durand-Leroy",
        "phone": "+33 1 42 68 53 00",
        "email": f"a.durand+{uuid.uuid4().hex[:8]}@interieur.gouv.fr",
        "job_title": "Commissaire",
    }
    body.update(overrides)
    return body


def registration_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "agency": {
            "name": f"Police judiciaire {uuid.uuid4().hex[:8]}",
            "kind": "police",
            "country": "FR",
            "jurisdiction": "Rhône",
        },
        "contact": person(),
        "intended_use": "Identify suspects in serious crime investigations under judicial warrant.",
    }
    body.update(overrides)
    return body


def make_admin(app: Flask) -> Agent:
    """A platform admin created the way ``facewarden admin create`` does."""
    rt = runtime_of(app)
    with rt.units()() as work:
        info, token = create_admin(
            work, email=f"admin-{uuid.uuid4().hex[:8]}@facewarden.example", name="Platform Admin"
        )
    return Agent(info.id, "admin", None, token, None)


def mail_to(app: Flask, address: str) -> list[EmailMessage]:
    """The messages delivered to ``address`` in the app's outbox, oldest first."""
    outbox = runtime_of(app).settings.mail_outbox_dir
    found = []
    for path in sorted(outbox.glob("*.eml")) if outbox.is_dir() else []:
        message = message_from_bytes(path.read_bytes(), policy=policy.default)
        assert isinstance(message, EmailMessage)
        if message["To"] == address:
            found.append(message)
    return found


def secret_in(message: EmailMessage) -> str:
    """The claim secret a message carries."""
    body = message.get_body(("plain",))
    assert body is not None
    match = CLAIM_SECRET.search(body.get_content())
    assert match is not None, body.get_content()
    return match.group(1)


def mailed_secret(client: FlaskClient, address: str) -> str:
    """The claim secret last mailed to ``address``."""
    messages = mail_to(client.application, address)
    assert messages, f"no mail to {address}"
    return secret_in(messages[-1])


def submit(client: FlaskClient, body: dict[str, Any] | None = None) -> dict[str, Any]:
    """Submit a registration from a fresh address; return the 202 body."""
    response = client.post(
        "/v1/registrations",
        json=body or registration_body(),
        environ_base={"REMOTE_ADDR": fresh_address()},
    )
    assert response.status_code == 202, response.get_json()
    data: dict[str, Any] = response.get_json()
    return data


def decide(client: FlaskClient, admin: Agent, path: str, verdict: str) -> dict[str, Any]:
    response = client.post(
        f"{path}/{verdict}", json={"reason": f"{verdict} after review"}, headers=admin.headers
    )
    assert response.status_code == 200, response.get_json()
    data: dict[str, Any] = response.get_json()
    return data


def claim(client: FlaskClient, path: str, secret: str) -> dict[str, Any]:
    response = client.post(
        f"{path}/claim",
        json={"claim_secret": secret},
        environ_base={"REMOTE_ADDR": fresh_address()},
    )
    assert response.status_code == 201, response.get_json()
    data: dict[str, Any] = response.get_json()
    return data


def make_agency(client: FlaskClient, admin: Agent) -> Agent:
    """Register, approve and claim an agency; return its first supervisor."""
    body = registration_body()
    receipt = submit(client, body)
    path = f"/v1/registrations/{receipt['id']}"
    approved = decide(client, admin, path, "approve")
    issued = claim(client, path, mailed_secret(client, body["contact"]["email"]))
    return Agent(
        UUID(approved["account_id"]),
        "supervisor",
        UUID(approved["agency_id"]),
        issued["api_key"],
        UUID(issued["credential"]["id"]),
    )


def make_account(
    client: FlaskClient,
    admin: Agent,
    supervisor: Agent,
    role: str,
    someone: dict[str, Any] | None = None,
) -> Agent:
    """Request, approve and claim an account of ``role`` in the supervisor's agency."""
    someone = someone or person()
    response = client.post(
        "/v1/account-requests",
        json={"role": role, "person": someone},
        headers=supervisor.headers,
    )
    assert response.status_code == 202, response.get_json()
    receipt = response.get_json()
    path = f"/v1/account-requests/{receipt['id']}"
    approved = decide(client, admin, path, "approve")
    issued = claim(client, path, mailed_secret(client, someone["email"]))
    return Agent(
        UUID(approved["account_id"]),
        role,
        supervisor.agency_id,
        issued["api_key"],
        UUID(issued["credential"]["id"]),
    )


def make_staff(client: FlaskClient, admin: Agent, role: str) -> Agent:
    """Create a curator, or an oversight account (proposed by ``admin``, approved by a second
    administrator), and claim its first key.
    """
    someone = person()
    body: dict[str, Any] = {"role": role, "person": someone}
    if role == "oversight":
        body["reason"] = "the oversight body named by the statute"
    response = client.post("/v1/staff", json=body, headers=admin.headers)
    assert response.status_code == 201, response.get_json()
    receipt = response.get_json()
    path = f"/v1/account-requests/{receipt['id']}"
    if role == "oversight":
        decide(client, make_admin(client.application), path, "approve")
    issued = claim(client, path, mailed_secret(client, someone["email"]))
    credential = issued["credential"]
    return Agent(
        UUID(credential["account_id"]), role, None, issued["api_key"], UUID(credential["id"])
    )


def two_admins(
    client: FlaskClient, admin: Agent, action: str, target_id: UUID | str, reason: str = "misuse"
) -> dict[str, Any]:
    """Have ``admin`` propose an act and a second administrator confirm it; return the
    confirmed proposal.
    """
    proposed = client.post(
        "/v1/proposals",
        json={"action": action, "target_id": str(target_id), "reason": reason},
        headers=admin.headers,
    )
    assert proposed.status_code == 201, proposed.get_json()
    other = make_admin(client.application)
    return decide(client, other, f"/v1/proposals/{proposed.get_json()['id']}", "confirm")


def problem(response: Any, status: int) -> dict[str, Any]:
    """Assert ``response`` is an RFC 9457 problem with ``status``; return its body."""
    assert response.status_code == status, (response.status_code, response.get_data(True))
    assert response.mimetype == PROBLEM
    body: dict[str, Any] = response.get_json()
    assert body["status"] == status
    return body


def ledger_types(app: Flask, *, after: int = -1) -> list[str]:
    """The types of the ledger entries with a sequence number above ``after``, in order."""
    from sqlalchemy import select

    from ledger.storage import entries

    with runtime_of(app).engine.connect() as conn:
        rows = conn.execute(
            select(entries.c.type).where(entries.c.seq > after).order_by(entries.c.seq)
        )
        return [str(r.type) for r in rows]


def ledger_payloads(app: Flask, *, after: int = -1) -> list[dict[str, Any]]:
    """The payloads of the ledger entries with a sequence number above ``after``, in order."""
    import json

    from sqlalchemy import select

    from ledger.storage import entries

    with runtime_of(app).engine.connect() as conn:
        rows = conn.execute(
            select(entries.c.body).where(entries.c.seq > after).order_by(entries.c.seq)
        )
        return [dict(json.loads(bytes(r.body))["payload"]) for r in rows]


def ledger_size(app: Flask) -> int:
    """The number of entries in the ledger (the next sequence number)."""
    from sqlalchemy import func, select

    from ledger.storage import entries

    with runtime_of(app).engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(entries)).scalar_one())


def sql_statements(app: Flask, call: Any) -> tuple[Any, list[str]]:
    """The response of ``call()`` and the SQL statements it ran, without their parameters."""
    from sqlalchemy import event

    seen: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(" ".join(statement.split()))

    engine = runtime_of(app).engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        response = call()
    finally:
        event.remove(engine, "before_cursor_execute", count)
    return response, seen
