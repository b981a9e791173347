"""Data-subject erasure by photo, by source URL and by probe photo leaves no trace, and a probe
is compared with the gallery only on the record, under a data-subject request, with four eyes."""

from __future__ import annotations

import hashlib
import io
import json
import os
import threading
import uuid
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from PIL import Image
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from api.context import engines
from governance.gallery import erasure_requests
from governance.gallery.models import GalleryFace
from ledger.audit import audit_entries
from ledger.storage import entries
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


def _entries(app: Flask, *, after: int = -1) -> list[dict[str, Any]]:
    with runtime_of(app).engine.connect() as conn:
        rows = conn.execute(
            select(entries.c.body).where(entries.c.seq > after).order_by(entries.c.seq)
        )
        return [json.loads(bytes(r.body)) for r in rows]


def _last_payload(app: Flask, entry_type: str = "erasure:run") -> dict[str, Any]:
    entry = _entries(app, after=ledger_size(app) - 2)[-1]
    assert entry["type"] == entry_type
    return dict(entry["payload"])


def _keyed_url(app: Flask, url: str) -> str:
    return runtime_of(app).keys.keyed("url", url)


def _assert_gone(app: Flask, client: FlaskClient, curator: Agent, photo: dict[str, Any]) -> None:
    problem(client.get(f"/v1/gallery/photos/{photo['id']}", headers=curator.headers), 404)
    face_ids = {f["id"] for f in photo["faces"]}
    assert _face_rows(app, face_ids) == 0
    with app.app_context():
        root: Path = engines().blobs.root  # type: ignore[attr-defined]
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
    enrolment = _last_payload(app, "gallery:enroll")
    response = _erase(client, admin, kind="source_url", source_url=url)
    assert response.status_code == 201, response.get_json()
    payload = _last_payload(app)
    assert "jane.doe" not in json.dumps(payload)
    # Keyed: a guessed URL cannot be confirmed from the ledger, yet enrolment and erasure match.
    assert payload["source_url_hmac"] == enrolment["source_url_hmac"] == _keyed_url(app, url)
    plain = hashlib.sha256(url.encode()).hexdigest()
    assert plain not in json.dumps(payload) + json.dumps(enrolment)
    assert "target_sha256" not in payload and "source_url_sha256" not in enrolment
    _assert_gone(app, client, curator, photo)


@pytest.mark.parametrize(
    ("fields", "status"),
    [
        ({"kind": "photo"}, 422),
        ({"kind": "photo", "photo_id": "00000000-0000-4000-8000-000000000000"}, 404),
        ({"kind": "source_url", "source_url": "https://nowhere.example/none"}, 404),
        # A probe erasure compares faces: only through a preview and a second admin.
        ({"kind": "probe", "face_ids": ["00000000-0000-4000-8000-000000000000"]}, 422),
        ({"kind": "everything"}, 422),
    ],
)
def test_incomplete_or_empty_erasures_are_refused(
    client: FlaskClient, people: tuple[Agent, Agent], fields: dict[str, Any], status: int
) -> None:
    admin, _ = people
    problem(_erase(client, admin, **fields), status)


@pytest.fixture(scope="module")
def deciders(app: Flask) -> tuple[Agent, Agent, Agent]:
    """Three more admins: the requester, the confirmer, and one who is neither."""
    return make_admin(app), make_admin(app), make_admin(app)


def _preview(client: FlaskClient, admin: Agent, probe: bytes, **fields: Any) -> Any:
    data: dict[str, Any] = {
        "image": (io.BytesIO(probe), "probe.jpg"),
        "request_reference": "DSR-2026-0042",
        "reason": "The data subject asked for erasure; identity checked in person.",
        **fields,
    }
    return client.post(
        "/v1/erasures/preview", data=data, content_type="multipart/form-data", headers=admin.headers
    )


def _person(
    client: FlaskClient, curator: Agent, shared_dir: Path, name: str, site: str
) -> tuple[list[dict[str, Any]], bytes]:
    """Two enrolled photos of ``name`` and a third photo of them as the probe."""
    photos = dev_photos(shared_dir)[name]
    mine = [
        enroll(client, curator, variant(p), url=f"https://{site}/{i}", subject_ref="SUBJ-7")
        for i, p in enumerate(photos[:2])
    ]
    assert all(r.status_code == 201 for r in mine), [r.get_json() for r in mine]
    return [r.get_json() for r in mine], photos[2].read_bytes()


