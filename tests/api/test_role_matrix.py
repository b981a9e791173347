"""Every endpoint x every role x own/other agency answers as the permission table says.

The endpoints come from ``app.url_map``: a new endpoint without a row in ``MATRIX`` fails
``test_every_endpoint_is_in_the_matrix``, so nothing ships unguarded. Objects another agency
owns answer 404, never 403, so their existence stays hidden. Requests that are expected to
succeed act on fresh objects; refused ones reuse the shared world (a refusal changes nothing).
"""

from __future__ import annotations

import io
import itertools
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from api.auth import PUBLIC_ATTRIBUTE, REQUIRED_ATTRIBUTE
from governance.identity.permissions import PERMISSIONS, Permission, Role
from tests.api.faces import enroll, variant
from tests.api.helpers import (
    Agent,
    decide,
    fresh_address,
    mailed_secret,
    make_account,
    make_admin,
    make_agency,
    make_staff,
    person,
    registration_body,
    submit,
    two_admins,
)
from tests.conftest import shared_path

ROLES = ("admin", "oversight", "curator", "supervisor", "investigator")
# Endpoints of the platform itself, public by design and owned elsewhere.
INFRASTRUCTURE = {
    "/",  # leads people to the console
    "/healthz",
    "/readyz",
    "/openapi.json",
    "/docs",
    "/docs/static/<path:filename>",
    "/static/<path:filename>",
}


@dataclass
class World:
    client: FlaskClient
    admin: Agent
    proposer: Agent  # a second administrator, whose proposals the callers decide
    agents: dict[str, Agent]
    supervisors: dict[str, Agent]  # "own" (agency A, the callers') and "other" (agency B)
    investigators: dict[str, Agent]
    requester: Agent  # an admin who asks for probe erasures the admin caller then confirms


@pytest.fixture(scope="module")
def world(app: Flask) -> World:
    client = app.test_client()
    admin = make_admin(app)
    sup_a, sup_b = make_agency(client, admin), make_agency(client, admin)
    inv_a = make_account(client, admin, sup_a, "investigator")
    inv_b = make_account(client, admin, sup_b, "investigator")
    agents = {
        "admin": admin,
        "oversight": make_staff(client, admin, "oversight"),
        "curator": make_staff(client, admin, "curator"),
        "supervisor": sup_a,
        "investigator": inv_a,
    }
    return World(
        client,
        admin,
        make_admin(app),
        agents,
        {"own": sup_a, "other": sup_b},
        {"own": inv_a, "other": inv_b},
        make_admin(app),
    )


Request = tuple[str, dict[str, Any] | None]
Make = Callable[[World, str, bool], Request]
REASON = {"reason": "reviewed by the matrix"}


def _pending_registration(w: World) -> str:
    return f"/v1/registrations/{submit(w.client)['id']}"


def _approved_registration(w: World) -> tuple[str, str]:
    body = registration_body()
    receipt = submit(w.client, body)
    path = f"/v1/registrations/{receipt['id']}"
    decide(w.client, w.admin, path, "approve")
    return path, body["contact"]["email"]


def _claimable_registration(w: World, _t: str, _f: bool) -> Request:
    path, address = _approved_registration(w)
    return f"{path}/claim", {"claim_secret": mailed_secret(w.client, address)}


def _pending_request(w: World, target: str) -> tuple[str, str]:
    someone = person()
    response = w.client.post(
        "/v1/account-requests",
        json={"role": "investigator", "person": someone},
        headers=w.supervisors[target].headers,
    )
    body = response.get_json()
    return f"/v1/account-requests/{body['id']}", someone["email"]


def _approved_request(w: World, target: str) -> tuple[str, str]:
    path, address = _pending_request(w, target)
    decide(w.client, w.admin, path, "approve")
    return path, address


def _claimable_request(w: World, target: str, _f: bool) -> Request:
    path, address = _approved_request(w, target)
    return f"{path}/claim", {"claim_secret": mailed_secret(w.client, address)}


