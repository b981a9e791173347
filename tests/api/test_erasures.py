"""Data-subject erasure by photo, by source URL and by probe photo leaves no trace."""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from api.context import gallery
from governance.gallery_models import GalleryFace
from tests.api.faces import dev_photos, enroll, variant
from tests.api.helpers import (
    Agent,
    ledger_size,
    make_admin,
    make_staff,
    problem,
    runtime_of,
)


@pytest.fixture(scope="module")
def people(app: Flask) -> tuple[Agent, Agent]:
    client = app.test_client()
    admin = make_admin(app)
    return admin, make_staff(client, admin, "curator")


def _erase(client: FlaskClient, admin: Agent, **fields: Any) -> Any:
    data: dict[str, Any] = {"reason": "data-subject request DSR-1", **fields}
    return client.post(
        "/v1/erasures", data=data, content_type="multipart/form-data", headers=admin.headers
    )


def _face_rows(app: Flask, face_ids: set[str]) -> int:
    from uuid import UUID

    with runtime_of(app).engine.connect() as conn:
        return int(
            conn.execute(
                select(func.count())
                .select_from(GalleryFace)
                .where(GalleryFace.id.in_([UUID(f) for f in face_ids]))
            ).scalar_one()
        )


def _last_payload(app: Flask) -> dict[str, Any]:
    from ledger.storage import entries

    with runtime_of(app).engine.connect() as conn:
        body = conn.execute(
            select(entries.c.body).order_by(entries.c.seq.desc()).limit(1)
        ).scalar_one()
    entry: dict[str, Any] = json.loads(bytes(body))
    assert entry["type"] == "erasure:run"
    return dict(entry["payload"])


def _assert_gone(app: Flask, client: FlaskClient, curator: Agent, photo: dict[str, Any]) -> None:
    problem(client.get(f"/v1/gallery/photos/{photo['id']}", headers=curator.headers), 404)
    face_ids = {f["id"] for f in photo["faces"]}
    assert _face_rows(app, face_ids) == 0
    with app.app_context():
        root: Path = gallery().blobs.root  # type: ignore[attr-defined]
    assert not (root / photo["sha256"][:2] / photo["sha256"][2:4] / photo["sha256"]).exists()


def test_erase_by_photo_id(
    app: Flask, client: FlaskClient, people: tuple[Agent, Agent], shared_dir: Path
) -> None:
    admin, curator = people
    photo = enroll(
        client, curator, variant(dev_photos(shared_dir)["Bernie_Mac"][0]), url="https://a.org/1"
    ).get_json()
    before = ledger_size(app)
    response = _erase(client, admin, kind="photo", photo_id=photo["id"])
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["photos_erased"] == 1
    assert ledger_size(app) == before + 1
    payload = _last_payload(app)
    assert payload["faces"] == len(photo["faces"])
    assert payload["target_sha256"] == hashlib.sha256(photo["id"].encode()).hexdigest()
    assert payload["face_id_sha256"] == sorted(
        hashlib.sha256(f["id"].encode()).hexdigest() for f in photo["faces"]
    )
    assert photo["id"] not in json.dumps(payload)
    _assert_gone(app, client, curator, photo)
    erasure = client.get(f"/v1/erasures/{response.get_json()['id']}", headers=admin.headers)
    assert erasure.get_json()["faces_erased"] == len(photo["faces"])


def test_erase_by_source_url_keeps_the_url_out_of_the_ledger(
    app: Flask, client: FlaskClient, people: tuple[Agent, Agent], shared_dir: Path
) -> None:
    admin, curator = people
    url = "https://social.example.net/jane.doe/photo/42"  # a site no other test blocks
    photo = enroll(
        client, curator, variant(dev_photos(shared_dir)["Bernie_Mac"][1]), url=url
    ).get_json()
    response = _erase(client, admin, kind="source_url", source_url=url)
    assert response.status_code == 201, response.get_json()
    payload = _last_payload(app)
    assert "jane.doe" not in json.dumps(payload)
    assert payload["target_sha256"] == hashlib.sha256(url.encode()).hexdigest()
    _assert_gone(app, client, curator, photo)


def test_erase_by_probe_shows_matches_first_then_erases_the_confirmed(
    app: Flask, client: FlaskClient, people: tuple[Agent, Agent], shared_dir: Path
) -> None:
    admin, curator = people
    person = dev_photos(shared_dir)["Billy_Burke"]
    other = dev_photos(shared_dir)["Adrienne_Barbeau"][0]
    mine = [
        enroll(client, curator, variant(p), url=f"https://b.org/{i}").get_json()
        for i, p in enumerate(person[:2])
    ]
    bystander = enroll(client, curator, variant(other), url="https://b.org/x").get_json()
    probe = person[2].read_bytes()

    preview = client.post(
        "/v1/erasures/preview",
        data={"image": (io.BytesIO(probe), "probe.jpg")},
        content_type="multipart/form-data",
        headers=admin.headers,
    )
    assert preview.status_code == 200, preview.get_json()
    matched = {m["face_id"] for m in preview.get_json()["matches"]}
    wanted = {f["id"] for p in mine for f in p["faces"]}
    assert wanted <= matched
    assert bystander["faces"][0]["id"] not in matched

    # Confirming a face that the probe does not match is refused.
    refused = _erase(
        client,
        admin,
        kind="probe",
        probe=(io.BytesIO(probe), "probe.jpg"),
        face_ids=[bystander["faces"][0]["id"]],
    )
    assert "face_ids" in [e["field"] for e in problem(refused, 422)["errors"]]

    response = _erase(
        client, admin, kind="probe", probe=(io.BytesIO(probe), "probe.jpg"), face_ids=sorted(wanted)
    )
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["faces_erased"] == len(wanted)
    assert _last_payload(app)["target_sha256"] == hashlib.sha256(probe).hexdigest()
    for photo in mine:
        _assert_gone(app, client, curator, photo)
    kept = client.get(f"/v1/gallery/photos/{bystander['id']}", headers=curator.headers)
    assert kept.status_code == 200


@pytest.mark.parametrize(
    ("fields", "status"),
    [
        ({"kind": "photo"}, 422),
        ({"kind": "photo", "photo_id": "00000000-0000-4000-8000-000000000000"}, 404),
        ({"kind": "source_url", "source_url": "https://nowhere.example/none"}, 404),
        ({"kind": "probe", "face_ids": ["00000000-0000-4000-8000-000000000000"]}, 422),
        ({"kind": "everything"}, 422),
    ],
)
def test_incomplete_or_empty_erasures_are_refused(
    client: FlaskClient, people: tuple[Agent, Agent], fields: dict[str, Any], status: int
) -> None:
    admin, _ = people
    problem(_erase(client, admin, **fields), status)
