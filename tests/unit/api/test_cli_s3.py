"""The CLI with the photo store in S3 (moto's server): ingest, doctor, backup and restore
keep every photo in the bucket and none in the data directory."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from tests.s3 import moto_s3
from tests.unit.api.test_cli_backup import _env, _ok, _refused, _tree
from tests.unit.api.test_cli_gallery import _dev_manifest

BUCKET = "facewarden-photos"


@pytest.fixture
def endpoint(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    with moto_s3(monkeypatch, BUCKET) as (url, _server):
        yield url


def _objects(endpoint: str, prefix: str) -> dict[str, bytes]:
    client = boto3.client("s3", endpoint_url=endpoint)
    listed = client.list_objects_v2(Bucket=BUCKET, Prefix=prefix + "/").get("Contents", [])
    return {
        o["Key"][len(prefix) + 1 :]: client.get_object(Bucket=BUCKET, Key=o["Key"])["Body"].read()
        for o in listed
    }


def test_ingest_doctor_backup_and_restore_with_the_photos_in_s3(
    tmp_path: Path, shared_dir: Path, endpoint: str
) -> None:
    store = {"FACEWARDEN_S3_ENDPOINT_URL": endpoint, "FACEWARDEN_BACKUP_PASSPHRASE": "a passphrase"}
    source = {**_env(tmp_path / "var", None), **store}
    source["FACEWARDEN_PHOTO_STORE"] = f"s3://{BUCKET}/source"
    _ok(["init", "--no-tls"], source)
    manifest = _dev_manifest(tmp_path, shared_dir, slice(50, 52), lambda i: "s3.example.org")
    assert "enrolled 2 photos" in _ok(["gallery", "ingest", str(manifest)], source)
    stored = _objects(endpoint, "source")
    assert len(stored) >= 4  # two photos and a thumbnail of each face
    assert _tree(tmp_path / "var" / "photos") == {}
    assert _ok(["doctor"], source).splitlines()[-1] == "clean"

    _ok(["backup", str(tmp_path / "b"), "--include-keys"], source)
    assert _tree(tmp_path / "b" / "photos") == stored  # the bucket's layout, as files

    restored = {**_env(tmp_path / "restored", None), **store}
    restored["FACEWARDEN_PHOTO_STORE"] = f"s3://{BUCKET}/restored"
    _ok(["restore", str(tmp_path / "b")], restored)
    assert _objects(endpoint, "restored") == stored
    assert _ok(["doctor"], restored).splitlines()[-1] == "clean"


def test_a_missing_bucket_is_named_in_one_line(tmp_path: Path, endpoint: str) -> None:
    env = {
        **_env(tmp_path / "var", None),
        "FACEWARDEN_S3_ENDPOINT_URL": endpoint,
        "FACEWARDEN_PHOTO_STORE": "s3://no-such-bucket",
    }
    _ok(["init", "--no-tls"], env)
    out = _refused(["doctor"], env)
    assert "photo store (S3) refused the request (NoSuchBucket)" in out
    assert "FACEWARDEN_PHOTO_STORE" in out


def test_a_bad_photo_store_setting_fails_at_start_up(tmp_path: Path) -> None:
    env = {**_env(tmp_path / "var", None), "FACEWARDEN_PHOTO_STORE": "s3://Not_A_Bucket"}
    out = _refused(["doctor"], env)
    assert "FACEWARDEN_PHOTO_STORE='s3://Not_A_Bucket' is neither 'file' nor an S3 URL" in out
