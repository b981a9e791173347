"""Signing in to the console: claims with a passkey, sessions, CSRF, and what ends a session."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient

from api.console.security import CSRF_COOKIE, SESSION_COOKIE
from tests.api.helpers import (
    bearer,
    claim,
    decide,
    ledger_payloads,
    ledger_size,
    ledger_types,
    make_admin,
    runtime_of,
)
from tests.console.conftest import BASE, Claimable, Visitor, approved_registration, enrol_with_key


def _cookie_attributes(response: object, name: str) -> dict[str, str | bool]:
    for header in response.headers.getlist("Set-Cookie"):  # type: ignore[attr-defined]
        if header.startswith(f"{name}="):
            parts = [p.strip() for p in header.split(";")]
            attributes: dict[str, str | bool] = {}
            for part in parts[1:]:
                key, eq, value = part.partition("=")
                attributes[key.lower()] = value if eq else True
            return attributes
    raise AssertionError(f"no {name} cookie set")


def test_a_claim_with_a_passkey_signs_the_person_in_and_is_recorded(
    app: Flask, client: FlaskClient, visitor: Visitor
) -> None:
    claimable = approved_registration(client)
    before = ledger_size(app)

    answer = visitor.claim(claimable.link, claimable.secret, label="office laptop")

    assert answer.status_code == 303
    assert answer.headers["Location"] == "/console/?done=claimed"
    cookie = _cookie_attributes(answer, SESSION_COOKIE)
    assert cookie["path"] == "/"
    assert cookie["secure"] is True
    assert cookie["httponly"] is True
    assert cookie["samesite"] == "Strict"
    assert "domain" not in cookie  # __Host-: this host only
    home = visitor.get("/console/")
    assert "You are signed in as a <strong>supervisor</strong>" in home.get_data(as_text=True)
    types = ledger_types(app, after=before - 1)
    assert types[:3] == ["passkey:enrol", "registration:claim", "session:start"]
    enrol, claimed, started = ledger_payloads(app, after=before - 1)[:3]
    assert claimed["account"] == str(claimable.account_id)
    assert claimed["passkey"] == enrol["passkey"]
    assert "credential" not in claimed  # no API key was issued
    assert started["passkey"] == enrol["passkey"]
    assert set(enrol) == {"account", "passkey", "credential_sha256"}

    # The secret is spent: neither the console nor the API takes it again.
    again = Visitor(client.application.test_client())
    refused = again.post(
        f"{claimable.link.removeprefix(BASE)}/options", {"claim_secret": claimable.secret}
    )
    assert refused.status_code == 409
    api = client.post(
        f"/v1/registrations/{claimable.registration_id}/claim",
        json={"claim_secret": claimable.secret},
    )
    assert api.status_code == 409


def test_a_wrong_claim_secret_spends_nothing(client: FlaskClient, visitor: Visitor) -> None:
    claimable = approved_registration(client)
    path = claimable.link.removeprefix(BASE)
    wrong = visitor.post(f"{path}/options", {"claim_secret": "fwc_" + "a" * 52})
    assert wrong.status_code == 403
    assert visitor.claim(claimable.link, claimable.secret).status_code == 303


def test_an_enrolment_answer_is_bound_to_its_claim(client: FlaskClient, visitor: Visitor) -> None:
    """A ceremony begun for one claim cannot finish another, nor be used twice."""
    first, second = approved_registration(client), approved_registration(client)
    path = first.link.removeprefix(BASE)
    started = visitor.post(f"{path}/options", {"claim_secret": first.secret}).get_json()
    answer = visitor.authenticator.create(started["options"])
    form = {"ceremony": started["ceremony"], "response": answer, "label": "x"}
    other = visitor.post(second.link.removeprefix(BASE), {**form, "claim_secret": second.secret})
    assert other.status_code == 401
    assert "begun for another account" in other.get_data(as_text=True)
    assert visitor.post(path, {**form, "claim_secret": first.secret}).status_code == 303
    replay = visitor.post(path, {**form, "claim_secret": first.secret})
    assert replay.status_code == 422  # already claimed


def test_an_answer_made_for_another_site_is_refused(client: FlaskClient, visitor: Visitor) -> None:
    claimable = approved_registration(client)
    path = claimable.link.removeprefix(BASE)
    started = visitor.post(f"{path}/options", {"claim_secret": claimable.secret}).get_json()
    phished = visitor.authenticator.create(started["options"], origin="https://facewarden.evil")
    answer = visitor.post(
        path,
        {
            "claim_secret": claimable.secret,
            "ceremony": started["ceremony"],
            "response": phished,
            "label": "x",
        },
    )
    assert answer.status_code == 401
    assert "origin" in answer.get_data(as_text=True).lower()


def test_sign_in_with_a_passkey_opens_a_session_and_sign_out_ends_it(
    app: Flask, claimed: tuple[Visitor, Claimable]
) -> None:
    person, _ = claimed
    later = Visitor(app.test_client(), authenticator=person.authenticator)
    assert later.get("/console/passkeys").status_code == 303  # not signed in: to sign-in

    signed_in = later.sign_in()
    assert signed_in.status_code == 303
    token = later.session_cookie
    assert token and token.startswith("fws_")
    assert later.get("/console/passkeys").status_code == 200

    out = later.post("/console/sign-out")
    assert out.status_code == 303
    assert later.session_cookie is None
    # The token itself is dead, not only the cookie gone.
    stolen = Visitor(app.test_client())
    stolen.client.set_cookie(SESSION_COOKIE, token, domain="localhost", secure=True)
    assert stolen.get("/console/passkeys").status_code == 303
    # A session token is not an API key.
    assert stolen.client.get("/v1/accounts/me", headers=bearer(token)).status_code == 401


def test_a_sign_in_answer_works_once(
    app: Flask, claimed: tuple[Visitor, Claimable], caplog: pytest.LogCaptureFixture
) -> None:
    person, _ = claimed
    started = person.post("/console/sign-in/options").get_json()
    answer = person.authenticator.get(started["options"])
    form = {"ceremony": started["ceremony"], "response": answer}
    with caplog.at_level("INFO", logger="facewarden.console"):
        assert person.post("/console/sign-in", form).status_code == 303
        replay = person.post("/console/sign-in", form)
    assert replay.status_code == 401
    assert "already used" in replay.get_data(as_text=True)
    events = [
        (r.levelname, getattr(r, "event", None), getattr(r, "code", None))
        for r in caplog.records
        if r.name == "facewarden.console"
    ]
    assert events == [("INFO", "sign-in", None), ("WARNING", "sign-in-refused", "passkey-rejected")]


@pytest.mark.parametrize(
    ("idle", "expected"),
    [(timedelta(minutes=29), 200), (timedelta(minutes=31), 303)],
)
def test_a_session_ends_after_30_idle_minutes(
    app: Flask, claimed: tuple[Visitor, Claimable], idle: timedelta, expected: int
) -> None:
    person, _ = claimed
    rt = runtime_of(app)
    clock, start = rt.clock, rt.clock()
    try:
        rt.clock = lambda: start + idle
        assert person.get("/console/passkeys").status_code == expected
    finally:
        rt.clock = clock


def test_a_session_ends_after_12_hours_however_busy(
    app: Flask, claimed: tuple[Visitor, Claimable]
) -> None:
    person, _ = claimed
    rt = runtime_of(app)
    clock, start = rt.clock, rt.clock()
    try:
        for minutes in range(20, 12 * 60, 20):  # a request every 20 minutes
            rt.clock = lambda m=minutes: start + timedelta(minutes=m)
            assert person.get("/console/passkeys").status_code == 200, minutes
        rt.clock = lambda: start + timedelta(hours=12, minutes=1)
        assert person.get("/console/passkeys").status_code == 303
    finally:
        rt.clock = clock


@pytest.mark.parametrize("what", ["account", "agency"])
def test_suspension_ends_the_sessions_for_good(
    app: Flask, client: FlaskClient, claimed: tuple[Visitor, Claimable], what: str
) -> None:
    person, claimable = claimed
    admin = claimable.admin
    assert person.get("/console/passkeys").status_code == 200
    token = person.session_cookie
    path = (
        f"/v1/accounts/{claimable.account_id}"
        if what == "account"
        else f"/v1/agencies/{claimable.agency_id}"
    )
    reason = {"reason": "misuse under investigation"}
    suspended = client.post(f"{path}/suspend", json=reason, headers=admin.headers)
    if what == "agency":  # two administrators: the second confirms the proposal
        assert suspended.status_code == 202, suspended.get_json()
        decide(client, make_admin(app), f"/v1/proposals/{suspended.get_json()['id']}", "confirm")
    else:
        assert suspended.status_code == 200, suspended.get_json()
    assert person.get("/console/passkeys").status_code == 303
    # A session that a sign-in committed beside the suspension (as if it escaped the sweep):
    # its first request ends it.
    _revive(app, person, token)
    assert person.get("/console/passkeys").status_code == 303
    assert person.session_cookie is None
    reinstated = client.post(f"{path}/reinstate", json={"reason": "cleared"}, headers=admin.headers)
    assert reinstated.status_code == 200, reinstated.get_json()
    assert person.get("/console/passkeys").status_code == 303  # still ended
    assert person.sign_in().status_code == 303  # a new sign-in works again
    assert person.get("/console/passkeys").status_code == 200


def _revive(app: Flask, person: Visitor, cookie: str | None) -> None:
    from sqlalchemy import update

    from governance.identity.models import Credential
    from governance.identity.tokens import parse_session_token

    token = parse_session_token(cookie or "")
    assert cookie and token is not None
    person.client.set_cookie(SESSION_COOKIE, cookie, domain="localhost", secure=True)
    with runtime_of(app).engine.begin() as conn:
        conn.execute(
            update(Credential)
            .where(Credential.lookup_id == token.lookup_id)
            .values(revoked_at=None, revoked_by=None)
        )


def test_forms_without_the_csrf_token_or_from_another_origin_are_refused(
    claimed: tuple[Visitor, Claimable],
) -> None:
    person, _ = claimed
    bare = person.client.post("/console/sign-out", base_url=BASE)
    assert bare.status_code == 403
    forged = person.client.post("/console/sign-out", base_url=BASE, data={"csrf_token": "x" * 43})
    assert forged.status_code == 403
    elsewhere = person.client.post(
        "/console/sign-out",
        base_url=BASE,
        data={"csrf_token": person.csrf},
        headers={"Origin": "https://attacker.example"},
    )
    assert elsewhere.status_code == 403
    assert person.get("/console/passkeys").status_code == 200  # still signed in


def test_console_pages_carry_a_strict_policy(visitor: Visitor) -> None:
    page = visitor.get("/console/sign-in")
    assert page.status_code == 200
    csp = page.headers["Content-Security-Policy"]
    assert "script-src 'self';" in csp
    assert "'unsafe-inline'" not in csp
    assert "frame-ancestors 'none'" in csp
    assert page.headers["X-Frame-Options"] == "DENY"
    assert page.headers["Cache-Control"] == "no-store"
    assert "<script>" not in page.get_data(as_text=True)  # no inline script
    csrf = _cookie_attributes(page, CSRF_COOKIE)
    assert csrf["secure"] is True and csrf["samesite"] == "Strict"


def test_passkeys_are_added_and_revoked_but_never_the_last(
    app: Flask, claimed: tuple[Visitor, Claimable]
) -> None:
    person, _ = claimed
    started = person.post("/console/passkeys/options").get_json()
    excluded = json.loads(started["options"])["excludeCredentials"]
    assert len(excluded) == 1  # the one already held
    answer = person.authenticator.create(started["options"])
    added = person.post(
        "/console/passkeys",
        {"ceremony": started["ceremony"], "response": answer, "label": "phone"},
    )
    assert added.status_code == 303
    page = person.get("/console/passkeys").get_data(as_text=True)
    assert "phone" in page and "laptop" in page

    from governance.identity.passkeys import list_passkeys

    with runtime_of(app).units()() as w:
        held = list_passkeys(w, principal=_principal(app, person))
    first = next(p for p in held if p.label == "laptop")
    # A second browser signed in with the first passkey: revoking the passkey ends it.
    elsewhere = Visitor(app.test_client(), authenticator=person.authenticator)
    assert elsewhere.sign_in(credential=0).status_code == 303
    assert elsewhere.get("/console/passkeys").status_code == 200
    assert person.post(f"/console/passkeys/{first.id}/revoke").status_code == 303
    assert elsewhere.get("/console/passkeys").status_code == 303
    # The revoked one no longer signs in; the other still does.
    assert person.sign_in(credential=0).status_code == 401
    assert person.sign_in(credential=1).status_code == 303
    last = next(p for p in held if p.label == "phone")
    refused = person.post(f"/console/passkeys/{last.id}/revoke")
    assert refused.status_code == 409
    assert "only passkey" in refused.get_data(as_text=True)


def _principal(app: Flask, person: Visitor):  # type: ignore[no-untyped-def]
    from governance.identity.sessions import authenticate_session

    token = person.session_cookie
    assert token
    with runtime_of(app).units()() as w:
        return authenticate_session(w, token=token)


def test_the_api_claim_still_gives_an_api_key(client: FlaskClient) -> None:
    claimable = approved_registration(client)
    issued = claim(client, f"/v1/registrations/{claimable.registration_id}", claimable.secret)
    assert issued["api_key"].startswith("fw_")


def test_an_api_key_holder_enrols_a_passkey_and_signs_in(
    app: Flask, client: FlaskClient, visitor: Visitor
) -> None:
    """An administrator made on the command line has a key, no claim: the key enrols once."""
    admin = make_admin(app)
    before = ledger_size(app)
    answer = enrol_with_key(visitor, admin)
    assert answer.status_code == 303
    assert answer.headers["Location"] == "/console/?done=enrolled"
    assert "signed in as a <strong>admin</strong>" in visitor.get("/console/").get_data(
        as_text=True
    )
    assert ledger_types(app, after=before - 1)[:2] == ["passkey:enrol", "session:start"]
    # Only the first: a copied key cannot plant a passkey that would outlive it.
    again = Visitor(app.test_client())
    second = again.post("/console/enrol/options", {"api_key": admin.token})
    assert second.status_code == 409
    assert "already holds a passkey" in second.get_data(as_text=True)
    # A wrong key enrols nothing, and counts as a failed authentication of that key.
    wrong = visitor.post("/console/enrol/options", {"api_key": admin.token[:-4] + "aaaa"})
    assert wrong.status_code == 401
    assert client.get("/v1/accounts/me", headers=admin.headers).status_code == 200