def _proposal(w: World, target: str, fresh: bool) -> str:
    """A proposal of the second administrator: to suspend a fresh agency when ``fresh``."""
    agency = _agency(w, target, fresh).rsplit("/", 1)[1]
    response = w.client.post(
        "/v1/proposals",
        json={"action": "agency:suspend", "target_id": agency, **REASON},
        headers=w.proposer.headers,
    )
    if response.status_code == 409:  # the shared agency's proposal, made before
        pending = w.client.get("/v1/proposals?status=pending&limit=100", headers=w.admin.headers)
        made = next(p for p in pending.get_json()["items"] if p["target_id"] == agency)
        return f"/v1/proposals/{made['id']}"
    assert response.status_code == 201, response.get_json()
    return f"/v1/proposals/{response.get_json()['id']}"


def _account(w: World, target: str, fresh: bool, *, suspended: bool = False) -> str:
    if not fresh:
        return f"/v1/accounts/{w.investigators[target].account_id}"
    path, _ = _pending_request(w, target)
    account = decide(w.client, w.admin, path, "approve")["account_id"]
    if suspended:
        decide(w.client, w.admin, f"/v1/accounts/{account}", "suspend")
    return f"/v1/accounts/{account}"


def _agency(w: World, target: str, fresh: bool, *, suspended: bool = False) -> str:
    if not fresh:
        return f"/v1/agencies/{w.supervisors[target].agency_id}"
    approved = decide(w.client, w.admin, _pending_registration(w), "approve")
    path = f"/v1/agencies/{approved['agency_id']}"
    if suspended:
        two_admins(w.client, w.admin, "agency:suspend", approved["agency_id"])
    return path


def _credential(w: World, target: str, fresh: bool) -> str:
    owner = w.supervisors[target]
    if not fresh:
        return f"/v1/credentials/{owner.credential_id}"
    issued = w.client.post("/v1/credentials", json={}, headers=owner.headers).get_json()
    return f"/v1/credentials/{issued['credential']['id']}"


MULTIPART = "__multipart__"
_made: dict[str, str] = {}
_agents: dict[str, Agent] = {}
_sites = itertools.count(1)


def _face_photo() -> bytes:
    photos = shared_path() / "faces" / "dev"
    if not photos.is_dir():
        pytest.skip(f"gallery endpoints need real face photos under {photos}")
    return variant(next(iter(sorted(photos.glob("*.jpg")))))


def _multipart(**fields: Any) -> dict[str, Any]:
    return {MULTIPART: True, **fields}


def _photo(w: World, fresh: bool = False) -> dict[str, Any]:
    """A gallery photo: a new one when ``fresh``, else one made once for read checks."""
    if fresh or "photo" not in _made:
        response = enroll(w.client, w.agents["curator"], _face_photo())
        assert response.status_code == 201, response.get_json()
        if fresh:
            return dict(response.get_json())
        _made["photo"] = response.get_data(as_text=True)
    return dict(json.loads(_made["photo"]))


def _policy_site(w: World) -> str:
    if "site" not in _made:
        site = f"matrix-{next(_sites)}.example.org"
        response = w.client.post(
            "/v1/source-policies",
            json={"site": site, "status": "allowed", "reason": "r", "reference": "ref"},
            headers=w.admin.headers,
        )
        assert response.status_code == 200, response.get_json()
        _made["site"] = site
    return _made["site"]


def _erasure(w: World) -> str:
    if "erasure" not in _made:
        photo = _photo(w, fresh=True)
        response = _call(
            w,
            "POST",
            "/v1/erasures",
            _multipart(kind="photo", photo_id=photo["id"], reason="matrix"),
            w.admin,
        )
        assert response.status_code == 201, response.get_json()
        _made["erasure"] = response.get_json()["id"]
    return f"/v1/erasures/{_made['erasure']}"


def _preview_form() -> dict[str, Any]:
    return _multipart(
        image=(io.BytesIO(_face_photo()), "probe.png"), request_reference="DSR-M", reason="matrix"
    )


