"""API keys: bearer only, hashed, rotated, revoked at once, expiring, failures rate-limited."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from uuid import uuid4

import pytest
from flask import Flask
from flask.testing import FlaskClient

from api.context import utcnow
from governance.identity.credentials import MAX_ACTIVE_CREDENTIALS
from governance.identity.models import Credential
from governance.identity.tokens import digest, new_api_key, parse_api_key
from tests.api.helpers import (
    Agent,
    bearer,
    fresh_address,
    ledger_size,
    ledger_types,
    mailed_secret,
    make_admin,
    make_agency,
    make_staff,
    problem,
    runtime_of,
    sql_statements,
)


@pytest.fixture(scope="module")
def admin(app: Flask) -> Agent:
    return make_admin(app)


@pytest.fixture
def supervisor(client: FlaskClient, admin: Agent) -> Agent:
    return make_agency(client, admin)


@pytest.fixture
def shifted_clock(app: Flask) -> Iterator[list[timedelta]]:
    """Move the app's clock by the offset appended to the yielded list."""
    rt = runtime_of(app)
    offset = [timedelta(0)]
    rt.clock = lambda: utcnow() + offset[-1]
    try:
        yield offset
    finally:
        rt.clock = utcnow


def test_keys_are_shaped_and_stored_as_sha256_only(app: Flask, supervisor: Agent) -> None:
    key = parse_api_key(supervisor.token)
    assert key is not None and len(key.secret) == 52  # 256 bits in base32
    with runtime_of(app).sessions() as session:
        row = session.get(Credential, supervisor.credential_id)
        assert row is not None
        assert row.secret_hash == digest(key.secret)
        assert key.secret not in repr(vars(row))


def test_only_the_bearer_header_is_accepted(client: FlaskClient, supervisor: Agent) -> None:
    missing = problem(client.get("/v1/accounts/me"), 401)
    assert missing["type"] == "/problems/missing-credential"
    for header in (f"Basic {supervisor.token}", f"Token {supervisor.token}", "Bearer", "Bearer  "):
        response = client.get(
            "/v1/accounts/me",
            headers={"Authorization": header},
            environ_base={"REMOTE_ADDR": fresh_address()},
        )
        problem(response, 401)
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    ok = client.get("/v1/accounts/me", headers={"Authorization": f"bearer {supervisor.token}"})
    assert ok.status_code == 200


@pytest.mark.parametrize("name", ["api_key", "access_token", "token", "key", "anything"])
def test_a_key_in_the_query_string_is_a_400_and_is_not_logged(
    client: FlaskClient, supervisor: Agent, name: str, caplog: pytest.LogCaptureFixture
) -> None:
    response = client.get(f"/v1/accounts/me?{name}={supervisor.token}")
    body = problem(response, 400)
    assert "Authorization header" in body["detail"] and body["request_id"]
    assert supervisor.token not in response.get_data(as_text=True)
    assert all(supervisor.token not in r.getMessage() + str(vars(r)) for r in caplog.records)


@pytest.mark.parametrize(
    "mangle",
    [
        lambda t: t[:-1] + ("a" if t[-1] != "a" else "b"),  # wrong secret
        lambda t: "fw_" + "a" * 16 + t[19:],  # unknown lookup id
        lambda t: t + "x",  # malformed
        lambda t: t.upper(),
    ],
)
def test_bad_keys_are_401(client: FlaskClient, supervisor: Agent, mangle: object) -> None:
    token = mangle(supervisor.token)  # type: ignore[operator]
    response = client.get(
        "/v1/accounts/me", headers=bearer(token), environ_base={"REMOTE_ADDR": fresh_address()}
    )
    assert problem(response, 401)["type"] == "/problems/invalid-credential"


def test_rotation_list_and_immediate_revocation(
    app: Flask, client: FlaskClient, supervisor: Agent
) -> None:
    before = ledger_size(app)
    created = client.post("/v1/credentials", json={"label": "rotation"}, headers=supervisor.headers)
    assert created.status_code == 201
    second = created.get_json()
    assert second["credential"]["label"] == "rotation"
    new_headers = bearer(second["api_key"])
    listed = client.get("/v1/credentials", headers=new_headers)
    text = listed.get_data(as_text=True)
    assert len(listed.get_json()["items"]) == 2
    assert supervisor.token.split("_")[2] not in text and second["api_key"] not in text
    assert "secret" not in text

    revoked = client.delete(f"/v1/credentials/{supervisor.credential_id}", headers=new_headers)
    assert revoked.status_code == 204
    gone = problem(client.get("/v1/accounts/me", headers=supervisor.headers), 401)
    assert gone["type"] == "/problems/credential-revoked"
    again = client.delete(f"/v1/credentials/{supervisor.credential_id}", headers=new_headers)
    assert problem(again, 409)["type"] == "/problems/already-revoked"
    assert ledger_types(app, after=before - 1) == ["credential:issue", "credential:revoke"]
    shown = client.get(f"/v1/credentials/{supervisor.credential_id}", headers=new_headers)
    assert shown.get_json()["status"] == "revoked"