def _confirm(client: FlaskClient, admin: Agent, request_id: str, face_ids: list[str]) -> Any:
    return client.post(
        f"/v1/erasures/requests/{request_id}/confirm",
        json={"face_ids": face_ids, "reason": "Erasure confirmed against DSR-2026-0042."},
        headers=admin.headers,
    )


def test_a_preview_is_a_face_search_on_the_record_without_provenance(
    app: Flask, client: FlaskClient, people: tuple[Agent, Agent], shared_dir: Path
) -> None:
    admin, curator = people
    mine, probe = _person(client, curator, shared_dir, "Colin_Hanks", "preview.example.org")
    wanted = {f["id"] for p in mine for f in p["faces"]}
    before = ledger_size(app)

    response = _preview(client, admin, probe)

    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert response.headers["Location"] == f"/v1/erasures/requests/{body['id']}"
    assert wanted <= {m["face_id"] for m in body["matches"]}
    assert body["status"] == "pending" and body["request_reference"] == "DSR-2026-0042"
    # What an erasure decision needs, and nothing that names where a face came from.
    for match in body["matches"]:
        assert set(match) == {"rank", "face_id", "score", "thumbnail"}
    text = json.dumps(body)
    assert "preview.example.org" not in text and "SUBJ-7" not in text
    assert not {p["id"] for p in mine} & {m.get("photo_id") for m in body["matches"]}
    # One entry, committed by the preview's own unit of work.
    [entry] = _entries(app, after=before - 1)
    assert entry["type"] == "erasure:preview" and entry["seq"] == body["ledger_seq"]
    assert entry["actor"]["id"] == str(admin.account_id)
    payload = entry["payload"]
    assert payload["probe_sha256"] == hashlib.sha256(probe).hexdigest()
    assert payload["request_reference_hmac"] == runtime_of(app).keys.keyed("dsr", "DSR-2026-0042")
    assert "DSR-2026-0042" not in json.dumps(payload)  # the reference may name the person
    assert (
        payload["reason_sha256"]
        == hashlib.sha256(
            b"The data subject asked for erasure; identity checked in person."
        ).hexdigest()
    )
    assert [m["face_id_sha256"] for m in payload["matches"]] == [
        hashlib.sha256(m["face_id"].encode()).hexdigest() for m in body["matches"]
    ]
    assert not wanted & set(json.dumps(payload).split('"'))  # face ids only hashed


@pytest.mark.parametrize("missing", ["request_reference", "reason"])
def test_a_preview_needs_its_data_subject_request(
    app: Flask,
    client: FlaskClient,
    people: tuple[Agent, Agent],
    shared_dir: Path,
    missing: str,
) -> None:
    admin, _ = people
    probe = dev_photos(shared_dir)["Colin_Hanks"][3].read_bytes()
    data: dict[str, Any] = {
        "image": (io.BytesIO(probe), "probe.jpg"),
        "request_reference": "DSR-2026-0043",
        "reason": "asked by the data subject",
    }
    del data[missing]
    before = ledger_size(app)
    response = client.post(
        "/v1/erasures/preview", data=data, content_type="multipart/form-data", headers=admin.headers
    )
    assert missing in [e["field"] for e in problem(response, 422)["errors"]]
    assert ledger_size(app) == before


def test_admins_cannot_turn_a_face_id_into_provenance(
    client: FlaskClient, people: tuple[Agent, Agent], shared_dir: Path
) -> None:
    admin, curator = people
    mine, probe = _person(client, curator, shared_dir, "Eileen_Davidson", "prov.example.org")
    face = _preview(client, admin, probe).get_json()["matches"][0]["face_id"]
    photo = next(p for p in mine if face in {f["id"] for f in p["faces"]})
    for path in (
        "/v1/gallery/photos",
        f"/v1/gallery/photos/{photo['id']}",
        f"/v1/gallery/photos/{photo['id']}/image",
        f"/v1/gallery/faces/{face}",
        f"/v1/gallery/faces/{face}/thumbnail",
    ):
        assert (
            problem(client.get(path, headers=admin.headers), 403)["type"] == "/problems/forbidden"
        )
    curated = client.get(f"/v1/gallery/photos/{photo['id']}", headers=curator.headers)
    assert curated.get_json()["source_url"].startswith("https://prov.example.org/")


