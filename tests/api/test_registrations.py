"""Agency registration end to end: submit, validate, review, claim, record, roll back."""

from __future__ import annotations

import hashlib
from typing import Any
from uuid import UUID

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from governance.core import recording
from governance.identity.models import Registration
from governance.identity.tokens import digest
from ledger.storage import entries
from tests.api.helpers import (
    Agent,
    bearer,
    claim,
    decide,
    fresh_address,
    ledger_size,
    ledger_types,
    mail_to,
    mailed_secret,
    make_admin,
    person,
    problem,
    registration_body,
    runtime_of,
    submit,
)


@pytest.fixture(scope="module")
def admin(app: Flask) -> Agent:
    return make_admin(app)


def _post(client: FlaskClient, body: Any, address: str | None = None) -> Any:
    return client.post(
        "/v1/registrations", json=body, environ_base={"REMOTE_ADDR": address or fresh_address()}
    )


def test_submission_answers_no_secret_and_approval_mails_it_to_the_contact(
    app: Flask, client: FlaskClient, admin: Agent
) -> None:
    # An anonymous submitter may name anyone's address: the secret goes to that address only,
    # and only once an administrator has approved.
    body = registration_body()
    before = ledger_size(app)
    receipt = submit(client, body)
    assert set(receipt) == {"id", "status"} and receipt["status"] == "pending"
    assert ledger_types(app, after=before - 1) == ["registration:submit"]
    address = body["contact"]["email"]
    assert mail_to(app, address) == []
    decide(client, admin, f"/v1/registrations/{receipt['id']}", "approve")
    secret = mailed_secret(client, address)
    assert secret.startswith("fwc_") and len(secret) == 56
    with runtime_of(app).sessions() as session:
        row = session.get(Registration, UUID(receipt["id"]))
        assert row is not None
        stored = [getattr(row, c.key) for c in Registration.__table__.columns]
        assert row.claim_hash == digest(secret) and row.claim_issued_to == address.casefold()
        assert row.claim_expires_at is not None
    assert secret not in [str(v) for v in stored]


def test_fields_are_normalized(app: Flask, client: FlaskClient, admin: Agent) -> None:
    body = registration_body(
        contact=person(
            first_name="  Ame\u0301lie  ",  # decomposed é, padded
            phone="+33 (0)1 42 68 53 00".replace("(0)", ""),
            email="Someone@EXAMPLE.org",
        )
    )
    body["agency"]["country"] = "fr"
    receipt = submit(client, body)
    shown = client.get(f"/v1/registrations/{receipt['id']}", headers=admin.headers).get_json()
    assert shown["contact"]["first_name"] == "Amélie"  # NFC, trimmed
    assert shown["contact"]["phone"] == "+33142685300"  # E.164
    assert shown["contact"]["email"] == "Someone@example.org"  # domain lower-cased
    assert shown["agency"]["country"] == "FR"


def _with(path: str, value: Any) -> dict[str, Any]:
    body = registration_body()
    target: dict[str, Any] = body
    *parents, leaf = path.split(".")
    for part in parents:
        target = target[part]
    if value is _MISSING:
        del target[leaf]
    else:
        target[leaf] = value
    return body


_MISSING = object()


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        ("agency.name", "x" * 201, "at most 200"),
        ("agency.name", "Police\u202enoisserp", "U+202E"),
        ("agency.name", "Poli\u200bce", "U+200B"),
        ("agency.name", "Police\u2066x\u2069", "U+2066"),
        ("agency.name", "Police\x00", "U+0000"),
        ("agency.name", "   ", "empty"),
        ("agency.name", 42, "Not a valid string"),
        ("agency.name", "<script>", "not allowed in a name"),
        ("agency.kind", "militia", "Must be one of"),
        ("agency.country", "XX", "ISO 3166-1"),
        ("agency.country", "FRA", "ISO 3166-1"),
        ("agency.jurisdiction", _MISSING, "Missing data"),
        ("contact.first_name", "Jean\ufeff", "U+FEFF"),
        ("contact.last_name", "Dupont\u200d", "U+200D"),
        ("contact.last_name", "1234", "at least one letter"),
        ("contact.phone", "0142685300", "international format"),
        ("contact.phone", "+33 1", "Not a valid phone number"),
        ("contact.phone", "+1 555 0100", "Not a valid phone number"),
        ("contact.phone", ["+33142685300"], "Not a valid string"),
        ("contact.email", "not-an-email", "@-sign"),
        ("contact.email", "a@b", "Not a valid email"),
        ("contact.email", "x" * 250 + "@example.org", "at most"),
        ("contact.job_title", "a\nb", "U+000A"),
        ("intended_use", "too short", "at least 20"),
        ("intended_use", "x" * 4001, "at most 4000"),
        ("intended_use", None, "Field may not be null"),
        ("surprise", "field", "Unknown field"),
    ],
)
def test_each_invalid_field_gets_a_precise_error(
    client: FlaskClient, path: str, value: Any, message: str
) -> None:
    body = problem(_post(client, _with(path, value)), 422)
    assert body["type"] == "/problems/validation-error"
    fields = {e["field"]: e["detail"] for e in body["errors"]}
    assert path in fields, body["errors"]
    assert message in fields[path]