def _previewed(w: World) -> dict[str, Any]:
    """A fresh probe erasure request, asked for by an admin other than the matrix's callers,
    and ``face``: its match on a photo of its own (other requests' erasures leave it alone)."""
    face = _photo(w, fresh=True)["faces"][0]["id"]
    response = _call(w, "POST", "/v1/erasures/preview", _preview_form(), w.requester)
    assert response.status_code == 201, response.get_json()
    assert face in {m["face_id"] for m in response.get_json()["matches"]}
    return {**response.get_json(), "face": face}


def _erasure_request(w: World, suffix: str = "") -> str:
    if "erasure-request" not in _made:
        _made["erasure-request"] = json.dumps(_previewed(w))
    made = json.loads(_made["erasure-request"])
    return f"/v1/erasures/requests/{made['id']}" + suffix.format(face=made["face"])


def _confirm_fresh(w: World, _t: str, fresh: bool) -> Request:
    made = _previewed(w) if fresh else json.loads(_made.get("erasure-request") or "{}")
    if not made:
        _erasure_request(w)
        made = json.loads(_made["erasure-request"])
    body = {"face_ids": [made["face"]], "reason": "matrix"}
    return f"/v1/erasures/requests/{made['id']}/confirm", body


def _erase_fresh(w: World, _t: str, fresh: bool) -> Request:
    photo_id = _photo(w, fresh=True)["id"] if fresh else str(uuid.uuid4())
    return "/v1/erasures", _multipart(kind="photo", photo_id=photo_id, reason="matrix")


def _basis_body(kind: str = "judicial") -> dict[str, Any]:
    now = datetime.now(UTC)
    authorisation: dict[str, Any] = {
        "kind": kind,
        "issued_at": (now - timedelta(hours=1)).isoformat(),
        "expires_at": (now + timedelta(days=7)).isoformat(),
    }
    if kind != "urgent":
        authorisation |= {"reference": "JLD-MATRIX", "authority": "Tribunal judiciaire"}
    return {
        "case_number": "MATRIX-1",
        "offence_category": "terrorism",
        "legal_provision": "Art. 706-73 CPP",
        "authorisation": authorisation,
        "justification": "Matrix check of who may act on a legal basis, well over fifty chars.",
        "max_searches": 3,
    }


def _basis(w: World, target: str, kind: str = "judicial") -> str:
    """A fresh pending basis recorded by the target agency's investigator."""
    response = w.client.post(
        "/v1/legal-bases", json=_basis_body(kind), headers=w.investigators[target].headers
    )
    assert response.status_code == 201, response.get_json()
    return f"/v1/legal-bases/{response.get_json()['id']}"


def _ratification() -> dict[str, Any]:
    now = datetime.now(UTC)
    return {
        "outcome": "granted",
        "reference": "JLD-MATRIX-R",
        "authority": "Juge des libertés",
        "issued_at": now.isoformat(),
        "expires_at": (now + timedelta(days=30)).isoformat(),
    }


def _approved_basis(w: World, target: str) -> str:
    path = _basis(w, target)
    decided = w.client.post(path + "/approve", json=REASON, headers=w.supervisors[target].headers)
    assert decided.status_code == 200, decided.get_json()
    return path.rsplit("/", 1)[1]


def _searcher(w: World, target: str) -> Agent:
    """An investigator of the target agency who runs the matrix's searches (not a caller)."""
    key = f"searcher-{target}"
    if key not in _agents:
        _agents[key] = make_account(w.client, w.admin, w.supervisors[target], "investigator")
    return _agents[key]


def _search_form(basis_id: str) -> dict[str, Any]:
    return _multipart(
        image=(io.BytesIO(_face_photo()), "probe.png"),
        legal_basis_id=basis_id,
        purpose="matrix check",
        top_k="1",
    )