def test_a_probe_erasure_needs_a_second_admin(
    app: Flask,
    client: FlaskClient,
    people: tuple[Agent, Agent],
    deciders: tuple[Agent, Agent, Agent],
    shared_dir: Path,
) -> None:
    _, curator = people
    requester, confirmer, _ = deciders
    mine, probe = _person(client, curator, shared_dir, "Elizabeth_Hendrickson", "4eyes.example")
    wanted = sorted(f["id"] for p in mine for f in p["faces"])

    # The old single-step probe erasure is gone: no comparison outside the preview.
    direct = _erase(
        client, requester, kind="probe", probe=(io.BytesIO(probe), "p.jpg"), face_ids=wanted
    )
    assert "kind" in [e["field"] for e in problem(direct, 422)["errors"]]
    assert all(
        client.get(f"/v1/gallery/photos/{p['id']}", headers=curator.headers).status_code == 200
        for p in mine
    )

    request_id = _preview(client, requester, probe).get_json()["id"]
    refused = problem(_confirm(client, requester, request_id, wanted), 403)
    assert refused["type"] == "/problems/four-eyes-required"
    stray = _confirm(client, confirmer, request_id, [str(uuid.uuid4())])
    assert "face_ids" in [e["field"] for e in problem(stray, 422)["errors"]]

    before = ledger_size(app)
    response = _confirm(client, confirmer, request_id, wanted)
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["faces_erased"] == len(wanted)
    [entry] = _entries(app, after=before - 1)
    assert entry["type"] == "erasure:run" and entry["actor"]["id"] == str(confirmer.account_id)
    assert entry["payload"]["erasure_request_id"] == request_id
    assert entry["payload"]["requested_by"] == str(requester.account_id)
    assert "probe_sha256" not in entry["payload"]  # confirming compares nothing
    for photo in mine:
        _assert_gone(app, client, curator, photo)
    problem(_confirm(client, confirmer, request_id, wanted), 409)
    read = client.get(f"/v1/erasures/requests/{request_id}", headers=requester.headers)
    assert read.get_json()["status"] == "confirmed" and read.get_json()["matches"] == []

    # The content audit finds the preview, its four eyes and its erasure lawful.
    seqs = {e["seq"] for e in _entries(app) if request_id in json.dumps(e["payload"])}
    with runtime_of(app).engine.connect() as conn:
        lines = [
            bytes(r.body) for r in conn.execute(select(entries.c.body).order_by(entries.c.seq))
        ]
    assert not [v for v in audit_entries(lines).violations if v.seq in seqs]


def test_preview_thumbnails_are_for_the_two_deciding_admins_and_each_view_is_recorded(
    app: Flask,
    client: FlaskClient,
    people: tuple[Agent, Agent],
    deciders: tuple[Agent, Agent, Agent],
    shared_dir: Path,
) -> None:
    _, curator = people
    requester, confirmer, outsider = deciders
    _, probe = _person(client, curator, shared_dir, "Eric_Dane", "thumbs.example")
    made = _preview(client, requester, probe).get_json()
    request_id, face = made["id"], made["matches"][0]["face_id"]
    thumbnail = made["matches"][0]["thumbnail"]
    assert thumbnail == f"/v1/erasures/requests/{request_id}/faces/{face}/thumbnail"

    before = ledger_size(app)
    seen = client.get(thumbnail, headers=requester.headers)
    assert seen.status_code == 200 and seen.mimetype == "image/jpeg"
    # The first other admin to open the request becomes its only confirmer.
    opened = client.get(f"/v1/erasures/requests/{request_id}", headers=confirmer.headers)
    assert opened.get_json()["confirmer_id"] == str(confirmer.account_id)
    assert client.get(thumbnail, headers=confirmer.headers).status_code == 200
    for path in (f"/v1/erasures/requests/{request_id}", thumbnail):
        problem(client.get(path, headers=outsider.headers), 404)
    problem(_confirm(client, outsider, request_id, [face]), 404)
    unmatched = f"/v1/erasures/requests/{request_id}/faces/{uuid.uuid4()}/thumbnail"
    problem(client.get(unmatched, headers=requester.headers), 404)

    views = [e for e in _entries(app, after=before - 1)]
    assert [(e["type"], e["actor"]["id"]) for e in views] == [
        ("erasure:thumbnail_view", str(requester.account_id)),
        ("erasure:thumbnail_view", str(confirmer.account_id)),
    ]
    assert views[0]["payload"] == {
        "erasure_request_id": request_id,
        "face_id_sha256": hashlib.sha256(face.encode()).hexdigest(),
    }