def test_wrong_json_types_are_refused(client: FlaskClient) -> None:
    assert _post(client, ["not", "an", "object"]).status_code == 422
    response = client.post(
        "/v1/registrations",
        data="{not json",
        content_type="application/json",
        environ_base={"REMOTE_ADDR": fresh_address()},
    )
    assert response.status_code in (400, 422)


def test_a_pending_duplicate_is_a_conflict(client: FlaskClient) -> None:
    body = registration_body()
    submit(client, body)
    twin = registration_body(contact=dict(body["contact"]))
    twin["agency"]["name"] = "  " + body["agency"]["name"].upper() + " "
    assert problem(_post(client, twin), 409)["type"] == "/problems/duplicate-registration"


def test_submissions_are_rate_limited_per_client(app: Flask, client: FlaskClient) -> None:
    limit = int(runtime_of(app).settings.registration_rate_limit.split()[0])
    address = fresh_address()
    for _ in range(limit):
        assert _post(client, {}, address).status_code == 422  # counted even when invalid
    response = _post(client, registration_body(), address)
    refused = problem(response, 429)
    assert "Rate limit" in refused["detail"] and refused["request_id"]
    assert int(response.headers["Retry-After"]) > 0
    assert _post(client, {}, fresh_address()).status_code == 422  # other clients unaffected


def test_admin_lists_by_status_with_paging(client: FlaskClient, admin: Agent) -> None:
    first, second = submit(client), submit(client)
    page = client.get(
        "/v1/registrations?status=pending&limit=1&offset=0", headers=admin.headers
    ).get_json()
    assert page["limit"] == 1 and len(page["items"]) == 1 and page["total"] >= 2
    ids: set[str] = set()
    for offset in range(0, page["total"], 50):
        more = client.get(
            f"/v1/registrations?status=pending&offset={offset}", headers=admin.headers
        ).get_json()
        ids |= {item["id"] for item in more["items"]}
        assert all(item["status"] == "pending" for item in more["items"])
    assert {first["id"], second["id"]} <= ids
    bad = problem(client.get("/v1/registrations?limit=0", headers=admin.headers), 422)
    assert bad["errors"][0]["field"] == "limit"
    assert problem(client.get("/v1/registrations?status=odd", headers=admin.headers), 422)


def test_approval_needs_a_reason(client: FlaskClient, admin: Agent) -> None:
    path = f"/v1/registrations/{submit(client)['id']}"
    for body in ({}, {"reason": ""}, {"reason": "  ok "}):
        assert problem(client.post(f"{path}/approve", json=body, headers=admin.headers), 422)


def test_approval_creates_the_agency_and_its_supervisor_then_claim_gives_the_key_once(
    app: Flask, client: FlaskClient, admin: Agent
) -> None:
    body = registration_body()
    receipt = submit(client, body)
    path = f"/v1/registrations/{receipt['id']}"
    before = ledger_size(app)
    approved = decide(client, admin, path, "approve")
    secret = mailed_secret(client, body["contact"]["email"])
    assert (
        approved["status"] == "approved" and approved["decision_reason"] == "approve after review"
    )
    assert approved["decided_by"] == str(admin.account_id)
    agency = client.get(f"/v1/agencies/{approved['agency_id']}", headers=admin.headers)
    assert agency.get_json()["status"] == "active"
    account = client.get(f"/v1/accounts/{approved['account_id']}", headers=admin.headers)
    assert account.get_json()["role"] == "supervisor"

    issued = claim(client, path, secret)
    key = issued["api_key"]
    assert key.startswith("fw_") and issued["credential"]["account_id"] == approved["account_id"]
    me = client.get("/v1/accounts/me", headers=bearer(key)).get_json()
    assert me["id"] == approved["account_id"] and me["agency_id"] == approved["agency_id"]
    assert ledger_types(app, after=before - 1) == [
        "registration:approve",
        "credential:issue",
        "registration:claim",
    ]
    # Replay: the secret was right but is spent.
    replay = client.post(f"{path}/claim", json={"claim_secret": secret})
    assert problem(replay, 409)["type"] == "/problems/already-claimed"
    # The registration never shows the key, and admins see no secret at all.
    shown = client.get(path, headers=admin.headers).get_data(as_text=True)
    assert key not in shown and secret not in shown


