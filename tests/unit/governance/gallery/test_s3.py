"""The S3 photo store against moto's S3 server on loopback: the file store's behaviours, the
checksums each upload carries, listing past a page, and an outage as PhotoStoreUnavailable."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from api.errors import answer_for
from governance.core.errors import NotFound
from governance.gallery.blobs import BlobStore, DamagedObject
from governance.gallery.s3 import PhotoStoreUnavailable, S3BlobStore
from tests.s3 import free_port, moto_s3

moto_server = pytest.importorskip("moto.server")

BUCKET = "facewarden-photos"


@pytest.fixture
def s3_endpoint(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A fresh moto S3 server on a free loopback port, with the bucket made."""
    with moto_s3(monkeypatch, BUCKET) as (endpoint, _server):
        yield endpoint


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value


def test_put_get_delete_round_trip(s3_endpoint: str) -> None:
    store = S3BlobStore(BUCKET, "gallery", endpoint_url=s3_endpoint)
    assert isinstance(store, BlobStore)
    digest = store.put(b"photo bytes")
    assert digest == hashlib.sha256(b"photo bytes").hexdigest()
    assert store.put(b"photo bytes") == digest  # idempotent
    assert store.get(digest) == b"photo bytes"
    keys = [o["Key"] for o in store.client.list_objects_v2(Bucket=BUCKET)["Contents"]]
    assert keys == [f"gallery/{digest[:2]}/{digest[2:4]}/{digest}"]  # the file store's layout
    assert store.exists(digest) is True
    assert store.delete(digest) is True
    assert store.delete(digest) is False
    assert store.exists(digest) is False
    with pytest.raises(NotFound):
        store.get(digest)
    assert store.modified(digest) is None


@pytest.mark.parametrize("name", ["../../etc/passwd", "ab", "Z" * 64, "a" * 63 + "/"])
def test_names_that_are_not_digests_are_refused(s3_endpoint: str, name: str) -> None:
    store = S3BlobStore(BUCKET, endpoint_url=s3_endpoint)
    with pytest.raises(NotFound):
        store.get(name)
    assert store.exists(name) is False
    assert store.delete(name) is False
    assert store.modified(name) is None


def test_each_upload_carries_the_md5_and_sha256_s3_checks_it_against(s3_endpoint: str) -> None:
    store = S3BlobStore(BUCKET, endpoint_url=s3_endpoint)
    sent: list[dict[str, Any]] = []
    store.client.meta.events.register(
        "before-send.s3.PutObject",
        lambda request, **_: sent.append({k: _text(v) for k, v in request.headers.items()}),
    )
    data = b"a face thumbnail"
    store.put(data)
    store.put(data)  # already there: no second upload
    assert len(sent) == 1
    md5 = base64.b64encode(hashlib.md5(data).digest()).decode()
    sha = base64.b64encode(hashlib.sha256(data).digest()).decode()
    assert sent[0]["Content-MD5"] == md5
    assert sent[0]["x-amz-checksum-sha256"] == sha


def test_an_object_of_another_size_under_the_name_is_replaced(s3_endpoint: str) -> None:
    store = S3BlobStore(BUCKET, endpoint_url=s3_endpoint)
    data = b"the whole photo"
    digest = hashlib.sha256(data).hexdigest()
    key = f"{digest[:2]}/{digest[2:4]}/{digest}"
    store.client.put_object(Bucket=BUCKET, Key=key, Body=data[:5])  # torn, by another tool
    assert store.put(data) == digest
    assert store.get(digest) == data


def test_an_object_of_the_same_size_but_other_bytes_is_replaced(s3_endpoint: str) -> None:
    store = S3BlobStore(BUCKET, endpoint_url=s3_endpoint)
    data = b"the whole photo"
    digest = hashlib.sha256(data).hexdigest()
    key = f"{digest[:2]}/{digest[2:4]}/{digest}"
    store.client.put_object(Bucket=BUCKET, Key=key, Body=data.upper())  # altered, same size
    assert store.put(data) == digest
    assert store.get(digest) == data


def test_bytes_that_do_not_hash_to_their_name_are_never_served(s3_endpoint: str) -> None:
    store = S3BlobStore(BUCKET, endpoint_url=s3_endpoint)
    digest = store.put(b"the whole photo")
    key = f"{digest[:2]}/{digest[2:4]}/{digest}"
    store.client.put_object(Bucket=BUCKET, Key=key, Body=b"another face")
    with pytest.raises(DamagedObject, match="does not match its SHA-256") as raised:
        store.get(digest)
    assert answer_for(raised.value).status == 503  # a problem naming the store, not a 500


def test_files_lists_every_object_past_a_page_and_nothing_else(s3_endpoint: str) -> None:
    store = S3BlobStore(BUCKET, "p", endpoint_url=s3_endpoint, page_size=2)
    digests = {store.put(f"photo {i}".encode()) for i in range(7)}
    elsewhere = S3BlobStore(BUCKET, "other", endpoint_url=s3_endpoint)
    elsewhere.put(b"another prefix's photo")
    misplaced = hashlib.sha256(b"misplaced").hexdigest()
    store.client.put_object(Bucket=BUCKET, Key=f"p/00/00/{misplaced}", Body=b"misplaced")
    store.client.put_object(Bucket=BUCKET, Key="p/notes.txt", Body=b"not the store's")
    calls: list[str] = []
    store.client.meta.events.register(
        "before-send.s3.ListObjectsV2", lambda request, **_: calls.append(request.url)
    )

    listed = list(store.files())
    assert sorted(f.name for f in listed) == sorted(digests)
    assert all(not f.temporary for f in listed)
    assert len(calls) == 5  # 10 keys under p/, two a page
    now = datetime.now(UTC)
    some = listed[0]
    assert now - timedelta(minutes=5) < some.modified <= now + timedelta(minutes=1)
    assert store.modified(some.name) == some.modified
    assert store.delete_temporary(f"{some.name[:2]}/{some.name[2:4]}/.incoming-x") is False


def test_a_missing_bucket_is_an_outage_naming_the_settings(s3_endpoint: str) -> None:
    store = S3BlobStore("no-such-bucket", endpoint_url=s3_endpoint)
    with pytest.raises(PhotoStoreUnavailable, match=r"NoSuchBucket.*FACEWARDEN_PHOTO_STORE"):
        store.get("a" * 64)
    with pytest.raises(PhotoStoreUnavailable, match="refused the request"):
        store.check()
    with pytest.raises(PhotoStoreUnavailable):
        list(store.files())


def test_a_store_that_cannot_be_reached_is_a_503(s3_endpoint: str) -> None:
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=free_port())
    server.start()
    host, port = server.get_host_and_port()
    store = S3BlobStore(BUCKET, endpoint_url=f"http://{host}:{port}")
    store.client.create_bucket(Bucket=BUCKET)
    stored = store.put(b"stored before the outage")
    server.stop()
    for call in (
        lambda: store.put(b"x"),
        lambda: store.get(stored),
        lambda: store.exists("a" * 64),
        lambda: list(store.files()),
        store.check,
    ):
        with pytest.raises(PhotoStoreUnavailable, match="cannot be reached") as raised:
            call()
        assert answer_for(raised.value).status == 503  # a problem naming the store, not a 500
        assert answer_for(raised.value).status == 503
        assert "127.0.0.1" not in raised.value.detail  # the endpoint goes to the log only