def _side_by_side(left: Path, right: Path) -> bytes:
    images = [Image.open(p).convert("RGB") for p in (left, right)]
    height = max(i.height for i in images)
    out = Image.new("RGB", (sum(i.width for i in images) + 40, height), "white")
    out.paste(images[0], (0, 0))
    out.paste(images[1], (images[0].width + 40, 0))
    buffer = io.BytesIO()
    out.save(buffer, format="PNG")
    return buffer.getvalue()


def test_only_the_data_subjects_face_of_the_probe_is_compared(
    app: Flask, client: FlaskClient, people: tuple[Agent, Agent], shared_dir: Path
) -> None:
    admin, curator = people
    subject, _ = _person(client, curator, shared_dir, "Frances_Fisher", "subject.example")
    bystander, _ = _person(client, curator, shared_dir, "Billy_Boyd", "bystander.example")
    photos = dev_photos(shared_dir)
    probe = _side_by_side(photos["Frances_Fisher"][2], photos["Billy_Boyd"][2])
    before = ledger_size(app)

    refused = problem(_preview(client, admin, probe), 422)
    assert refused["type"] == "/problems/multiple-faces" and len(refused["faces"]) == 2
    assert ledger_size(app) == before  # nothing was compared

    left = min(refused["faces"], key=lambda f: f["box"][0])["index"]
    response = _preview(client, admin, probe, face_index=str(left))
    assert response.status_code == 201, response.get_json()
    matched = {m["face_id"] for m in response.get_json()["matches"]}
    assert {f["id"] for p in subject for f in p["faces"]} <= matched
    assert not {f["id"] for p in bystander for f in p["faces"]} & matched
    assert _last_payload(app, "erasure:preview")["probe_faces"] == 2


@pytest.mark.skipif(
    make_url(os.environ.get("FACEWARDEN_TEST_DATABASE_URL") or "sqlite://").get_backend_name()
    != "postgresql",
    reason="SQLite takes its write lock when a unit of work begins, so two confirmations "
    "cannot overlap there; the race exists on PostgreSQL",
)
def test_two_confirmations_at_once_erase_once(
    app: Flask,
    people: tuple[Agent, Agent],
    deciders: tuple[Agent, Agent, Agent],
    shared_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _, curator = people
    requester, confirmer, _ = deciders
    client = app.test_client()
    mine, probe = _person(client, curator, shared_dir, "Elizabeth_Hendrickson", "race.example")
    wanted = sorted(f["id"] for p in mine for f in p["faces"])
    request_id = _preview(client, requester, probe).get_json()["id"]
    opened = client.get(f"/v1/erasures/requests/{request_id}", headers=confirmer.headers)
    assert opened.status_code == 200

    # Both confirmations have read the request as pending before either decides it.
    both_read = threading.Barrier(2, timeout=20)
    photos_where = erasure_requests.photos_where

    def in_step(*args: Any, **kwargs: Any) -> Any:
        found = photos_where(*args, **kwargs)
        both_read.wait()
        return found

    monkeypatch.setattr(erasure_requests, "photos_where", in_step)
    statuses: list[int] = []

    def confirm() -> None:
        statuses.append(_confirm(app.test_client(), confirmer, request_id, wanted).status_code)

    threads = [threading.Thread(target=confirm) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(statuses) == [201, 409]
    runs = [
        e
        for e in _entries(app)
        if e["type"] == "erasure:run" and e["payload"].get("erasure_request_id") == request_id
    ]
    assert len(runs) == 1
