"""Steps shared by the legal-basis API tests: a team of agents, bodies, acts, the ledger view.

``use`` spends a search through the service the search calls (``consume_search``), in a unit of
work of the app, without a probe; everything else goes through HTTP.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from api.context import utcnow
from governance.core.errors import GovernanceError
from governance.core.work import Work
from governance.identity.permissions import Role
from governance.identity.principals import Principal
from governance.legal_basis.models import LegalBasis
from governance.legal_basis.services import consume_search
from governance.legal_basis.values import BasisUse
from ledger.entry import parse_entry
from ledger.storage import entries
from tests.api.helpers import (
    Agent,
    make_account,
    make_admin,
    make_agency,
    make_staff,
    problem,
    runtime_of,
)

BASE = "/v1/legal-bases"
JUSTIFICATION = (
    "The victim was abducted on 2026-11-20; CCTV stills of the suspect must be compared "
    "with the gallery to identify him before the ransom deadline."
)


@dataclass(frozen=True)
class Team:
    """Two agencies: A with two supervisors and an investigator, B with its supervisor."""

    admin: Agent
    sup: Agent
    sup2: Agent
    inv: Agent
    other: Agent
    oversight: Agent


def make_team(app: Flask) -> Team:
    """Agency A (two supervisors, an investigator), agency B's supervisor, an oversight account."""
    client = app.test_client()
    admin = make_admin(app)
    sup = make_agency(client, admin)
    return Team(
        admin=admin,
        sup=sup,
        sup2=make_account(client, admin, sup, "supervisor"),
        inv=make_account(client, admin, sup, "investigator"),
        other=make_agency(client, admin),
        oversight=make_staff(client, admin, "oversight"),
    )


def shift_clock(app: Flask) -> Iterator[list[timedelta]]:
    """Move the app's clock by the offset last appended to the yielded list (a fixture body)."""
    rt = runtime_of(app)
    offset = [timedelta(0)]
    rt.clock = lambda: utcnow() + offset[-1]
    try:
        yield offset
    finally:
        rt.clock = utcnow


def wire_counting_hook(app: Flask, monkeypatch: pytest.MonkeyPatch) -> list[tuple[UUID, str]]:
    """Register, instead of the app's lapse hooks, one that 'deletes' as many results as the
    basis had searches and notes the basis and the status it saw (it must run after the lapse,
    in the same transaction).
    """
    calls: list[tuple[UUID, str]] = []

    def delete_results(work: Work, basis_id: UUID) -> int:
        row = work.session.get(LegalBasis, basis_id)
        assert row is not None
        calls.append((basis_id, row.status))
        return row.searches_used

    monkeypatch.setattr(runtime_of(app).hooks, "on_lapse", [delete_results])
    return calls


def now_of(app: Flask) -> datetime:
    return runtime_of(app).now()


def iso(when: datetime) -> str:
    return when.isoformat()


def body(app: Flask, *, kind: str = "judicial", **overrides: Any) -> dict[str, Any]:
    now = now_of(app)
    authorisation: dict[str, Any] = {
        "kind": kind,
        "issued_at": iso(now - timedelta(hours=1)),
        "expires_at": iso(now + timedelta(days=3)),
    }
    if kind != "urgent":
        authorisation |= {"reference": "JLD-2026-1187", "authority": "Tribunal judiciaire de Lyon"}
    authorisation |= overrides.pop("authorisation", {})
    data: dict[str, Any] = {
        "case_number": "PJ-LYON-2026-00417",
        "offence_category": "kidnapping_hostage_taking",
        "legal_provision": "Code de procédure pénale, art. 706-96",
        "authorisation": authorisation,
        "justification": JUSTIFICATION,
        "max_searches": 5,
    }
    data.update(overrides)
    return data


def create(client: FlaskClient, app: Flask, agent: Agent, **overrides: Any) -> dict[str, Any]:
    response = client.post(BASE, json=body(app, **overrides), headers=agent.headers)
    assert response.status_code == 201, response.get_json()
    data: dict[str, Any] = response.get_json()
    return data


def act(client: FlaskClient, agent: Agent, basis: dict[str, Any], verb: str, **json_: Any) -> Any:
    return client.post(
        f"{BASE}/{basis['id']}/{verb}",
        json=json_ or {"reason": f"{verb} by test"},
        headers=agent.headers,
    )


def ok(response: Any) -> dict[str, Any]:
    assert response.status_code == 200, response.get_json()
    data: dict[str, Any] = response.get_json()
    return data


def read(client: FlaskClient, agent: Agent, basis: dict[str, Any]) -> dict[str, Any]:
    return ok(client.get(f"{BASE}/{basis['id']}", headers=agent.headers))


def approved(client: FlaskClient, app: Flask, team: Team, **overrides: Any) -> dict[str, Any]:
    basis = create(client, app, team.inv, **overrides)
    return ok(act(client, team.sup, basis, "approve"))


def principal_of(agent: Agent) -> Principal:
    """The principal the API would authenticate for ``agent``."""
    assert agent.credential_id is not None
    return Principal(agent.account_id, Role(agent.role), agent.agency_id, agent.credential_id)


def use(app: Flask, agent: Agent, basis: dict[str, Any]) -> BasisUse | str:
    """Spend one search as the search service will; the refusal's problem type otherwise."""
    principal = principal_of(agent)
    try:
        with runtime_of(app).units()() as work:
            return consume_search(work, principal=principal, basis_id=UUID(basis["id"]))
    except GovernanceError as exc:
        return f"/problems/{exc.code}"


def payloads(app: Flask, basis_id: str) -> list[tuple[str, dict[str, Any], bytes]]:
    """(type, payload, raw bytes) of every ledger entry about ``basis_id``, in order."""
    with runtime_of(app).engine.connect() as conn:
        rows = conn.execute(
            select(entries.c.body)
            .where(entries.c.type.like("legal_basis:%"))
            .order_by(entries.c.seq)
        )
        found = [parse_entry(bytes(r.body)) for r in rows]
    return [
        (str(e.type), dict(e.payload), e.raw) for e in found if e.payload["legal_basis"] == basis_id
    ]


def types(app: Flask, basis_id: str) -> list[str]:
    return [t for t, _, _ in payloads(app, basis_id)]


def refused(response: Any, state: str, status: int = 403) -> None:
    assert problem(response, status)["type"] == f"/problems/legal-basis-{state}"


def field_errors(response: Any) -> dict[str, str]:
    return {e["field"]: e["detail"] for e in problem(response, 422)["errors"]}