def test_admins_revoke_anyone_others_only_their_own(
    client: FlaskClient, admin: Agent, supervisor: Agent
) -> None:
    other = make_agency(client, admin)
    assert problem(
        client.delete(f"/v1/credentials/{other.credential_id}", headers=supervisor.headers), 404
    )
    assert problem(
        client.get(f"/v1/credentials?account_id={other.account_id}", headers=supervisor.headers),
        404,
    )
    listed = client.get(f"/v1/credentials?account_id={other.account_id}", headers=admin.headers)
    assert [c["id"] for c in listed.get_json()["items"]] == [str(other.credential_id)]
    assert (
        client.delete(f"/v1/credentials/{other.credential_id}", headers=admin.headers).status_code
        == 204
    )
    assert problem(client.get("/v1/accounts/me", headers=other.headers), 401)


def test_expiry_and_last_used(
    app: Flask, client: FlaskClient, supervisor: Agent, shifted_clock: list[timedelta]
) -> None:
    ttl = timedelta(days=runtime_of(app).settings.credential_ttl_days)
    first = client.get("/v1/credentials", headers=supervisor.headers).get_json()["items"][0]
    used = datetime.fromisoformat(first["last_used_at"])
    # Within a minute a request does not rewrite the timestamp (no write per request).
    again = client.get("/v1/credentials", headers=supervisor.headers).get_json()["items"][0]
    assert again["last_used_at"] == first["last_used_at"]
    shifted_clock.append(ttl - timedelta(minutes=1))
    later = client.get("/v1/credentials", headers=supervisor.headers).get_json()["items"][0]
    assert datetime.fromisoformat(later["last_used_at"]) > used + ttl - timedelta(minutes=2)
    shifted_clock.append(ttl + timedelta(seconds=1))
    expired = problem(client.get("/v1/accounts/me", headers=supervisor.headers), 401)
    assert expired["type"] == "/problems/credential-expired"


def test_active_credentials_are_capped(client: FlaskClient, supervisor: Agent) -> None:
    for _ in range(MAX_ACTIVE_CREDENTIALS - 1):
        assert (
            client.post("/v1/credentials", json={}, headers=supervisor.headers).status_code == 201
        )
    capped = client.post("/v1/credentials", json={}, headers=supervisor.headers)
    assert problem(capped, 409)["type"] == "/problems/too-many-credentials"


def test_unknown_keys_are_rate_limited_per_client(
    app: Flask, client: FlaskClient, supervisor: Agent
) -> None:
    limit = int(runtime_of(app).settings.auth_failure_rate_limit.split()[0])
    address = fresh_address()
    for _ in range(limit):
        response = client.get(
            "/v1/accounts/me",
            headers=bearer(new_api_key().token),
            environ_base={"REMOTE_ADDR": address},
        )
        assert response.status_code == 401
    blocked = client.get(
        "/v1/accounts/me",
        headers=bearer(new_api_key().token),
        environ_base={"REMOTE_ADDR": address},
    )
    problem(blocked, 429)
    assert int(blocked.headers["Retry-After"]) >= 1
    elsewhere = client.get(
        "/v1/accounts/me", headers=supervisor.headers, environ_base={"REMOTE_ADDR": fresh_address()}
    )
    assert elsewhere.status_code == 200


def test_wrong_claim_secrets_count_as_failures(
    app: Flask, client: FlaskClient, admin: Agent
) -> None:
    limit = int(runtime_of(app).settings.auth_failure_rate_limit.split()[0])
    kim = f"kim-{uuid.uuid4().hex[:8]}@example.org"
    staff = client.post(
        "/v1/staff",
        json={
            "role": "curator",
            "person": {
                "first_name": "Kim",
                "last_name": "Ng",
                "phone": "+4930901820",
                "email": kim,
                "job_title": "Curator",
            },
        },
        headers=admin.headers,
    ).get_json()
    secret = mailed_secret(client, kim)
    address = fresh_address()
    path = f"/v1/account-requests/{staff['id']}/claim"
    for _ in range(limit):
        wrong = client.post(
            path, json={"claim_secret": "fwc_" + "b" * 52}, environ_base={"REMOTE_ADDR": address}
        )
        assert wrong.status_code == 403
    blocked = client.post(
        path, json={"claim_secret": secret}, environ_base={"REMOTE_ADDR": address}
    )
    problem(blocked, 429)
    ok = client.post(
        path,
        json={"claim_secret": secret},
        environ_base={"REMOTE_ADDR": fresh_address()},
    )
    assert ok.status_code == 201


def test_staff_keep_their_own_credentials(client: FlaskClient, admin: Agent) -> None:
    oversight = make_staff(client, admin, "oversight")
    mine = client.get("/v1/credentials", headers=oversight.headers).get_json()["items"]
    assert [c["account_id"] for c in mine] == [str(oversight.account_id)]
    assert problem(
        client.get(f"/v1/credentials?account_id={admin.account_id}", headers=oversight.headers),
        404,
    )


def test_another_agencys_credential_costs_what_a_missing_one_costs(
    app: Flask, client: FlaskClient, admin: Agent, supervisor: Agent
) -> None:
    other = make_agency(client, admin)

    def measured(method: str, credential: object) -> tuple[object, list[str]]:
        client.get("/v1/accounts/me", headers=supervisor.headers)  # last_used_at is now fresh
        path = f"/v1/credentials/{credential}"
        return sql_statements(
            app, lambda: client.open(path, method=method, headers=supervisor.headers)
        )

    for method in ("GET", "DELETE"):
        theirs, queried_theirs = measured(method, other.credential_id)
        absent, queried_absent = measured(method, uuid4())
        assert problem(theirs, 404)["detail"] == problem(absent, 404)["detail"]
        assert queried_theirs == queried_absent