def _search(w: World, target: str) -> dict[str, Any]:
    """A fresh search with one candidate, run in the target agency by its searcher."""
    _photo(w)  # the gallery holds at least one face
    response = _call(
        w, "POST", "/v1/searches", _search_form(_approved_basis(w, target)), _searcher(w, target)
    )
    assert response.status_code == 201, response.get_json()
    return dict(response.get_json())


def _search_path(w: World, target: str, suffix: str = "") -> str:
    key = f"search-{target}"
    if key not in _made:
        _made[key] = json.dumps(_search(w, target))
    made = json.loads(_made[key])
    face = made["candidates"][0]["face_id"]
    return f"/v1/searches/{made['id']}" + suffix.format(face=face)


def _review(w: World, target: str, fresh: bool) -> Request:
    made = _search(w, target) if fresh else json.loads(_made.get(f"search-{target}") or "{}")
    if not made:
        made = _search(w, target)
        _made[f"search-{target}"] = json.dumps(made)
    face = made["candidates"][0]["face_id"]
    body = {"reviews": [{"face_id": face, "verdict": "possible_match", "note": "matrix"}]}
    return f"/v1/searches/{made['id']}/reviews", body


def at(path: str, body: dict[str, Any] | None = None) -> Make:
    return lambda _w, _t, _f: (path, body)


# status for (own agency, other agency); a bare int means the same for both.
Expect = dict[str, int | tuple[int, int]]
PUBLIC = "public"


def only(role_status: dict[str, int | tuple[int, int]], default: int = 403) -> Expect:
    return {role: role_status.get(role, default) for role in ROLES}


