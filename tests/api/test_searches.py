"""The governed search: candidates under a legal basis, a verifiable receipt, every refusal on
record, thumbnails only for what was found, and two-person review."""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from flask import Flask
from flask.testing import FlaskClient
from PIL import Image
from sqlalchemy import select

from api.context import utcnow
from governance.core.db import unit_of_work
from ledger.receipt import verify_receipt
from ledger.storage import entries
from ledger.verify import VerificationError
from tests.api.bases import Team, act, approved, create, make_team, ok, principal_of
from tests.api.faces import dev_photos, enroll, variant
from tests.api.helpers import (
    Agent,
    decide,
    ledger_types,
    make_account,
    make_staff,
    person,
    problem,
    runtime_of,
    sql_statements,
)


@pytest.fixture(scope="module")
def team(app: Flask) -> Team:
    return make_team(app)


@pytest.fixture(scope="module")
def photos(shared_dir: Path) -> dict[str, list[Path]]:
    return dev_photos(shared_dir)


@pytest.fixture(scope="module")
def enrolled(app: Flask, team: Team, photos: dict[str, list[Path]]) -> dict[str, list[str]]:
    """Two photos each of a few people in the gallery: identity -> their face ids."""
    client = app.test_client()
    curator = make_staff(client, team.admin, "curator")
    faces: dict[str, list[str]] = {}
    for name in ("Orlando_Bloom", "Ryan_Reynolds", "Sally_Field", "Samuel_L_Jackson"):
        for i, path in enumerate(photos[name][:2]):
            url = f"https://people.example.org/{name}/{i}.jpg"
            response = enroll(client, curator, variant(path), url=url)
            assert response.status_code == 201, response.get_json()
            faces.setdefault(name, []).append(response.get_json()["faces"][0]["id"])
    return faces


def search(client: FlaskClient, agent: Agent, basis_id: str, image: bytes, **fields: Any) -> Any:
    data = {
        "image": (io.BytesIO(image), "probe.jpg"),
        "legal_basis_id": basis_id,
        "purpose": "identify the suspect in the CCTV still of 2026-11-20",
        **fields,
    }
    return client.post(
        "/v1/searches", data=data, content_type="multipart/form-data", headers=agent.headers
    )


def entry_at(app: Flask, seq: int) -> dict[str, Any]:
    with runtime_of(app).engine.connect() as conn:
        body = conn.execute(select(entries.c.body).where(entries.c.seq == seq)).scalar_one()
    return dict(json.loads(bytes(body)))


def last_entry(app: Flask) -> dict[str, Any]:
    with runtime_of(app).engine.connect() as conn:
        body = conn.execute(
            select(entries.c.body).order_by(entries.c.seq.desc()).limit(1)
        ).scalar_one()
    return dict(json.loads(bytes(body)))


def test_a_search_returns_ranked_leads_and_a_receipt_that_verifies_offline(
    app: Flask,
    client: FlaskClient,
    team: Team,
    enrolled: dict[str, list[str]],
    photos: dict[str, list[Path]],
) -> None:
    basis = approved(client, app, team)
    probe = photos["Orlando_Bloom"][2].read_bytes()
    response = search(client, team.inv, basis["id"], probe, top_k="5")
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert response.headers["Location"].endswith(f"/v1/searches/{body['id']}")

    candidates = body["candidates"]
    assert [c["rank"] for c in candidates] == list(range(1, len(candidates) + 1))
    assert candidates[0]["face_id"] in enrolled["Orlando_Bloom"]
    assert all(c["similarity"] >= body["threshold"] for c in candidates)
    assert candidates == sorted(candidates, key=lambda c: -c["similarity"])
    first = candidates[0]
    assert first["source_site"] == "example.org"
    assert first["source_url"].startswith("https://people.example.org/Orlando_Bloom/")
    assert (
        first["thumbnail"] == f"/v1/searches/{body['id']}/candidates/{first['face_id']}/thumbnail"
    )
    assert "investigative leads only" in body["statement"]
    assert body["gallery_size"] >= 8
    assert body["pack"]["name"] == runtime_of(app).model_pack.name
    assert body["probe_face"]["quality"]["size_px"] >= 40

    # The receipt proves, with the published key alone, that the log holds this search.
    receipt = body["receipt"]
    key = runtime_of(app).signer.verifier_key
    report = verify_receipt(receipt, [key])
    assert report.seq == receipt["seq"] and report.entry_type == "search:run"
    tampered = {**receipt, "entry": receipt["entry"].replace(first["face_id"], "0" * 36)}
    with pytest.raises(VerificationError):
        verify_receipt(tampered, [key])

    # The entry records the query and its result, never the image.
    entry = json.loads(receipt["entry"])
    payload = entry["payload"]
    assert entry["type"] == "search:run"
    assert payload["legal_basis_id"] == basis["id"]
    assert payload["case_number"] == basis["case_number"]
    assert payload["offence_category"] == basis["offence_category"]
    assert payload["authorisation"]["reference"] == "JLD-2026-1187"
    import hashlib

    assert payload["probe_sha256"] == hashlib.sha256(probe).hexdigest()
    assert [c["face_id"] for c in payload["candidates"]] == [c["face_id"] for c in candidates]
    assert payload["top_k"] == 5 and payload["gallery"]["size"] == body["gallery_size"]
    assert len(receipt["entry"]) < 8000  # ids and hashes, no image or embedding

    after = ok(client.get(f"/v1/legal-bases/{basis['id']}", headers=team.inv.headers))
    assert after["searches_used"] == 1


