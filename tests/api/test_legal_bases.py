"""Legal bases over HTTP: recording, four eyes, validation, reads, revocation, the quota.

Deadlines (expiry, the sweep, urgent ratification and lapse) are in
``test_legal_basis_deadlines.py``.
"""

from __future__ import annotations

import hashlib
from datetime import timedelta
from typing import Any
from uuid import UUID

import pytest
from flask import Flask
from flask.testing import FlaskClient

from governance.legal_basis.models import LegalBasis
from governance.legal_basis.values import AuthorisationKind, BasisUse
from tests.api.bases import (
    BASE,
    JUSTIFICATION,
    Team,
    act,
    approved,
    body,
    create,
    field_errors,
    iso,
    make_team,
    now_of,
    ok,
    payloads,
    read,
    refused,
    types,
    use,
)
from tests.api.helpers import Agent, make_account, make_agency, problem, runtime_of


@pytest.fixture(scope="module")
def team(app: Flask) -> Team:
    return make_team(app)


# --- creation, four eyes, reads -------------------------------------------------------------


def test_record_approve_use_and_read(client: FlaskClient, app: Flask, team: Team) -> None:
    basis = create(client, app, team.inv, max_searches=3)
    assert basis["status"] == "pending" and basis["usable"] is False
    assert (basis["searches_used"], basis["searches_left"]) == (0, 3)
    assert basis["ratification"] is None and basis["ratification_deadline"] is None
    assert basis["created_by"] == str(team.inv.account_id)
    assert use(app, team.inv, basis) == "/problems/legal-basis-pending"

    approved_ = ok(act(client, team.sup, basis, "approve", reason="Proportionate; warrant seen."))
    assert approved_["status"] == "approved" and approved_["usable"] is True
    assert approved_["decision"]["by"] == str(team.sup.account_id)
    again = act(client, team.sup2, basis, "approve")
    assert problem(again, 409)["type"] == "/problems/already-decided"

    spent = use(app, team.inv, basis)
    assert isinstance(spent, BasisUse)
    assert (spent.case_number, spent.offence_category) == (
        "PJ-LYON-2026-00417",
        "kidnapping_hostage_taking",
    )
    assert spent.authorisation_kind is AuthorisationKind.JUDICIAL
    assert spent.authorisation_reference == "JLD-2026-1187"
    assert (spent.searches_used, spent.searches_left) == (1, 2)
    shown = read(client, team.oversight, basis)
    assert (shown["searches_used"], shown["searches_left"], shown["usable"]) == (1, 2, True)
    assert read(client, team.sup2, basis)["justification"] == JUSTIFICATION

    hidden = client.get(f"{BASE}/{basis['id']}", headers=team.other.headers)
    assert problem(hidden, 404)["type"] == "/problems/legal-basis-not-found"
    missing = client.get(f"{BASE}/{UUID(int=7)}", headers=team.sup.headers)
    assert problem(missing, 404)["type"] == "/problems/legal-basis-not-found"
    assert use(app, team.other, basis) == "/problems/legal-basis-not-found"
    refused_other = act(client, team.other, basis, "revoke")
    assert problem(refused_other, 404)["type"] == "/problems/legal-basis-not-found"

    assert types(app, basis["id"]) == ["legal_basis:create", "legal_basis:approve"]


def test_the_ledger_holds_digests_not_the_justification(
    client: FlaskClient, app: Flask, team: Team
) -> None:
    basis = create(client, app, team.inv)
    ok(act(client, team.sup, basis, "reject", reason="No link to the offence shown."))
    (_, created, raw), (_, rejected, _) = payloads(app, basis["id"])
    assert created["justification_sha256"] == hashlib.sha256(JUSTIFICATION.encode()).hexdigest()
    assert JUSTIFICATION.encode() not in raw and b"Tribunal" not in raw
    assert created["case_number"] == "PJ-LYON-2026-00417"
    assert created["authorisation_reference"] == "JLD-2026-1187"
    assert (created["offence_category"], created["authorisation_kind"]) == (
        "kidnapping_hostage_taking",
        "judicial",
    )
    assert created["agency"] == str(team.inv.agency_id)
    digest = hashlib.sha256(b"No link to the offence shown.").hexdigest()
    assert rejected["reason_sha256"] == digest and rejected["author"] == str(team.inv.account_id)