MATRIX: dict[tuple[str, str], tuple[Make, Expect | str]] = {
    ("/v1/registrations", "GET"): (at("/v1/registrations"), only({"admin": 200})),
    ("/v1/registrations", "POST"): (
        lambda _w, _t, _f: ("/v1/registrations", registration_body()),
        PUBLIC,
    ),
    ("/v1/registrations/<uuid:registration_id>", "GET"): (
        lambda w, _t, _f: (_pending_registration(w), None),
        only({"admin": 200}),
    ),
    ("/v1/registrations/<uuid:registration_id>/approve", "POST"): (
        lambda w, _t, _f: (_pending_registration(w) + "/approve", REASON),
        only({"admin": 200}),
    ),
    ("/v1/registrations/<uuid:registration_id>/reject", "POST"): (
        lambda w, _t, _f: (_pending_registration(w) + "/reject", REASON),
        only({"admin": 200}),
    ),
    ("/v1/registrations/<uuid:registration_id>/claim", "POST"): (_claimable_registration, PUBLIC),
    ("/v1/registrations/<uuid:registration_id>/resend", "POST"): (
        lambda w, _t, _f: (_approved_registration(w)[0] + "/resend", None),
        only({"admin": 200}),
    ),
    ("/v1/account-requests", "POST"): (
        lambda _w, _t, _f: ("/v1/account-requests", {"role": "investigator", "person": person()}),
        only({"supervisor": 202}),
    ),
    ("/v1/account-requests", "GET"): (
        at("/v1/account-requests"),
        only({"admin": 200, "supervisor": 200}),
    ),
    ("/v1/account-requests/<uuid:request_id>", "GET"): (
        lambda w, t, _f: (_pending_request(w, t)[0], None),
        only({"admin": 200, "supervisor": (200, 404)}),
    ),
    ("/v1/account-requests/<uuid:request_id>/approve", "POST"): (
        lambda w, t, _f: (_pending_request(w, t)[0] + "/approve", REASON),
        only({"admin": 200}),
    ),
    ("/v1/account-requests/<uuid:request_id>/reject", "POST"): (
        lambda w, t, _f: (_pending_request(w, t)[0] + "/reject", REASON),
        only({"admin": 200}),
    ),
    ("/v1/account-requests/<uuid:request_id>/claim", "POST"): (_claimable_request, PUBLIC),
    ("/v1/account-requests/<uuid:request_id>/resend", "POST"): (
        lambda w, t, _f: (_approved_request(w, t)[0] + "/resend", None),
        only({"admin": 200}),
    ),
    ("/v1/staff", "POST"): (
        lambda _w, _t, _f: ("/v1/staff", {"role": "curator", "person": person()}),
        only({"admin": 201}),
    ),
    ("/v1/accounts", "GET"): (at("/v1/accounts"), only({}, default=200)),
    ("/v1/accounts/me", "GET"): (at("/v1/accounts/me"), only({}, default=200)),
    ("/v1/accounts/<uuid:account_id>", "GET"): (
        lambda w, t, _f: (f"/v1/accounts/{w.supervisors[t].account_id}", None),
        only({"admin": 200, "oversight": 200, "supervisor": (200, 404)}, default=404),
    ),
    ("/v1/accounts/<uuid:account_id>/suspend", "POST"): (
        lambda w, t, f: (_account(w, t, f) + "/suspend", REASON),
        only({"admin": 200}),
    ),
    ("/v1/accounts/<uuid:account_id>/reinstate", "POST"): (
        lambda w, t, f: (_account(w, t, f, suspended=True) + "/reinstate", REASON),
        only({"admin": 200}),
    ),
    ("/v1/agencies", "GET"): (at("/v1/agencies"), only({"curator": 403}, default=200)),
    ("/v1/agencies/<uuid:agency_id>", "GET"): (
        lambda w, t, _f: (f"/v1/agencies/{w.supervisors[t].agency_id}", None),
        only(
            {"admin": 200, "oversight": 200, "supervisor": (200, 404), "investigator": (200, 404)}
        ),
    ),
    ("/v1/agencies/<uuid:agency_id>/suspend", "POST"): (
        lambda w, t, f: (_agency(w, t, f) + "/suspend", REASON),
        only({"admin": 202}),
    ),
    ("/v1/proposals", "POST"): (
        lambda w, t, f: (
            "/v1/proposals",
            {
                "action": "agency:suspend",
                "target_id": _agency(w, t, f).rsplit("/", 1)[1],
                **REASON,
            },
        ),
        only({"admin": 201}),
    ),
    ("/v1/proposals", "GET"): (at("/v1/proposals"), only({"admin": 200, "oversight": 200})),
    ("/v1/proposals/<uuid:proposal_id>", "GET"): (
        lambda w, t, _f: (_proposal(w, t, False), None),
        only({"admin": 200, "oversight": 200}),
    ),
    ("/v1/proposals/<uuid:proposal_id>/confirm", "POST"): (
        lambda w, t, f: (_proposal(w, t, f) + "/confirm", REASON),
        only({"admin": 200}),
    ),
    ("/v1/proposals/<uuid:proposal_id>/reject", "POST"): (
        lambda w, t, f: (_proposal(w, t, f) + "/reject", REASON),
        only({"admin": 200}),
    ),
    ("/v1/agencies/<uuid:agency_id>/reinstate", "POST"): (
        lambda w, t, f: (_agency(w, t, f, suspended=True) + "/reinstate", REASON),
        only({"admin": 200}),
    ),
    ("/v1/credentials", "GET"): (at("/v1/credentials"), only({}, default=200)),
    ("/v1/credentials", "POST"): (at("/v1/credentials", {}), only({}, default=201)),
    ("/v1/credentials/<uuid:credential_id>", "GET"): (
        lambda w, t, f: (_credential(w, t, f), None),
        only({"admin": 200, "supervisor": (200, 404)}, default=404),
    ),
    ("/v1/credentials/<uuid:credential_id>", "DELETE"): (
        lambda w, t, f: (_credential(w, t, f), None),
        only({"admin": 204, "supervisor": (204, 404)}, default=404),
    ),
    ("/v1/gallery/photos", "POST"): (
        lambda _w, _t, _f: (
            "/v1/gallery/photos",
            _multipart(
                image=(io.BytesIO(_face_photo()), "p.png"),
                source_url="https://matrix.example.org/p.png",
                collected_at="2026-01-01T00:00:00Z",
                collection_basis="consent",
            ),
        ),
        only({"curator": 201}),
    ),
    ("/v1/gallery/photos", "GET"): (at("/v1/gallery/photos"), only({"curator": 200})),
    ("/v1/gallery/photos/<uuid:photo_id>", "GET"): (
        lambda w, _t, _f: (f"/v1/gallery/photos/{_photo(w)['id']}", None),
        only({"curator": 200}),
    ),
    ("/v1/gallery/photos/<uuid:photo_id>/image", "GET"): (
        lambda w, _t, _f: (f"/v1/gallery/photos/{_photo(w)['id']}/image", None),
        only({"curator": 200}),
    ),
    ("/v1/gallery/faces/<uuid:face_id>", "GET"): (
        lambda w, _t, _f: (f"/v1/gallery/faces/{_photo(w)['faces'][0]['id']}", None),
        only({"curator": 200}),
    ),
    ("/v1/gallery/faces/<uuid:face_id>/thumbnail", "GET"): (
        lambda w, _t, _f: (f"/v1/gallery/faces/{_photo(w)['faces'][0]['id']}/thumbnail", None),
        only({"curator": 200}),
    ),
    ("/v1/source-policies", "POST"): (
        lambda _w, _t, _f: (
            "/v1/source-policies",
            {
                "site": f"matrix-{next(_sites)}.example.org",
                "status": "allowed",
                "reason": "matrix",
                "reference": "ref",
            },
        ),
        only({"admin": 200}),
    ),
    ("/v1/source-policies", "GET"): (
        at("/v1/source-policies"),
        only({"admin": 200, "oversight": 200, "curator": 200}),
    ),
    ("/v1/source-policies/<string:site>", "GET"): (
        lambda w, _t, _f: (f"/v1/source-policies/{_policy_site(w)}", None),
        only({"admin": 200, "oversight": 200, "curator": 200}),
    ),
    ("/v1/erasures/preview", "POST"): (
        lambda _w, _t, _f: ("/v1/erasures/preview", _preview_form()),
        only({"admin": 201}),
    ),
    ("/v1/erasures/requests/<uuid:request_id>", "GET"): (
        lambda w, _t, _f: (_erasure_request(w), None),
        only({"admin": 200}),
    ),
    ("/v1/erasures/requests/<uuid:request_id>/faces/<uuid:face_id>/thumbnail", "GET"): (
        lambda w, _t, _f: (_erasure_request(w, "/faces/{face}/thumbnail"), None),
        only({"admin": 200}),
    ),
    ("/v1/erasures/requests/<uuid:request_id>/confirm", "POST"): (
        _confirm_fresh,
        only({"admin": 201}),
    ),
    ("/v1/erasures", "POST"): (_erase_fresh, only({"admin": 201})),
    ("/v1/searches", "POST"): (
        lambda w, t, f: ("/v1/searches", _search_form(_approved_basis(w, t))),
        only({"supervisor": (201, 404), "investigator": (201, 404)}),
    ),
    ("/v1/searches", "GET"): (at("/v1/searches"), only({"supervisor": 200, "investigator": 200})),
    ("/v1/searches/<uuid:search_id>", "GET"): (
        lambda w, t, _f: (_search_path(w, t), None),
        only({"supervisor": (200, 404), "investigator": (200, 404)}),
    ),
    ("/v1/searches/<uuid:search_id>/receipt", "GET"): (
        lambda w, t, _f: (_search_path(w, t, "/receipt"), None),
        only({"supervisor": (200, 404), "investigator": (200, 404)}),
    ),
    ("/v1/searches/<uuid:search_id>/reviews", "POST"): (
        _review,
        only({"supervisor": (201, 404), "investigator": (201, 404)}),
    ),
    ("/v1/searches/<uuid:search_id>/candidates/<uuid:face_id>/thumbnail", "GET"): (
        lambda w, t, _f: (_search_path(w, t, "/candidates/{face}/thumbnail"), None),
        only({"supervisor": (200, 404), "investigator": (200, 404)}),
    ),
    ("/v1/searches/<uuid:search_id>/candidates/<uuid:face_id>/photo", "GET"): (
        lambda w, t, _f: (_search_path(w, t, "/candidates/{face}/photo"), None),
        only({"supervisor": (200, 404), "investigator": (200, 404)}),
    ),
    ("/v1/erasures/<uuid:erasure_id>", "GET"): (
        lambda w, _t, _f: (_erasure(w), None),
        only({"admin": 200}),
    ),
    ("/v1/legal-bases", "POST"): (
        lambda _w, _t, _f: ("/v1/legal-bases", _basis_body()),
        only({"supervisor": 201, "investigator": 201}),
    ),
    ("/v1/legal-bases", "GET"): (
        at("/v1/legal-bases"),
        only({"oversight": 200, "supervisor": 200, "investigator": 200}),
    ),
    ("/v1/legal-bases/offence-categories", "GET"): (
        at("/v1/legal-bases/offence-categories"),
        only({"oversight": 200, "supervisor": 200, "investigator": 200}),
    ),
    ("/v1/legal-bases/<uuid:basis_id>", "GET"): (
        lambda w, t, _f: (_basis(w, t), None),
        only({"oversight": 200, "supervisor": (200, 404), "investigator": (200, 404)}),
    ),
    ("/v1/legal-bases/<uuid:basis_id>/approve", "POST"): (
        lambda w, t, _f: (_basis(w, t) + "/approve", REASON),
        only({"supervisor": (200, 404)}),
    ),
    ("/v1/legal-bases/<uuid:basis_id>/reject", "POST"): (
        lambda w, t, _f: (_basis(w, t) + "/reject", REASON),
        only({"supervisor": (200, 404)}),
    ),
    ("/v1/legal-bases/<uuid:basis_id>/revoke", "POST"): (
        lambda w, t, _f: (_basis(w, t) + "/revoke", REASON),
        only({"supervisor": (200, 404)}),
    ),
    ("/v1/legal-bases/<uuid:basis_id>/ratification", "POST"): (
        lambda w, t, _f: (_basis(w, t, "urgent") + "/ratification", _ratification()),
        only({"supervisor": (200, 404)}),
    ),
    ("/v1/ledger/checkpoint", "GET"): (at("/v1/ledger/checkpoint"), PUBLIC),
    ("/v1/ledger/keys", "GET"): (at("/v1/ledger/keys"), PUBLIC),
    ("/v1/ledger/tile/<path:path>", "GET"): (at("/v1/ledger/tile/0/000.p/1"), PUBLIC),
    ("/v1/ledger/tile/entries/<path:path>", "GET"): (
        at("/v1/ledger/tile/entries/000.p/1"),
        only({"admin": 200, "oversight": 200}),
    ),
    ("/v1/ledger/entries", "GET"): (
        at("/v1/ledger/entries?start=0&end=2"),
        only({"admin": 200, "oversight": 200}),
    ),
    ("/v1/ledger/entries/<int:seq>", "GET"): (
        at("/v1/ledger/entries/0"),
        only({"admin": 200, "oversight": 200}),
    ),
    ("/v1/ledger/checkpoints/<int:size>", "GET"): (
        at("/v1/ledger/checkpoints/1"),
        only({"admin": 200, "oversight": 200}),
    ),
    ("/v1/ledger/proofs/inclusion", "GET"): (
        at("/v1/ledger/proofs/inclusion?seq=0&size=2"),
        only({"admin": 200, "oversight": 200}),
    ),
    ("/v1/ledger/proofs/consistency", "GET"): (
        at("/v1/ledger/proofs/consistency?from=1&to=2"),
        only({"admin": 200, "oversight": 200}),
    ),
    ("/v1/oversight/reports", "GET"): (
        at("/v1/oversight/reports?from=2020-01-01"),
        only({"admin": 200, "oversight": 200}),
    ),
}