def test_several_faces_must_be_chosen(
    client: FlaskClient,
    app: Flask,
    team: Team,
    enrolled: dict[str, list[str]],
    photos: dict[str, list[Path]],
) -> None:
    left = Image.open(photos["Ryan_Reynolds"][3]).convert("RGB")
    right = Image.open(photos["Sally_Field"][3]).convert("RGB").resize(left.size)
    canvas = Image.new("RGB", (left.width * 2 + 40, left.height + 40), (255, 255, 255))
    canvas.paste(left, (10, 20))
    canvas.paste(right, (left.width + 30, 20))
    out = io.BytesIO()
    canvas.save(out, format="JPEG", quality=95)
    basis = approved(client, app, team)

    body = problem(search(client, team.inv, basis["id"], out.getvalue()), 422)
    assert body["type"] == "/problems/multiple-faces"
    assert len(body["faces"]) == 2
    right_box = max(body["faces"], key=lambda f: f["box"][0])
    chosen = search(
        client,
        team.inv,
        basis["id"],
        out.getvalue(),
        face_box=",".join(str(v) for v in right_box["box"]),
    )
    assert chosen.status_code == 201, chosen.get_json()
    assert chosen.get_json()["candidates"][0]["face_id"] in enrolled["Sally_Field"]
    by_index = search(
        client, team.inv, basis["id"], out.getvalue(), face_index=str(right_box["index"])
    )
    assert by_index.get_json()["candidates"][0]["face_id"] in enrolled["Sally_Field"]


def _blank() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (400, 300), (90, 90, 90)).save(out, format="PNG")
    return out.getvalue()


@pytest.mark.parametrize(
    ("make_image", "status", "reason"),
    [
        (lambda p: _blank(), 422, "no-face"),
        (lambda p: b"GIF89a....", 415, "unsupported-image-type"),
        (lambda p: p.read_bytes()[:300], 422, "invalid-image"),
    ],
    ids=["no-face", "not-an-image", "truncated"],
)
def test_refused_images_are_recorded_and_spend_nothing(
    client: FlaskClient,
    app: Flask,
    team: Team,
    photos: dict[str, list[Path]],
    make_image: Any,
    status: int,
    reason: str,
) -> None:
    basis = approved(client, app, team)
    body = problem(
        search(client, team.inv, basis["id"], make_image(photos["Orlando_Bloom"][0])), status
    )
    assert body["type"] == f"/problems/{reason}"
    refusal = last_entry(app)
    assert refusal["type"] == "search:refuse"
    assert refusal["payload"]["reason"] == reason
    assert refusal["payload"]["legal_basis_id"] == basis["id"]
    assert (
        ok(client.get(f"/v1/legal-bases/{basis['id']}", headers=team.inv.headers))["searches_used"]
        == 0
    )


def _face_of(path: Path, size_px: float) -> bytes:
    """The photo scaled so its face is about ``size_px`` on its shorter side, on a grey canvas.

    The dev photos' faces are about 130 px in 170-250 px photos.
    """
    source = Image.open(path).convert("RGB")
    factor = size_px / 130
    small = source.resize((round(source.width * factor), round(source.height * factor)))
    canvas = Image.new("RGB", (200, 200), (120, 120, 120))
    canvas.paste(small, (50, 50))
    out = io.BytesIO()
    canvas.save(out, format="PNG")
    return out.getvalue()


def test_a_face_below_the_detector_minimum_is_too_small_like_one_below_the_probe_minimum(
    client: FlaskClient, app: Flask, team: Team, photos: dict[str, list[Path]]
) -> None:
    basis = approved(client, app, team)
    # A searcher of its own: the ledger records only a few refusal reasons in full per
    # credential and window, and the other tests' refusals are theirs.
    searcher = make_account(client, team.admin, team.sup, "investigator")
    refused = []
    # 27 px is under the pipeline's 32 px gate (not even a face to it); 36 px is a face under
    # the 40 px probe minimum.
    for size in (27, 36):
        probe = _face_of(photos["Orlando_Bloom"][0], size)
        refused.append(problem(search(client, searcher, basis["id"], probe), 422))
    tiny, small = refused
    assert tiny["type"] == small["type"] == "/problems/probe-quality-too-low"
    assert tiny["title"] == small["title"] == "Probe face too small or unclear"
    assert tiny["errors"] == small["errors"]
    assert "at least 40 px" in tiny["detail"] and "at least 40 px" in small["detail"]
    assert last_entry(app)["payload"]["reason"] == "probe-quality-too-low"