def test_four_eyes(client: FlaskClient, app: Flask, team: Team) -> None:
    basis = create(client, app, team.sup)
    for verb in ("approve", "reject"):
        assert problem(act(client, team.sup, basis, verb), 403)["type"] == (
            "/problems/four-eyes-required"
        )
    assert problem(act(client, team.inv, basis, "approve"), 403)["type"] == "/problems/forbidden"
    assert ok(act(client, team.sup2, basis, "approve"))["status"] == "approved"
    with runtime_of(app).sessions() as session:
        row = session.get(LegalBasis, UUID(basis["id"]))
        assert row is not None and row.decided_by != row.created_by


def test_rejection_is_final(client: FlaskClient, app: Flask, team: Team) -> None:
    basis = create(client, app, team.inv)
    missing_reason = client.post(f"{BASE}/{basis['id']}/reject", json={}, headers=team.sup.headers)
    assert problem(missing_reason, 422)["errors"][0]["field"] == "reason"
    assert ok(act(client, team.sup, basis, "reject"))["status"] == "rejected"
    refused(act(client, team.sup2, basis, "approve"), "rejected")
    refused(act(client, team.sup, basis, "revoke"), "rejected")
    assert use(app, team.inv, basis) == "/problems/legal-basis-rejected"
    assert types(app, basis["id"]) == ["legal_basis:create", "legal_basis:reject"]


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"offence_category": "shoplifting"}, "offence_category", "Must be one of: terrorism"),
        ({"justification": "Because."}, "justification", "at least 50"),
        ({"max_searches": 51}, "max_searches", "between 1 and 50"),
        ({"max_searches": 0}, "max_searches", "greater than or equal to 1"),
        ({"case_number": ""}, "case_number", ""),
        ({"authorisation": {"kind": "warrantless"}}, "authorisation.kind", "Must be one of"),
        (
            {"authorisation": {"reference": None}},
            "authorisation.reference",
            "Required for a judicial",
        ),
        ({"authorisation": {"authority": ""}}, "authorisation.authority", ""),
        (
            {"authorisation": {"issued_at": "2026-11-27T10:00:00"}},
            "authorisation.issued_at",
            "add an offset such as Z",
        ),
        (
            {"authorisation": {"issued_at": "+1d"}},
            "authorisation.issued_at",
            "Not a valid datetime",
        ),
        ({"authorisation": {"issued_at": "future"}}, "authorisation.issued_at", "future"),
        ({"authorisation": {"expires_at": "past"}}, "authorisation.expires_at", "in the future"),
        ({"authorisation": {"expires_at": "181d"}}, "authorisation.expires_at", "180 days"),
    ],
)
def test_every_field_is_validated(
    client: FlaskClient, app: Flask, team: Team, overrides: dict[str, Any], field: str, message: str
) -> None:
    now = now_of(app)
    relative = {
        "future": now + timedelta(hours=1),
        "past": now - timedelta(minutes=1),
        "181d": now + timedelta(days=181),
    }
    auth = {
        key: iso(relative[value]) if value in relative else value
        for key, value in overrides.get("authorisation", {}).items()
    }
    request = body(app, **{**overrides, "authorisation": auth})
    response = client.post(BASE, json=request, headers=team.inv.headers)
    errors = field_errors(response)
    assert field in errors, errors
    assert message in errors[field]


def test_an_urgent_authorisation_names_no_reference_before_ratification(
    client: FlaskClient, app: Flask, team: Team
) -> None:
    urgent = body(app, kind="urgent")
    urgent["authorisation"] |= {"reference": "JLD-1", "authority": "JLD"}
    errors = field_errors(client.post(BASE, json=urgent, headers=team.inv.headers))
    assert set(errors) == {"authorisation.reference", "authorisation.authority"}
    assert "ratification attaches it" in errors["authorisation.reference"]


