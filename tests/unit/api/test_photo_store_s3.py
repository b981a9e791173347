"""The API with its photos in S3 (moto): an enrolment stores them in the bucket and reads
them back; once the store is gone a read is a 503 problem and /readyz names the photo store."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from api.context import engines
from governance.gallery.s3 import S3BlobStore
from tests.api.faces import dev_photos, enroll, variant
from tests.api.helpers import make_admin, make_staff, problem, runtime_of
from tests.s3 import moto_s3

BUCKET = "facewarden-photos"


@pytest.fixture
def s3_app(app: Flask, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Flask, Any, str]]:
    """The suite's app with its photo store (and settings) pointed at a moto bucket for the
    test; the server, to stop it; its endpoint."""
    rt = runtime_of(app)
    with app.app_context():
        built = engines()
    with moto_s3(monkeypatch, BUCKET) as (endpoint, server):
        store = S3BlobStore(BUCKET, "api", endpoint_url=endpoint)
        monkeypatch.setitem(rt.lazy, "engines", dataclasses.replace(built, blobs=store))
        monkeypatch.setitem(rt.lazy, "photo_store", store)
        monkeypatch.setattr(
            rt,
            "settings",
            dataclasses.replace(
                rt.settings, photo_store=f"s3://{BUCKET}/api", s3_endpoint_url=endpoint
            ),
        )
        yield app, server, endpoint


def test_enrolment_and_photo_reads_go_to_the_bucket_and_an_outage_is_a_503(
    s3_app: tuple[Flask, Any, str], shared_dir: Path
) -> None:
    app, server, _endpoint = s3_app
    client: FlaskClient = app.test_client()
    curator = make_staff(client, make_admin(app), "curator")
    data = variant(dev_photos(shared_dir)["Bill_Nighy"][2])
    response = enroll(client, curator, data, url="https://s3.example.org/p/1.jpg")
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    store = engines_store(app)
    assert store.exists(body["sha256"]) is True
    digest = body["sha256"]
    local = runtime_of(app).settings.photos_dir / digest[:2] / digest[2:4] / digest
    assert not local.exists()
    image = client.get(f"/v1/gallery/photos/{body['id']}/image", headers=curator.headers)
    assert image.status_code == 200 and image.data == data

    ready = client.get("/readyz").get_json()
    assert ready["checks"]["photo_store"] == {"ok": True, "detail": "S3 bucket reachable"}

    server.stop()
    image = client.get(f"/v1/gallery/photos/{body['id']}/image", headers=curator.headers)
    found = problem(image, 503)
    assert found["type"] == "/problems/service-unavailable"
    assert "photo store (S3) cannot be reached" in found["detail"]
    assert "127.0.0.1" not in found["detail"]
    probe = client.get("/readyz")
    assert probe.status_code == 503
    assert probe.get_json()["checks"]["photo_store"]["ok"] is False


def engines_store(app: Flask) -> S3BlobStore:
    store = runtime_of(app).lazy["engines"].blobs
    assert isinstance(store, S3BlobStore)
    return store
