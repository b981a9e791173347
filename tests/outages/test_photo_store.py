"""The S3 photo store goes away under a running service: 503 naming it, nothing kept, recovery.

moto's S3 server, reached through a relay the test cuts (every connection reset, new ones
refused: what the service sees when the store stops) or freezes (nothing answered: a store
that hangs), then restores. The relay keeps moto's buckets, which live in its memory, across
the outage, as a real store keeps its objects.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select

from api.context import engines
from governance.gallery.models import GalleryPhoto
from ledger.storage import entries
from tests.api.faces import dev_photos, enroll, variant
from tests.api.helpers import make_admin, make_staff, problem, runtime_of
from tests.outages.load import OUTAGES, Load
from tests.outages.relay import Relay
from tests.outages.test_database import embedded_app
from tests.s3 import moto_s3

pytestmark = pytest.mark.slow

BUCKET = "facewarden-photos"
TIMEOUT = 1  # FACEWARDEN_S3_TIMEOUT_SECONDS in these tests
# botocore's standard mode makes 3 attempts, with a backoff of up to 1 s, then 2 s, between them:
# a refused connection fails each attempt at once, a frozen store after the timeout. An enrolment
# that straddles the thaw waits out those attempts on its first call and then makes its other
# calls (up to four: HEAD and PUT of the photo and of its thumbnail) on a loaded machine.
WITHIN = 3 * TIMEOUT + 3 + 8
RECOVERY_SECONDS = 10


@pytest.fixture
def relayed_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Flask, Relay]]:
    with moto_s3(monkeypatch, BUCKET) as (endpoint, _server):
        host, port = endpoint.removeprefix("http://").rsplit(":", 1)
        relay = Relay((host, int(port)))
        try:
            app = embedded_app(
                tmp_path,
                photo_store=f"s3://{BUCKET}/outage",
                s3_endpoint_url=f"http://127.0.0.1:{relay.port}",
                s3_timeout_seconds=str(TIMEOUT),
            )
            yield app, relay
            runtime_of(app).engine.dispose()
        finally:
            relay.close()


def _enrolled(app: Flask) -> tuple[list[str], int]:
    """The stored photos' digests, and how many ledger entries record an enrolment."""
    with runtime_of(app).sessions() as session:
        digests = list(session.scalars(select(GalleryPhoto.sha256)))
        recorded = session.scalar(
            select(func.count()).select_from(entries).where(entries.c.type == "gallery:enroll")
        )
    return digests, int(recorded or 0)


@OUTAGES
def test_a_photo_store_outage_is_a_503_naming_it_nothing_is_kept_and_it_recovers(
    relayed_store: tuple[Flask, Relay], shared_dir: Path, how: str, back: str
) -> None:
    app, relay = relayed_store
    client = app.test_client()
    curator = make_staff(client, make_admin(app), "curator")
    photos = dev_photos(shared_dir)["Bill_Nighy"]
    first = enroll(client, curator, variant(photos[0]))
    assert first.status_code == 201, first.get_json()
    image_path = f"/v1/gallery/photos/{first.get_json()['id']}/image"
    assert client.get("/readyz").get_json()["checks"]["photo_store"]["ok"] is True
    calls: dict[str, Any] = {
        "healthz": lambda c: c.get("/healthz"),
        "image": lambda c: c.get(image_path, headers=curator.headers),
        "enroll": lambda c: enroll(c, curator, variant(photos[1])),
    }

    with Load(app, calls, parts={"service-unavailable"}, within=WITHIN) as load:
        getattr(relay, how)()
        load.refused_since(time.monotonic())
        started = time.monotonic()
        for response in (
            client.get(image_path, headers=curator.headers),
            enroll(client, curator, variant(photos[2])),
        ):
            body = problem(response, 503)
            assert body["type"] == "/problems/service-unavailable"
            assert "photo store (S3) cannot be reached" in str(body["detail"])
            assert "FACEWARDEN_PHOTO_STORE" in str(body["detail"])
            if how == "freeze":
                assert f"FACEWARDEN_S3_TIMEOUT_SECONDS={TIMEOUT} s" in str(body["detail"])
        took = time.monotonic() - started
        readiness = client.get("/readyz")
        assert readiness.status_code == 503
        assert readiness.get_json()["checks"]["photo_store"]["ok"] is False

        getattr(relay, back)()
        restored = time.monotonic()
        load.served_since(restored, timeout=RECOVERY_SECONDS)
        recovered = time.monotonic() - restored
    answers = load.check()
    assert client.get("/readyz").status_code == 200
    # Nothing of a refused enrolment was kept: every photo row is in the ledger and the bucket.
    digests, recorded = _enrolled(app)
    assert len(digests) == recorded
    with app.app_context():
        store = engines().blobs
        assert all(store.exists(digest) for digest in digests)
    print(
        f"photo store {how}: refused in {took:.1f} s (two requests); {load.refused()} of "
        f"{len(answers)} answers refused; recovered {recovered:.2f} s after the restore"
    )