def test_offence_categories_default_to_annex_ii(client: FlaskClient, team: Team) -> None:
    listed = client.get(f"{BASE}/offence-categories", headers=team.inv.headers).get_json()
    assert len(listed) == 16
    slugs = [c["slug"] for c in listed]
    assert slugs[0] == "terrorism" and slugs[-1] == "criminal_organisation"
    assert {"rape", "environmental_crime", "icc_crimes", "drug_trafficking"} <= set(slugs)


def test_listing_is_paged_filtered_and_scoped(client: FlaskClient, app: Flask, team: Team) -> None:
    admin = team.admin
    lead = make_agency(client, admin)
    colleague = make_account(client, admin, lead, "investigator")
    made = [create(client, app, colleague, case_number=f"CASE-{i}") for i in range(3)]
    ok(act(client, lead, made[0], "approve"))

    def page(agent: Agent, **query: Any) -> dict[str, Any]:
        return ok(client.get(BASE, query_string=query, headers=agent.headers))

    everything = page(lead)
    assert everything["total"] == 3
    assert [b["case_number"] for b in everything["items"]] == ["CASE-2", "CASE-1", "CASE-0"]
    assert [b["id"] for b in page(lead, status="approved")["items"]] == [made[0]["id"]]
    assert page(colleague, status="pending")["total"] == 2
    second = page(lead, limit=1, offset=1)
    assert (second["total"], second["items"][0]["case_number"]) == (3, "CASE-1")
    assert not {b["id"] for b in page(team.sup, limit=100)["items"]} & {m["id"] for m in made}
    seen = {b["id"] for b in page(team.oversight, status="pending", limit=100)["items"]}
    assert {made[1]["id"], made[2]["id"]} <= seen
    bad = client.get(BASE, query_string={"status": "dormant"}, headers=lead.headers)
    assert problem(bad, 422)["errors"][0]["field"] == "status"


# --- revocation and the quota ---------------------------------------------------------------


def test_revocation(client: FlaskClient, app: Flask, team: Team) -> None:
    basis = approved(client, app, team)
    assert isinstance(use(app, team.inv, basis), BasisUse)
    assert problem(act(client, team.inv, basis, "revoke"), 403)["type"] == "/problems/forbidden"
    revoked = ok(act(client, team.sup, basis, "revoke", reason="Suspect arrested."))
    assert revoked["status"] == "revoked" and revoked["usable"] is False
    assert revoked["revocation"]["reason"] == "Suspect arrested."
    assert use(app, team.inv, basis) == "/problems/legal-basis-revoked"
    refused(act(client, team.sup2, basis, "revoke"), "revoked")
    refused(act(client, team.sup2, basis, "approve"), "revoked")
    entry = payloads(app, basis["id"])[-1]
    assert entry[0] == "legal_basis:revoke" and entry[1]["searches_used"] == 1
    pending = create(client, app, team.inv)  # a pending basis can be withdrawn too
    assert ok(act(client, team.sup, pending, "revoke"))["status"] == "revoked"
    refused(act(client, team.sup2, pending, "approve"), "revoked")


def test_quota_exhaustion(client: FlaskClient, app: Flask, team: Team) -> None:
    basis = approved(client, app, team, max_searches=2)
    first, second = use(app, team.inv, basis), use(app, team.sup, basis)
    assert isinstance(first, BasisUse) and isinstance(second, BasisUse)
    assert [first.searches_left, second.searches_left] == [1, 0]
    assert use(app, team.inv, basis) == "/problems/legal-basis-exhausted"
    shown = read(client, team.inv, basis)
    assert (shown["status"], shown["usable"], shown["searches_left"]) == ("exhausted", False, 0)

    def listed(status: str) -> set[str]:
        page = client.get(f"{BASE}?status={status}&limit=100", headers=team.inv.headers)
        return {item["id"] for item in ok(page)["items"]}

    assert basis["id"] in listed("exhausted")
    assert basis["id"] not in listed("approved")
    assert ok(act(client, team.sup, basis, "revoke"))["status"] == "revoked"
    assert basis["id"] not in listed("exhausted")
