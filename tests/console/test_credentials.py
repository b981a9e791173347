"""The console's API keys page: list one's own keys, create one (shown once), revoke one."""

from __future__ import annotations

import re

from flask import Flask
from flask.testing import FlaskClient

from governance.identity.credentials import MAX_ACTIVE_CREDENTIALS
from tests.api.helpers import bearer, make_admin, make_agency
from tests.console.conftest import signed_in

PAGE = "/console/api-keys"
_KEY = re.compile(r'value="(fw_[A-Za-z0-9_-]+)"')


def _created_key(html: str) -> str:
    match = _KEY.search(html)
    assert match is not None, html
    return match.group(1)


def test_a_new_key_is_shown_once_uncached_and_works(app: Flask, client: FlaskClient) -> None:
    supervisor = make_agency(client, make_admin(app))
    visitor = signed_in(app, supervisor)

    answer = visitor.post(PAGE, {"label": "case management system"})

    assert answer.status_code == 201
    assert answer.headers["Cache-Control"] == "no-store"
    html = answer.get_data(as_text=True)
    assert "Copy this key now" in html
    key = _created_key(html)
    me = client.get("/v1/accounts/me", headers=bearer(key))
    assert me.status_code == 200
    assert me.get_json()["id"] == str(supervisor.account_id)
    # The list names the key but never shows it again.
    listing = visitor.get(PAGE)
    assert listing.status_code == 200
    page = listing.get_data(as_text=True)
    assert "case management system" in page
    assert key not in page
    assert key.split("_")[2] not in page  # not even its secret part


def test_the_list_shows_only_ones_own_keys_with_their_status(
    app: Flask, client: FlaskClient
) -> None:
    admin = make_admin(app)
    supervisor = make_agency(client, admin)
    other = make_agency(client, admin)
    visitor = signed_in(app, supervisor)

    page = visitor.get(PAGE).get_data(as_text=True)

    own = client.get("/v1/credentials", headers=supervisor.headers).get_json()["items"]
    theirs = client.get("/v1/credentials", headers=other.headers).get_json()["items"]
    assert all(f"fw_{c['lookup_id']}_" in page for c in own)
    assert not any(c["lookup_id"] in page for c in theirs)
    assert page.count(">Revoke <") == len([c for c in own if c["status"] == "active"])


def test_revoking_a_key_stops_it_at_once(app: Flask, client: FlaskClient) -> None:
    supervisor = make_agency(client, make_admin(app))
    visitor = signed_in(app, supervisor)
    assert supervisor.credential_id is not None

    answer = visitor.post(f"{PAGE}/{supervisor.credential_id}/revoke")

    assert answer.status_code == 303
    assert answer.headers["Location"] == f"{PAGE}?done=revoked"
    assert client.get("/v1/accounts/me", headers=supervisor.headers).status_code == 401
    page = visitor.get(answer.headers["Location"]).get_data(as_text=True)
    assert "The API key is revoked" in page
    again = visitor.post(f"{PAGE}/{supervisor.credential_id}/revoke")
    assert again.status_code == 409
    assert "already revoked" in again.get_data(as_text=True)


def test_another_persons_key_cannot_be_revoked(app: Flask, client: FlaskClient) -> None:
    admin = make_admin(app)
    supervisor = make_agency(client, admin)
    other = make_agency(client, admin)
    visitor = signed_in(app, supervisor)

    answer = visitor.post(f"{PAGE}/{other.credential_id}/revoke")

    assert answer.status_code == 404  # outside one's reach, as the API answers
    assert "No such credential." in answer.get_data(as_text=True)  # the HTML error page
    assert client.get("/v1/accounts/me", headers=other.headers).status_code == 200


def test_a_bad_label_is_shown_beside_the_field(app: Flask, client: FlaskClient) -> None:
    visitor = signed_in(app, make_agency(client, make_admin(app)))

    answer = visitor.post(PAGE, {"label": "x" * 101})

    assert answer.status_code == 422
    html = answer.get_data(as_text=True)
    assert 'aria-invalid="true"' in html
    assert 'id="label-error"' in html
    assert _KEY.search(html) is None  # no key was made


def test_too_many_keys_are_refused_on_the_page(app: Flask, client: FlaskClient) -> None:
    visitor = signed_in(app, make_agency(client, make_admin(app)))
    for n in range(MAX_ACTIVE_CREDENTIALS - 1):  # the claimed key is the first
        assert visitor.post(PAGE, {"label": f"key {n}"}).status_code == 201

    answer = visitor.post(PAGE, {"label": "one too many"})

    assert answer.status_code == 409
    assert f"at most {MAX_ACTIVE_CREDENTIALS} active credentials" in answer.get_data(as_text=True)