def _endpoints(app: Flask) -> set[tuple[str, str]]:
    found = set()
    for rule in app.url_map.iter_rules():
        if rule.rule in INFRASTRUCTURE or rule.rule.startswith("/console/"):
            continue  # the console's pages have a matrix of their own (tests/console)
        for method in rule.methods or ():
            if method not in ("HEAD", "OPTIONS"):
                found.add((rule.rule, method))
    return found


def _view(app: Flask, path: str, method: str) -> Any:
    rule = next(r for r in app.url_map.iter_rules() if r.rule == path)
    view = app.view_functions[rule.endpoint]
    return getattr(getattr(view, "view_class"), method.lower())  # noqa: B009


def test_every_endpoint_is_in_the_matrix(app: Flask) -> None:
    missing = _endpoints(app) - set(MATRIX)
    assert not missing, f"add these endpoints to MATRIX (and guard them): {sorted(missing)}"
    assert not set(MATRIX) - _endpoints(app), "MATRIX lists endpoints that no longer exist"


@pytest.mark.parametrize(("path", "method"), sorted(MATRIX))
def test_declared_guard_agrees_with_the_matrix(app: Flask, path: str, method: str) -> None:
    view = _view(app, path, method)
    _, expect = MATRIX[(path, method)]
    if expect == PUBLIC:
        assert getattr(view, PUBLIC_ATTRIBUTE, False), "public endpoints must say so (@public)"
        assert getattr(view, REQUIRED_ATTRIBUTE, None) is None
        return
    permission = getattr(view, REQUIRED_ATTRIBUTE, None)
    assert isinstance(permission, Permission), "guard the view with @require(Permission.X)"
    assert isinstance(expect, dict)
    for role, status in expect.items():
        holds = Role(role) in PERMISSIONS[permission]
        refused = status == 403 or status == (403, 403)
        assert holds != refused, (role, permission, status)