def test_unusable_bases_are_refused_and_recorded(
    client: FlaskClient, app: Flask, team: Team, photos: dict[str, list[Path]]
) -> None:
    probe = photos["Orlando_Bloom"][2].read_bytes()
    pending = create(client, app, team.inv)
    body = problem(search(client, team.inv, pending["id"], probe), 403)
    assert body["type"] == "/problems/legal-basis-pending"
    assert last_entry(app)["payload"]["reason"] == "legal-basis-pending"

    exhausted = approved(client, app, team, max_searches=1)
    assert search(client, team.inv, exhausted["id"], probe).status_code == 201
    body = problem(search(client, team.inv, exhausted["id"], probe), 403)
    assert body["type"] == "/problems/legal-basis-exhausted"

    revoked = approved(client, app, team)
    ok(act(client, team.sup, revoked, "revoke"))
    assert problem(search(client, team.inv, revoked["id"], probe), 403)["type"] == (
        "/problems/legal-basis-revoked"
    )
    # The basis is checked before any biometric work: the image is not even decoded.
    assert problem(search(client, team.inv, revoked["id"], b"GIF89a...."), 403)["type"] == (
        "/problems/legal-basis-revoked"
    )
    # Another agency's basis does not exist, as far as this agency can tell.
    foreign = problem(search(client, team.other, pending["id"], probe), 404)
    assert foreign["type"] == "/problems/legal-basis-not-found"


def test_a_suspended_account_is_refused_and_the_attempt_recorded(
    client: FlaskClient, app: Flask, team: Team, photos: dict[str, list[Path]]
) -> None:
    investigator = make_account(client, team.admin, team.sup, "investigator")
    basis = approved(client, app, team)
    ok(
        client.post(
            f"/v1/accounts/{investigator.account_id}/suspend",
            json={"reason": "under internal investigation"},
            headers=team.admin.headers,
        )
    )
    body = problem(
        search(client, investigator, basis["id"], photos["Orlando_Bloom"][2].read_bytes()), 403
    )
    assert body["type"] == "/problems/account-suspended"
    refusal = last_entry(app)
    assert refusal["type"] == "search:refuse"
    assert refusal["payload"]["reason"] == "account-suspended"
    assert refusal["payload"]["account_id"] == str(investigator.account_id)