def test_rejection_is_final(app: Flask, client: FlaskClient, admin: Agent) -> None:
    body = registration_body()
    receipt = submit(client, body)
    path = f"/v1/registrations/{receipt['id']}"
    before = ledger_size(app)
    assert decide(client, admin, path, "reject")["status"] == "rejected"
    assert ledger_types(app, after=before - 1) == ["registration:reject"]
    for verdict in ("approve", "reject"):
        again = client.post(f"{path}/{verdict}", json={"reason": "again"}, headers=admin.headers)
        assert problem(again, 409)["type"] == "/problems/already-decided"
    assert mail_to(app, body["contact"]["email"]) == []


def test_claims_refuse_wrong_secrets_and_unknown_registrations_alike(
    client: FlaskClient, admin: Agent
) -> None:
    body = registration_body()
    receipt = submit(client, body)
    path = f"/v1/registrations/{receipt['id']}"
    decide(client, admin, path, "approve")
    secret = mailed_secret(client, body["contact"]["email"])
    answers = []
    for wrong in ("fwc_" + "a" * 52, secret[:-1] + "b", "", "x" * 201):
        response = client.post(f"{path}/claim", json={"claim_secret": wrong})
        assert response.status_code in (403, 422)
        if wrong and len(wrong) <= 200:
            answers.append(problem(response, 403))
    unknown = client.post(
        "/v1/registrations/00000000-0000-4000-8000-000000000000/claim",
        json={"claim_secret": secret},
    )
    answers.append(problem(unknown, 403))
    assert {(a["type"], a["title"], a["detail"], tuple(sorted(a))) for a in answers} == {
        (
            "/problems/wrong-claim-secret",
            "The claim id or the claim secret is wrong",
            "The claim id or the claim secret is wrong.",
            ("detail", "instance", "request_id", "status", "title", "type"),
        )
    }
    claim(client, path, secret)


def test_a_failed_ledger_append_rolls_the_change_back_and_mails_nothing(
    app: Flask, client: FlaskClient, admin: Agent, monkeypatch: pytest.MonkeyPatch
) -> None:
    body = registration_body()
    receipt = submit(client, body)
    path = f"/v1/registrations/{receipt['id']}"

    def broken(*_args: Any, **_kwargs: Any) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr(recording, "append", broken)
    problem(
        client.post(f"{path}/approve", json={"reason": "looks fine"}, headers=admin.headers), 500
    )
    failed_submit = _post(client, registration_body())
    assert failed_submit.status_code == 500
    monkeypatch.undo()
    assert mail_to(app, body["contact"]["email"]) == []  # no mail announces a rolled-back act

    shown = client.get(path, headers=admin.headers).get_json()
    assert shown["status"] == "pending" and shown["agency_id"] is None
    with runtime_of(app).sessions() as session:
        assert (
            session.scalars(
                select(Registration).where(
                    Registration.status == "approved", Registration.id == UUID(receipt["id"])
                )
            ).all()
            == []
        )
    assert decide(client, admin, path, "approve")["status"] == "approved"
    assert len(mail_to(app, body["contact"]["email"])) == 1


def test_ledger_payloads_hold_ids_not_personal_data(app: Flask, client: FlaskClient) -> None:
    body = registration_body()
    before = ledger_size(app)
    submit(client, body)
    with runtime_of(app).engine.connect() as conn:
        raw = conn.execute(select(entries.c.body).where(entries.c.seq >= before)).scalars().all()
    text = b"".join(bytes(r) for r in raw).decode()
    for value in (
        body["agency"]["name"],
        body["contact"]["email"],
        body["contact"]["last_name"],
        "+33142685300",
        hashlib.sha256(b"").hexdigest(),
    ):
        assert value not in text