def _call(
    w: World, method: str, path: str, body: dict[str, Any] | None, agent: Agent | None
) -> Any:
    headers = agent.headers if agent else {}
    environ = {"REMOTE_ADDR": fresh_address()}
    if body is not None and body.get(MULTIPART):
        fields = {k: v for k, v in body.items() if k != MULTIPART}
        return w.client.open(
            path,
            method=method,
            data=fields,
            content_type="multipart/form-data",
            headers=headers,
            environ_base=environ,
        )
    return w.client.open(path, method=method, json=body, headers=headers, environ_base=environ)


@pytest.mark.parametrize(("path", "method"), sorted(MATRIX))
def test_role_matrix(world: World, path: str, method: str) -> None:
    make, expect = MATRIX[(path, method)]
    failures: list[tuple[Any, ...]] = []
    anonymous_path, anonymous_body = make(world, "own", expect == PUBLIC)
    anonymous = _call(world, method, anonymous_path, anonymous_body, None)
    if expect == PUBLIC:
        wanted = 200 if method == "GET" else 201 if "claim" in path else 202
        if anonymous.status_code != wanted:
            failures.append(("anonymous", wanted, anonymous.status_code))
        for role in ROLES:  # a key changes nothing on a public endpoint
            p, b = make(world, "own", True)
            got = _call(world, method, p, b, world.agents[role]).status_code
            if got != wanted:
                failures.append((role, wanted, got))
    else:
        assert isinstance(expect, dict)
        if anonymous.status_code != 401 or "Bearer" not in anonymous.headers.get(
            "WWW-Authenticate", ""
        ):
            failures.append(("anonymous", 401, anonymous.status_code))
        for role in ROLES:
            statuses = expect[role]
            own, other = statuses if isinstance(statuses, tuple) else (statuses, statuses)
            for target, wanted in (("own", own), ("other", other)):
                p, b = make(world, target, wanted < 300)
                got = _call(world, method, p, b, world.agents[role])
                if got.status_code != wanted:
                    failures.append((role, target, wanted, got.status_code, got.get_json()))
    assert not failures, failures