def test_when_the_ledger_cannot_record_nothing_is_disclosed_or_spent(
    client: FlaskClient,
    app: Flask,
    team: Team,
    photos: dict[str, list[Path]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import governance.core.recording
    from ledger.storage import LedgerCorrupted

    basis = approved(client, app, team)
    searches_before = client.get("/v1/searches", headers=team.inv.headers).get_json()["total"]

    def broken(*_a: Any, **_k: Any) -> Any:
        raise LedgerCorrupted("simulated")

    monkeypatch.setattr(governance.core.recording, "append", broken)
    response = search(client, team.inv, basis["id"], photos["Orlando_Bloom"][2].read_bytes())
    body = problem(response, 503)
    assert body["type"] == "/problems/ledger-unavailable"
    assert "candidates" not in body
    monkeypatch.undo()
    assert (
        ok(client.get(f"/v1/legal-bases/{basis['id']}", headers=team.inv.headers))["searches_used"]
        == 0
    )
    searches_after = client.get("/v1/searches", headers=team.inv.headers).get_json()["total"]
    assert searches_after == searches_before  # no search was stored


def _ryan_reynolds_searched(
    client: FlaskClient, app: Flask, team: Team, photos: dict[str, list[Path]]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(basis, search): a new basis and a search under it with one candidate."""
    basis = approved(client, app, team)
    body = search(
        client, team.inv, basis["id"], photos["Ryan_Reynolds"][2].read_bytes(), top_k="1"
    ).get_json()
    return basis, body


def test_thumbnails_only_for_the_searching_agency_and_only_candidates(
    client: FlaskClient,
    app: Flask,
    team: Team,
    enrolled: dict[str, list[str]],
    photos: dict[str, list[Path]],
) -> None:
    _, body = _ryan_reynolds_searched(client, app, team, photos)
    face = body["candidates"][0]["face_id"]
    base = f"/v1/searches/{body['id']}/candidates"
    thumb = client.get(f"{base}/{face}/thumbnail", headers=team.sup.headers)
    assert thumb.status_code == 200 and thumb.mimetype == "image/jpeg"
    assert last_entry(app)["type"] == "thumbnail:view"
    photo = client.get(f"{base}/{face}/photo", headers=team.inv.headers)
    assert photo.status_code == 200 and photo.mimetype.startswith("image/")
    views = client.get(f"/v1/searches/{body['id']}", headers=team.inv.headers).get_json()
    assert views["candidates"][0]["views"] == 2

    not_returned = next(f for f in enrolled["Samuel_L_Jackson"] if f != face)
    problem(client.get(f"{base}/{not_returned}/thumbnail", headers=team.inv.headers), 404)
    problem(client.get(f"{base}/{face}/thumbnail", headers=team.other.headers), 404)
    problem(client.get(f"/v1/searches/{body['id']}", headers=team.other.headers), 404)


def test_two_person_review_confirms_a_lead(
    client: FlaskClient,
    app: Flask,
    team: Team,
    enrolled: dict[str, list[str]],
    photos: dict[str, list[Path]],
) -> None:
    basis = approved(client, app, team)
    body = search(
        client, team.inv, basis["id"], photos["Sally_Field"][2].read_bytes(), top_k="3"
    ).get_json()
    face = body["candidates"][0]["face_id"]
    path = f"/v1/searches/{body['id']}/reviews"

    def review(agent: Agent, verdict: str = "possible_match") -> Any:
        return client.post(
            path,
            json={
                "reviews": [{"face_id": face, "verdict": verdict, "note": "compared ears and jaw"}]
            },
            headers=agent.headers,
        )

    assert problem(review(team.inv), 403)["type"] == "/problems/reviewer-is-searcher"
    first = review(team.sup)
    assert first.status_code == 201, first.get_json()
    state = first.get_json()
    assert state["candidates"][0]["possible_match_votes"] == 1
    assert state["candidates"][0]["confirmed_lead"] is False
    assert state["review_state"] == "in_review"
    assert problem(review(team.sup), 409)["type"] == "/problems/already-reviewed"
    second = review(team.sup2).get_json()
    assert second["candidates"][0]["confirmed_lead"] is True
    assert second["review_state"] == "confirmed_lead"
    entry = last_entry(app)
    assert entry["type"] == "review:record" and entry["payload"]["confirmed_leads"] == [face]
    assert "compared ears" not in json.dumps(entry)
    problem(review(team.other), 404)
    bad = client.post(
        path,
        json={"reviews": [{"face_id": face, "verdict": "definitely", "note": "x"}]},
        headers=team.sup2.headers,
    )
    problem(bad, 422)
    listed = client.get("/v1/searches", headers=team.sup.headers).get_json()
    assert body["id"] in [s["id"] for s in listed["items"]]


def test_one_persons_two_accounts_are_one_reviewer_and_never_the_searchers_colleague(
    client: FlaskClient,
    app: Flask,
    team: Team,
    enrolled: dict[str, list[str]],
    photos: dict[str, list[Path]],
) -> None:
    searcher_person, reviewer_person = person(), person()
    searcher = make_account(client, team.admin, team.sup, "investigator", searcher_person)
    reviewer = make_account(client, team.admin, team.sup, "investigator", reviewer_person)
    basis = approved(client, app, team)
    body = search(
        client, searcher, basis["id"], photos["Samuel_L_Jackson"][2].read_bytes(), top_k="3"
    ).get_json()
    face = body["candidates"][0]["face_id"]
    path = f"/v1/searches/{body['id']}/reviews"
    verdict = {"reviews": [{"face_id": face, "verdict": "possible_match", "note": "same scar"}]}
    assert client.post(path, json=verdict, headers=reviewer.headers).status_code == 201
    # Each person's first account is suspended and a second one given to the same person.
    for agent in (searcher, reviewer):
        decide(client, team.admin, f"/v1/accounts/{agent.account_id}", "suspend")
    searcher_again = make_account(client, team.admin, team.sup, "supervisor", searcher_person)
    reviewer_again = make_account(client, team.admin, team.sup, "supervisor", reviewer_person)
    own = client.post(path, json=verdict, headers=searcher_again.headers)
    assert problem(own, 403)["type"] == "/problems/reviewer-is-searcher"
    twice = client.post(path, json=verdict, headers=reviewer_again.headers)
    assert twice.status_code == 201, twice.get_json()
    candidate = twice.get_json()["candidates"][0]
    assert candidate["possible_match_votes"] == 1 and candidate["confirmed_lead"] is False
    assert last_entry(app)["payload"]["confirmed_leads"] == []


def test_concurrent_searches_never_exceed_the_quota(
    app: Flask, team: Team, enrolled: dict[str, list[str]], photos: dict[str, list[Path]]
) -> None:
    client = app.test_client()
    basis = approved(client, app, team, max_searches=7)
    probe = photos["Ryan_Reynolds"][3].read_bytes()
    statuses: list[int] = []
    lock = threading.Lock()
    start = threading.Barrier(20)

    def one() -> None:
        own = app.test_client()
        start.wait()
        code = search(own, team.inv, basis["id"], probe, top_k="1").status_code
        with lock:
            statuses.append(code)

    threads = [threading.Thread(target=one) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(statuses) == [201] * 7 + [403] * 13
    used = ok(client.get(f"/v1/legal-bases/{basis['id']}", headers=team.inv.headers))
    assert used["searches_used"] == 7 and used["searches_left"] == 0


@pytest.fixture
def clock(app: Flask) -> Iterator[list[timedelta]]:
    rt = runtime_of(app)
    offset = [timedelta(0)]
    rt.clock = lambda: utcnow() + offset[-1]
    try:
        yield offset
    finally:
        rt.clock = utcnow


def test_a_search_under_an_expired_basis_records_the_expiry_and_the_refusal(
    client: FlaskClient,
    app: Flask,
    team: Team,
    photos: dict[str, list[Path]],
    clock: list[timedelta],
) -> None:
    basis = approved(client, app, team)  # expires in 3 days
    clock.append(timedelta(days=3, seconds=-30))
    ok(client.get("/v1/accounts/me", headers=team.inv.headers))  # the periodic sweep runs
    clock.append(timedelta(days=3, seconds=1))  # expired; the next sweep is 30 s away
    before = len(ledger_types(app))
    body = problem(
        search(client, team.inv, basis["id"], photos["Orlando_Bloom"][3].read_bytes()), 403
    )
    assert body["type"] == "/problems/legal-basis-expired"
    # The settlement commits in the unit of work that refused the search; the refusal follows.
    assert ledger_types(app)[before:] == ["legal_basis:expire", "search:refuse"]
    shown = ok(client.get(f"/v1/legal-bases/{basis['id']}", headers=team.inv.headers))
    assert (shown["status"], shown["searches_used"]) == ("expired", 0)


def test_a_lapsed_urgent_basis_deletes_its_search_results(
    client: FlaskClient,
    app: Flask,
    team: Team,
    enrolled: dict[str, list[str]],
    photos: dict[str, list[Path]],
    clock: list[timedelta],
) -> None:
    basis = approved(client, app, team, kind="urgent")
    made = search(client, team.inv, basis["id"], photos["Orlando_Bloom"][3].read_bytes()).get_json()
    assert made["candidates"]
    clock.append(timedelta(hours=49))  # past the 48-hour ratification deadline
    state = ok(client.get(f"/v1/legal-bases/{basis['id']}", headers=team.inv.headers))
    assert state["status"] == "lapsed"
    after = client.get(f"/v1/searches/{made['id']}", headers=team.inv.headers).get_json()
    assert after["results_deleted_reason"] == "basis_lapsed"
    assert after["candidates"] == [] and after["review_state"] == "results_deleted"
    # The receipt's entry names the candidates: it is not given back either.
    gone = problem(client.get(f"/v1/searches/{made['id']}/receipt", headers=team.inv.headers), 409)
    assert gone["type"] == "/problems/results-deleted"
    with runtime_of(app).engine.connect() as conn:
        types = list(
            conn.execute(select(entries.c.type).order_by(entries.c.seq.desc()).limit(3)).scalars()
        )
    assert "search:results_delete" in types and "legal_basis:lapse" in types
    problem(
        client.get(
            f"/v1/searches/{made['id']}/candidates/{made['candidates'][0]['face_id']}/thumbnail",
            headers=team.inv.headers,
        ),
        404,
    )


def test_retention_purges_old_search_records(
    client: FlaskClient,
    app: Flask,
    team: Team,
    enrolled: dict[str, list[str]],
    photos: dict[str, list[Path]],
) -> None:
    from governance.search.records import purge_expired_searches

    basis = approved(client, app, team)
    made = search(client, team.inv, basis["id"], photos["Ryan_Reynolds"][2].read_bytes()).get_json()
    rt = runtime_of(app)
    with rt.units(utcnow() + timedelta(days=181))() as work:
        purged = purge_expired_searches(work, retention=timedelta(days=180))
    assert purged >= 1
    problem(client.get(f"/v1/searches/{made['id']}", headers=team.inv.headers), 404)
    entry = last_entry(app)
    assert entry["type"] == "search:purge" and made["id"] in entry["payload"]["search_ids"]


def test_faces_of_a_blocked_site_are_never_returned(
    client: FlaskClient, app: Flask, team: Team, photos: dict[str, list[Path]]
) -> None:
    from governance.gallery.models import SourcePolicy

    curator = make_staff(client, team.admin, "curator")
    face = enroll(
        client, curator, variant(photos["Oliver_Platt"][0]), url="https://midpurge.example.com/a"
    ).get_json()["faces"][0]["id"]
    basis = approved(client, app, team)
    probe = photos["Oliver_Platt"][1].read_bytes()
    assert (
        search(client, team.inv, basis["id"], probe, top_k="1").get_json()["candidates"][0][
            "face_id"
        ]
        == face
    )
    # The policy is committed but the purge has not run yet (as mid-purge): still excluded.
    rt = runtime_of(app)
    with unit_of_work(rt.sessions) as session:
        session.add(
            SourcePolicy(
                site="example.com",
                status="blocked",
                reason="test",
                reference="mid-purge",
                updated_at=utcnow(),
                updated_by="test",
                faces_purged=0,
            )
        )
    found = search(client, team.inv, basis["id"], probe, top_k="5").get_json()
    assert face not in [c["face_id"] for c in found["candidates"]]


def test_a_face_erased_after_the_index_search_is_not_disclosed_and_the_next_takes_its_place(
    client: FlaskClient,
    app: Flask,
    team: Team,
    photos: dict[str, list[Path]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import governance.search.running as running
    from api.context import engines
    from governance.gallery.models import GalleryFace, GalleryPhoto
    from governance.gallery.photos import remove_photos

    curator = make_staff(client, team.admin, "curator")
    faces = [
        enroll(
            client, curator, variant(path), url=f"https://refill.example.org/{i}.jpg"
        ).get_json()["faces"][0]["id"]
        for i, path in enumerate(photos["Robert_Patrick"][:3])
    ]
    basis = approved(client, app, team)
    probe = photos["Robert_Patrick"][3].read_bytes()
    rt = runtime_of(app)

    def remove(face_ids: list[str]) -> None:
        # A unit of work as the erasure takes one: its effects (the vectors and files) follow
        # its commit.
        with rt.units()() as w:
            session = w.session
            gone = [session.get(GalleryFace, UUID(f)) for f in face_ids]
            photo_rows = [session.get(GalleryPhoto, f.photo_id) for f in gone if f is not None]
            remove_photos(session, engines=engines(), photos=[p for p in photo_rows if p])

    erased: list[str] = []
    answered: list[str] = []
    find = running.find_candidates

    def erase_the_best_meanwhile(*args: Any, **kwargs: Any) -> Any:
        hits = find(*args, **kwargs)  # what the index answered ...
        answered.extend(h.face_id for h in hits)
        erased.append(hits[0].face_id)
        remove([hits[0].face_id])  # ... then an erasure commits before the search is recorded
        return hits

    monkeypatch.setattr(running, "find_candidates", erase_the_best_meanwhile)
    try:
        answer = search(client, team.inv, basis["id"], probe, top_k="2")
        assert answer.status_code == 201, answer.get_json()
        found = answer.get_json()
        shown = [c["face_id"] for c in found["candidates"]]
        assert erased[0] in faces and erased[0] not in shown
        # top_k is still filled, from the hits fetched beyond it, in the index's order.
        assert shown == [f for f in answered if f != erased[0]][:2]
        assert set(shown) <= set(faces)
        assert [c["rank"] for c in found["candidates"]] == [1, 2]
        recorded = json.loads(found["receipt"]["entry"])["payload"]["candidates"]
        assert [c["face_id"] for c in recorded] == shown
    finally:
        monkeypatch.undo()
        with app.app_context():
            remove([f for f in faces if f not in erased])


def test_facewarden_verify_accepts_a_saved_receipt_and_rejects_a_forged_one(
    client: FlaskClient,
    app: Flask,
    team: Team,
    enrolled: dict[str, list[str]],
    photos: dict[str, list[Path]],
    tmp_path: Path,
) -> None:
    from ledger.cli import main as verify_main

    basis = approved(client, app, team)
    answer = search(client, team.inv, basis["id"], photos["Samuel_L_Jackson"][2].read_bytes())
    saved = tmp_path / "search.json"
    saved.write_text(answer.get_data(as_text=True))
    key = runtime_of(app).signer.verifier_key
    assert verify_main(["receipt", str(saved), "--key", key]) == 0
    assert answer.get_json()["receipt"]["cosigned"] is False  # signed a moment ago

    # Read again later: the same entry, in the newest checkpoint (no witnesses here).
    again = client.get(f"/v1/searches/{answer.get_json()['id']}/receipt", headers=team.inv.headers)
    assert again.status_code == 200
    receipt = again.get_json()
    assert receipt["entry"] == answer.get_json()["receipt"]["entry"]
    assert receipt["tree_size"] >= answer.get_json()["receipt"]["tree_size"]
    assert (receipt["cosigned"], receipt["witnesses"]) == (False, [])
    reread = tmp_path / "reread.json"
    reread.write_text(json.dumps(receipt))
    assert verify_main(["receipt", str(reread), "--key", key]) == 0
    other = make_team(app)
    elsewhere = client.get(
        f"/v1/searches/{answer.get_json()['id']}/receipt", headers=other.inv.headers
    )
    assert elsewhere.status_code == 404  # another agency's search is not there for it

    forged = answer.get_json()
    forged["receipt"]["inclusion_proof"] = list(reversed(forged["receipt"]["inclusion_proof"]))
    forged["receipt"]["entry"] = forged["receipt"]["entry"].replace('"top_k":10', '"top_k":20')
    bad = tmp_path / "forged.json"
    bad.write_text(json.dumps(forged))
    assert verify_main(["receipt", str(bad), "--key", key]) == 1
    other_key = "other.example/log+00000000+AXQn0U1fCP5n5x6m3cO/9dLJrZpPaRrMQwQW3t5aXy7U"
    assert verify_main(["receipt", str(saved), "--key", other_key]) != 0


def test_no_search_returns_a_candidate_below_the_packs_calibrated_threshold(
    client: FlaskClient,
    app: Flask,
    team: Team,
    enrolled: dict[str, list[str]],
    photos: dict[str, list[Path]],
) -> None:
    pack = runtime_of(app).model_pack
    floor = pack.match_threshold
    basis = approved(client, app, team)
    probe = photos["Orlando_Bloom"][2].read_bytes()

    # A lower threshold is refused, naming the floor; the refusal is recorded, nothing spent.
    for lower in ("-1", str(round(floor - 0.01, 2))):
        body = problem(search(client, team.inv, basis["id"], probe, threshold=lower), 422)
        assert body["type"] == "/problems/threshold-below-floor"
        assert body["threshold_floor"] == floor
        assert body["threshold_floor_far"] == pack.match_far
        assert f"below {floor:g}" in body["detail"]
        refusal = last_entry(app)
        assert refusal["type"] == "search:refuse"
        assert refusal["payload"]["reason"] == "threshold-below-floor"
    used = ok(client.get(f"/v1/legal-bases/{basis['id']}", headers=team.inv.headers))
    assert used["searches_used"] == 0

    # Left out, the threshold is the floor: only faces at or above it, not the gallery.
    made = search(client, team.inv, basis["id"], probe, top_k="20")
    assert made.status_code == 201, made.get_json()
    answer = made.get_json()
    assert answer["threshold"] == floor
    assert answer["candidates"], "Orlando Bloom's enrolled faces match"
    assert all(c["similarity"] >= floor for c in answer["candidates"])
    assert len(answer["candidates"]) < answer["gallery_size"]
    payload = json.loads(answer["receipt"]["entry"])["payload"]
    assert payload["threshold"] == f"{floor:.4f}"
    assert payload["pack"]["match_threshold"] == f"{floor:.4f}"
    assert payload["pack"]["match_far"] == f"{pack.match_far:.2e}"

    # A stricter threshold is applied as asked.
    strict = search(client, team.inv, basis["id"], probe, threshold="0.95").get_json()
    assert strict["threshold"] == 0.95
    assert all(c["similarity"] >= 0.95 for c in strict["candidates"])

    # top_k is bounded.
    too_many = problem(search(client, team.inv, basis["id"], probe, top_k="50"), 422)
    assert too_many["type"] == "/problems/validation-error"
    assert too_many["errors"][0]["field"] == "top_k"


def test_run_search_refuses_parameters_below_the_floor_whoever_built_them(
    app: Flask, team: Team, photos: dict[str, list[Path]]
) -> None:
    from api.context import engines
    from governance.search.running import (
        SearchParameters,
        ThresholdBelowFloor,
        prepare_probe,
        run_search,
    )
    from tests.api.bases import principal_of

    with app.app_context():
        g = engines()
    probe = prepare_probe(g, photos["Orlando_Bloom"][2].read_bytes())
    parameters = SearchParameters(
        legal_basis_id=UUID(int=1), purpose="p", top_k=5, threshold=g.match_threshold - 0.2
    )
    with runtime_of(app).units()() as work, pytest.raises(ThresholdBelowFloor):
        run_search(
            work,
            gallery=g,
            principal=principal_of(team.inv),
            parameters=parameters,
            probe=probe,
            hits=[],
        )


def test_candidates_of_a_revoked_basis_are_no_longer_viewable(
    client: FlaskClient,
    app: Flask,
    team: Team,
    enrolled: dict[str, list[str]],
    photos: dict[str, list[Path]],
) -> None:
    basis, made = _ryan_reynolds_searched(client, app, team, photos)
    base = f"/v1/searches/{made['id']}/candidates/{made['candidates'][0]['face_id']}"
    assert client.get(f"{base}/thumbnail", headers=team.inv.headers).status_code == 200
    ok(act(client, team.sup, basis, "revoke"))
    before = len(ledger_types(app))
    for kind in ("thumbnail", "photo"):
        body = problem(client.get(f"{base}/{kind}", headers=team.inv.headers), 404)
        assert "legal basis was revoked" in body["detail"]
    assert len(ledger_types(app)) == before  # nothing viewed, nothing recorded as viewed
    # Nor does the search itself still say where the candidates' photos came from.
    shown = client.get(f"/v1/searches/{made['id']}", headers=team.inv.headers).get_json()
    assert made["candidates"][0]["source_url"]
    assert [(c["source_url"], c["collected_at"]) for c in shown["candidates"]] == [
        (None, None) for _ in made["candidates"]
    ]


def test_another_agencys_search_costs_what_a_missing_one_costs(
    client: FlaskClient,
    app: Flask,
    team: Team,
    enrolled: dict[str, list[str]],
    photos: dict[str, list[Path]],
) -> None:
    _, made = _ryan_reynolds_searched(client, app, team, photos)
    face = made["candidates"][0]["face_id"]
    review = {"reviews": [{"face_id": face, "verdict": "possible_match", "note": "n"}]}

    def call(search_id: str, suffix: str) -> Any:
        path, headers = f"/v1/searches/{search_id}{suffix}", team.other.headers
        if suffix == "/reviews":
            return client.post(path, json=review, headers=headers)
        return client.get(path, headers=headers)

    missing = str(UUID(int=7))
    for suffix in ("", f"/candidates/{face}/thumbnail", f"/candidates/{face}/photo", "/reviews"):
        ok(client.get("/v1/accounts/me", headers=team.other.headers))  # the periodic sweep runs
        theirs, queried_theirs = sql_statements(app, lambda s=suffix: call(made["id"], s))
        absent, queried_absent = sql_statements(app, lambda s=suffix: call(missing, s))
        assert problem(theirs, 404)["detail"] == problem(absent, 404)["detail"]
        assert queried_theirs == queried_absent, suffix


def _probe(app: Flask, agent: Agent, search_id: str) -> bytes:
    from governance.search.records import probe_image

    with runtime_of(app).units()() as work:
        return probe_image(work, principal=principal_of(agent), search_id=UUID(search_id))


def _probe_rows(app: Flask, search_id: str) -> int:
    from governance.search.models import SearchProbe

    with runtime_of(app).engine.connect() as conn:
        query = select(SearchProbe.search_id).where(SearchProbe.search_id == UUID(search_id))
        return len(conn.execute(query).all())


def test_the_probe_face_is_for_the_agencys_reviewers_and_goes_with_the_results(
    client: FlaskClient,
    app: Flask,
    team: Team,
    enrolled: dict[str, list[str]],
    photos: dict[str, list[Path]],
    clock: list[timedelta],
) -> None:
    from governance.core.errors import Conflict, NotFound

    basis, made = _ryan_reynolds_searched(client, app, team, photos)
    face = _probe(app, team.sup, made["id"])
    with Image.open(io.BytesIO(face)) as shown:
        assert shown.format == "JPEG" and max(shown.size) <= 160  # the face, never the photo
    assert last_entry(app)["type"] == "probe:view"
    assert last_entry(app)["payload"] == {"search_id": made["id"]}
    with pytest.raises(NotFound):
        _probe(app, team.other, made["id"])  # another agency
    # Revoked: the probe goes at once with the revocation.
    ok(act(client, team.sup, basis, "revoke"))
    assert _probe_rows(app, made["id"]) == 0
    assert last_entry(app)["type"] == "legal_basis:revoke"
    assert last_entry(app)["payload"]["probes_deleted"] == 1
    with pytest.raises(Conflict, match="probe face with them"):
        _probe(app, team.sup, made["id"])

    # Lapsed: it goes with the results.
    urgent = approved(client, app, team, kind="urgent")
    lapsing = search(
        client, team.inv, urgent["id"], photos["Orlando_Bloom"][3].read_bytes()
    ).get_json()
    assert _probe_rows(app, lapsing["id"]) == 1
    clock.append(timedelta(hours=49))
    ok(client.get(f"/v1/legal-bases/{urgent['id']}", headers=team.inv.headers))
    assert _probe_rows(app, lapsing["id"]) == 0


def test_no_probe_face_is_kept_when_there_is_nothing_to_review(
    client: FlaskClient,
    app: Flask,
    team: Team,
    enrolled: dict[str, list[str]],
    photos: dict[str, list[Path]],
) -> None:
    basis = approved(client, app, team)
    # A bar no face of the shared gallery reaches: the search returns nothing to review.
    made = search(
        client, team.inv, basis["id"], photos["Ryan_Reynolds"][2].read_bytes(), threshold="0.999"
    ).get_json()
    assert made["candidates"] == [], made
    assert _probe_rows(app, made["id"]) == 0


def test_a_purged_search_takes_its_probe_face(
    client: FlaskClient,
    app: Flask,
    team: Team,
    enrolled: dict[str, list[str]],
    photos: dict[str, list[Path]],
) -> None:
    from governance.search.records import purge_expired_searches

    _, made = _ryan_reynolds_searched(client, app, team, photos)
    assert _probe_rows(app, made["id"]) == 1
    with runtime_of(app).units(utcnow() + timedelta(days=181))() as work:
        assert purge_expired_searches(work, retention=timedelta(days=180)) >= 1
    assert _probe_rows(app, made["id"]) == 0
