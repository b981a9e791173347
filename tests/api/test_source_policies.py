"""A platform's opt-out: its faces leave every store, and its photos are refused from then on."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from flask import Flask
from flask.testing import FlaskClient

from api.context import engines
from tests.api.faces import dev_photos, enroll, variant
from tests.api.helpers import Agent, ledger_size, ledger_types, make_admin, make_staff, problem


@pytest.fixture(scope="module")
def people(app: Flask) -> tuple[Agent, Agent]:
    client = app.test_client()
    admin = make_admin(app)
    return admin, make_staff(client, admin, "curator")


def _stored_files(app: Flask) -> set[Path]:
    with app.app_context():
        root: Path = engines().blobs.root  # type: ignore[attr-defined]
    return {p for p in root.rglob("*") if p.is_file()}


def _embedding(app: Flask, face_id: str) -> np.ndarray:
    from uuid import UUID

    from sqlalchemy import select

    from governance.gallery.models import GalleryFace
    from tests.api.helpers import runtime_of

    with runtime_of(app).engine.connect() as conn:
        raw = conn.execute(
            select(GalleryFace.embedding).where(GalleryFace.id == UUID(face_id))
        ).scalar_one()
    return np.frombuffer(raw, dtype=np.float32)


def _gallery_size(app: Flask) -> int:
    from governance.gallery.photos import gallery_size
    from tests.api.helpers import runtime_of

    rt = runtime_of(app)
    with rt.sessions() as session:
        return gallery_size(session, rt.model_pack.recognizer.sha256)


def test_blocking_a_site_purges_it_everywhere(
    app: Flask, client: FlaskClient, people: tuple[Agent, Agent], shared_dir: Path
) -> None:
    admin, curator = people
    photos = dev_photos(shared_dir)
    kept = enroll(
        client, curator, variant(photos["Matthew_Perry"][0]), url="https://keep.example.net/a"
    )
    assert kept.status_code == 201
    files_before = _stored_files(app)
    enrolled = []
    for i, path in enumerate(photos["Mila_Kunis"][:3]):
        url = f"https://cdn{i}.optout-social.com/u/{i}.jpg"
        response = enroll(client, curator, variant(path), url=url)
        assert response.status_code == 201, response.get_json()
        enrolled.append(response.get_json())
    assert len(_stored_files(app) - files_before) == 6  # 3 photos + 3 thumbnails
    purged_ids = {p["faces"][0]["id"] for p in enrolled}
    probes = {face_id: _embedding(app, face_id) for face_id in purged_ids}
    with app.app_context():
        index = engines().index
    for face_id, vector in probes.items():
        assert face_id in {h.face_id for h in index.search(vector, 5)}
    count_before = index.count()
    size_before = _gallery_size(app)
    before = ledger_size(app)

    response = client.post(
        "/v1/source-policies",
        json={
            "site": "https://www.optout-social.com/",
            "status": "blocked",
            "reason": "cease-and-desist letter",
            "reference": "Letter of 2026-11-02 from OptOut Social legal",
        },
        headers=admin.headers,
    )
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["site"] == "optout-social.com"
    assert body["status"] == "blocked"
    assert body["faces_purged"] == 3 and body["faces_remaining"] == 0
    assert ledger_types(app, after=before - 1) == ["source_policy:set", "source:purge"]

    # Gone from the vector index: its own embedding no longer finds it ...
    assert index.count() == count_before - 3
    assert _gallery_size(app) == size_before - 3 == index.count()
    for face_id, vector in probes.items():
        assert face_id not in {h.face_id for h in index.search(vector, 50)}
    # ... from the database and the API ...
    for photo in enrolled:
        problem(client.get(f"/v1/gallery/photos/{photo['id']}", headers=curator.headers), 404)
        face_id = photo["faces"][0]["id"]
        problem(client.get(f"/v1/gallery/faces/{face_id}/thumbnail", headers=curator.headers), 404)
    # ... and from photo storage, while the other site's photo stays.
    assert _stored_files(app) == files_before

    refused = enroll(
        client, curator, variant(photos["Mila_Kunis"][3]), url="https://optout-social.com/x"
    )
    assert problem(refused, 403)["type"] == "/problems/source-blocked"

    listed = client.get("/v1/source-policies", headers=curator.headers).get_json()
    assert "optout-social.com" in [p["site"] for p in listed]
    one = client.get("/v1/source-policies/optout-social.com", headers=curator.headers)
    assert one.get_json()["reference"].startswith("Letter of")


def test_unblocking_allows_enrolment_again(
    client: FlaskClient, people: tuple[Agent, Agent], shared_dir: Path
) -> None:
    admin, curator = people
    photos = dev_photos(shared_dir)
    policy = {"site": "second-site.org", "reason": "letter", "reference": "ref-2"}
    assert (
        client.post(
            "/v1/source-policies", json={**policy, "status": "blocked"}, headers=admin.headers
        ).status_code
        == 200
    )
    problem(
        enroll(
            client, curator, variant(photos["Milo_Ventimiglia"][0]), url="https://second-site.org/a"
        ),
        403,
    )
    assert (
        client.post(
            "/v1/source-policies", json={**policy, "status": "allowed"}, headers=admin.headers
        ).status_code
        == 200
    )
    assert (
        enroll(
            client, curator, variant(photos["Milo_Ventimiglia"][0]), url="https://second-site.org/a"
        ).status_code
        == 201
    )


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"site": "co.uk", "status": "blocked", "reason": "r", "reference": "x"}, "site"),
        ({"site": "example.org", "status": "maybe", "reason": "r", "reference": "x"}, "status"),
        ({"site": "example.org", "status": "blocked", "reason": "", "reference": "x"}, "reason"),
    ],
)
def test_bad_policies_are_refused_per_field(
    client: FlaskClient, people: tuple[Agent, Agent], body: dict[str, str], field: str
) -> None:
    admin, _ = people
    response = client.post("/v1/source-policies", json=body, headers=admin.headers)
    assert field in [e["field"] for e in problem(response, 422)["errors"]]
