"""Curators enrol photos with provenance; bad images and provenance are refused cleanly."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from PIL import Image

from api.context import engines
from tests.api.faces import dev_photos, enroll, variant
from tests.api.helpers import (
    Agent,
    ledger_size,
    ledger_types,
    make_admin,
    make_staff,
    problem,
    runtime_of,
)


@pytest.fixture(scope="module")
def curator(app: Flask) -> Agent:
    client = app.test_client()
    return make_staff(client, make_admin(app), "curator")


@pytest.fixture(scope="module")
def photos(shared_dir: Path) -> dict[str, list[Path]]:
    return dev_photos(shared_dir)


def _ledger_payload(app: Flask, seq: int) -> dict[str, Any]:
    import json

    from sqlalchemy import select

    from ledger.storage import entries

    with runtime_of(app).engine.connect() as conn:
        body = conn.execute(select(entries.c.body).where(entries.c.seq == seq)).scalar_one()
    payload: dict[str, Any] = json.loads(bytes(body))["payload"]
    return payload


def test_enrol_a_photo_with_its_provenance(
    app: Flask, client: FlaskClient, curator: Agent, photos: dict[str, list[Path]]
) -> None:
    before = ledger_size(app)
    data = variant(photos["Bill_Nighy"][0])
    response = enroll(
        client,
        curator,
        data,
        url="https://www.Flickr.com/photos/x/123",
        subject_ref="case-file-7",
    )
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert response.headers["Location"].endswith(f"/v1/gallery/photos/{body['id']}")
    assert body["source_site"] == "flickr.com"
    assert body["collection_basis"] == "public_record"
    assert body["subject_ref"] == "case-file-7"
    assert body["pack_name"] == runtime_of(app).model_pack.name
    assert len(body["faces"]) == 1
    face = body["faces"][0]
    x1, y1, x2, y2 = face["box"]
    assert 0 <= x1 < x2 and 0 <= y1 < y2
    assert face["detection_score"] > 0.5 and face["size_px"] >= 32

    assert ledger_types(app, after=before - 1) == ["gallery:enroll"]
    payload = _ledger_payload(app, before)
    assert payload["photo_sha256"] == body["sha256"]
    assert payload["face_ids"] == [face["id"]]
    assert "flickr" not in str(payload).replace("flickr.com", "")  # the URL itself stays out
    assert "source_url" not in payload

    read = client.get(f"/v1/gallery/photos/{body['id']}", headers=curator.headers)
    assert read.status_code == 200 and read.get_json()["sha256"] == body["sha256"]
    image = client.get(f"/v1/gallery/photos/{body['id']}/image", headers=curator.headers)
    assert image.data == data and image.mimetype == "image/png"
    thumb = client.get(f"/v1/gallery/faces/{face['id']}/thumbnail", headers=curator.headers)
    assert thumb.mimetype == "image/jpeg"
    assert max(Image.open(io.BytesIO(thumb.data)).size) <= 160
    listed = client.get("/v1/gallery/photos?site=flickr.com", headers=curator.headers)
    assert body["id"] in [p["id"] for p in listed.get_json()["items"]]


def test_the_same_photo_twice_is_a_conflict(
    client: FlaskClient, curator: Agent, photos: dict[str, list[Path]]
) -> None:
    data = variant(photos["Bill_Nighy"][1])
    assert enroll(client, curator, data).status_code == 201
    body = problem(enroll(client, curator, data), 409)
    assert body["type"] == "/problems/photo-already-enrolled"


def test_a_collection_time_without_offset_says_to_add_one(
    client: FlaskClient, curator: Agent, photos: dict[str, list[Path]]
) -> None:
    response = enroll(
        client, curator, variant(photos["Bill_Nighy"][2]), collected_at="2026-01-01T00:00:00"
    )
    body = problem(response, 422)
    messages = [e["detail"] for e in body["errors"] if e["field"] == "collected_at"]
    assert messages == ["The datetime has no offset: add an offset such as Z (UTC) or +02:00."]


@pytest.mark.parametrize(
    ("fields", "field", "status"),
    [
        ({"url": "ftp://example.org/a.jpg"}, "source_url", 422),
        ({"url": "https://user:pw@example.org/a.jpg"}, "source_url", 422),
        ({"collected_at": "2999-01-01T00:00:00Z"}, "collected_at", 422),
        ({"collected_at": "2026-01-01T00:00:00"}, "collected_at", 422),
        ({"collected_at": "0001-01-01T00:00:00Z"}, "collected_at", 422),
        ({"collected_at": "1989-12-31T23:59:59Z"}, "collected_at", 422),
        ({"basis": "scraped"}, "collection_basis", 422),
    ],
)
def test_bad_provenance_is_refused_per_field(
    client: FlaskClient,
    curator: Agent,
    photos: dict[str, list[Path]],
    fields: dict[str, str],
    field: str,
    status: int,
) -> None:
    body = problem(enroll(client, curator, variant(photos["Bill_Nighy"][2]), **fields), status)
    assert field in [e["field"] for e in body["errors"]]


def _png_header(width: int, height: int) -> bytes:
    """A few hundred bytes that declare a width x height PNG (a decompression bomb's header)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + chunk(b"IEND", b"")
    )


def _blank_jpeg() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (320, 240), (128, 128, 128)).save(out, format="JPEG")
    return out.getvalue()


@pytest.mark.parametrize(
    ("make", "status", "kind"),
    [
        (lambda p: b"GIF89a" + b"\x00" * 64, 415, None),
        (lambda p: b"%PDF-1.7 not an image", 415, None),
        (lambda p: p.read_bytes()[:400], 422, None),
        (lambda p: _png_header(50_000, 50_000), 413, None),
        (lambda p: _blank_jpeg(), 422, "no-face"),
    ],
    ids=["gif", "pdf", "truncated-jpeg", "decompression-bomb", "no-face"],
)
def test_hostile_and_unusable_images_are_refused_cleanly(
    app: Flask,
    client: FlaskClient,
    curator: Agent,
    photos: dict[str, list[Path]],
    make: Any,
    status: int,
    kind: str | None,
) -> None:
    before = ledger_size(app)
    body = problem(enroll(client, curator, make(photos["Bill_Nighy"][0])), status)
    assert body["detail"]
    assert ledger_size(app) == before, "a refused enrolment records nothing"


def test_a_failed_ledger_append_leaves_no_trace(
    app: Flask,
    client: FlaskClient,
    curator: Agent,
    photos: dict[str, list[Path]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import governance.core.recording
    from ledger.storage import LedgerCorrupted

    with app.app_context():
        index = engines().index
        blobs_root = engines().blobs.root  # type: ignore[attr-defined]
    faces_before = index.count()
    files_before = sorted(p for p in blobs_root.rglob("*") if p.is_file())

    def broken(*_a: Any, **_k: Any) -> Any:
        raise LedgerCorrupted("simulated: the ledger cannot be appended to")

    monkeypatch.setattr(governance.core.recording, "append", broken)
    response = enroll(client, curator, variant(photos["Billy_Boyd"][0]))
    assert problem(response, 503)["type"] == "/problems/ledger-unavailable"
    assert index.count() == faces_before
    assert sorted(p for p in blobs_root.rglob("*") if p.is_file()) == files_before
