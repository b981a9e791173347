"""The photo store in an S3 bucket: the ``BlobStore`` Protocol over boto3.

Keys mirror ``FileBlobStore``'s files, ``<prefix>/<aa>/<bb>/<digest>``, so a bucket synced to a
directory is a file store and back. boto3 is imported on first use, so that a service whose
store is the data directory never loads it and start-up stays fast.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import re
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from governance.core.errors import NotFound, ServiceUnavailable
from governance.gallery.blobs import StoredFile, sha256_hex, verified

__all__ = ["PhotoStoreUnavailable", "S3BlobStore"]

log = logging.getLogger("facewarden.gallery")

_DIGEST = re.compile(r"^[0-9a-f]{64}$")
# What S3 answers when the object is not there (a HEAD request's answer has no body: "404").
_ABSENT = {"404", "NoSuchKey", "NotFound"}
_SKIP = object()  # an absent object is no error: the block is left, nothing raised


class PhotoStoreUnavailable(ServiceUnavailable):
    """The photo store cannot be reached, or refuses this service (credentials, bucket).

    Its problem is ``service-unavailable`` (503): retrying may work once the operators have
    fixed what the detail names. The full cause (endpoint, bucket) goes to the log only.
    """


class S3BlobStore:
    """Objects under ``<prefix>/<aa>/<bb>/<digest>`` in ``bucket``.

    A PUT lands whole or not at all, and carries the MD5 and SHA-256 of its body (S3 refuses a
    body that does not match either), so a torn upload never lands under a digest's name.
    Hence there are no temporary files: ``files`` lists objects only, and ``delete_temporary``
    has nothing to remove. (The store never starts a multipart upload; a bucket lifecycle rule
    ``AbortIncompleteMultipartUpload`` cleans up after other tools.)

    Credentials and region come from boto3's own chain (``AWS_ACCESS_KEY_ID``,
    ``AWS_SECRET_ACCESS_KEY``, ``AWS_DEFAULT_REGION``, ``~/.aws/``, an instance role).
    """

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        endpoint_url: str | None = None,
        page_size: int = 1000,
        timeout_seconds: int = 10,
        client: Any = None,
    ) -> None:
        self.bucket = bucket
        self.timeout_seconds = timeout_seconds
        self.prefix = prefix.strip("/")
        self.endpoint_url = endpoint_url or None
        self.page_size = page_size
        self._client = client
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"S3BlobStore({self.location!r})"

    @property
    def location(self) -> str:
        """``s3://bucket/prefix``, as ``FACEWARDEN_PHOTO_STORE`` names it."""
        return f"s3://{self.bucket}/{self.prefix}".rstrip("/")

    # The Protocol

    def put(self, data: bytes) -> str:
        """Store ``data`` unless these very bytes are there already. Raises
        PhotoStoreUnavailable."""
        digest = sha256_hex(data)
        key = self._key(digest)
        if self._size(key) == len(data) and sha256_hex(self._read(key)) == digest:
            return digest
        # A same-named object that is not these bytes (torn or altered by another tool, or
        # written by a server that does not check checksums) is replaced. The read costs a
        # download only when the same photo is stored twice.
        with self._errors("store a photo"):
            self.client.put_object(
                Bucket=self.bucket,
                Key=key,
                Body=data,
                ContentMD5=base64.b64encode(hashlib.md5(data).digest()).decode("ascii"),  # noqa: S324 (an integrity check S3 verifies, not a security hash)
                ChecksumSHA256=base64.b64encode(bytes.fromhex(digest)).decode("ascii"),
                ContentType="application/octet-stream",
            )
        return digest

    def get(self, digest: str) -> bytes:
        """Raises NotFound when nothing is stored under ``digest``, DamagedObject when the
        bucket's bytes do not hash to it, PhotoStoreUnavailable."""
        return verified(digest, self._read(self._key(digest)))

    def delete(self, digest: str) -> bool:
        """Remove the object; returns whether it existed. Raises PhotoStoreUnavailable."""
        try:
            key = self._key(digest)
        except NotFound:
            return False
        if self._size(key) is None:
            return False
        with self._errors("delete a photo"):
            self.client.delete_object(Bucket=self.bucket, Key=key)
        return True

    def exists(self, digest: str) -> bool:
        """Raises PhotoStoreUnavailable."""
        try:
            return self._size(self._key(digest)) is not None
        except NotFound:
            return False

    def files(self) -> Iterator[StoredFile]:
        """Every object under the prefix, page by page; keys not laid out as the store lays
        them out are skipped. Raises PhotoStoreUnavailable."""
        start = f"{self.prefix}/" if self.prefix else ""
        with self._errors("list the photos"):
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=start, PaginationConfig={"PageSize": self.page_size}
            )
            for page in pages:
                for item in page.get("Contents", ()):
                    digest = item["Key"][len(start) :].rpartition("/")[2]
                    if _DIGEST.match(digest) and item["Key"] == self._key(digest):
                        yield StoredFile(
                            name=digest, modified=_utc(item["LastModified"]), temporary=False
                        )

    def modified(self, digest: str) -> datetime | None:
        """When the object was last written. Raises PhotoStoreUnavailable."""
        try:
            key = self._key(digest)
        except NotFound:
            return None
        with self._errors("look up a photo", absent=_SKIP):
            return _utc(self.client.head_object(Bucket=self.bucket, Key=key)["LastModified"])
        return None  # absent

    def delete_temporary(self, name: str) -> bool:
        """Nothing to remove: a PUT to S3 leaves no partial object (see the class)."""
        return False

    def check(self) -> str:
        """Confirm the bucket answers and lets this service in (one HEAD request).

        Raises PhotoStoreUnavailable.
        """
        with self._errors("reach the bucket"):
            self.client.head_bucket(Bucket=self.bucket)
        return "S3 bucket reachable"

    # Helpers

    @property
    def client(self) -> Any:
        """The boto3 S3 client, made on first use (boto3's clients are thread-safe; making
        one is not). Raises PhotoStoreUnavailable when boto3 finds no region."""
        if self._client is None:
            with self._lock:
                if self._client is None:
                    self._client = self._make_client()
        return self._client

    def _make_client(self) -> Any:
        import boto3
        from botocore.config import Config
        from botocore.exceptions import BotoCoreError

        # Three attempts in all, each bounded, so a store that hangs costs a request at most
        # about three timeouts and botocore's backoff (under a second, then two) between them.
        config = Config(
            connect_timeout=self.timeout_seconds,
            read_timeout=self.timeout_seconds,
            retries={"max_attempts": 3, "mode": "standard"},
            # The checksums this store sends itself; botocore's default CRC32 trailers are
            # refused by some S3-compatible servers.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )
        try:
            return boto3.session.Session().client(
                "s3", endpoint_url=self.endpoint_url, config=config
            )
        except BotoCoreError as exc:
            raise PhotoStoreUnavailable(
                f"the photo store (S3) cannot be set up ({type(exc).__name__}): set "
                "AWS_DEFAULT_REGION (or a region in ~/.aws/config)"
            ) from exc

    def _key(self, digest: str) -> str:
        if not _DIGEST.match(digest):
            raise NotFound(f"no stored object {digest[:80]!r}")
        name = f"{digest[:2]}/{digest[2:4]}/{digest}"
        return f"{self.prefix}/{name}" if self.prefix else name

    def _read(self, key: str) -> bytes:
        absent = NotFound(f"no stored object {key.rpartition('/')[2]}")
        with self._errors("read a photo", absent=absent):
            body = self.client.get_object(Bucket=self.bucket, Key=key)["Body"]
            try:
                data: bytes = body.read()
            finally:
                body.close()
        return data

    def _size(self, key: str) -> int | None:
        """The size of the object at ``key``; None when there is none."""
        with self._errors("look up a photo", absent=_SKIP):
            size: int = self.client.head_object(Bucket=self.bucket, Key=key)["ContentLength"]
            return size
        return None  # absent

    def _errors(self, what: str, *, absent: object = None) -> _Translated:
        return _Translated(self, what, absent)


class _Translated:
    """Turns boto3's failures into domain errors: an absent object into ``absent`` (an error
    raised, or ``_SKIP``: none), anything else (an absent object too when ``absent`` is None:
    a HEAD of a missing bucket) into PhotoStoreUnavailable, with the cause logged."""

    def __init__(self, store: S3BlobStore, what: str, absent: object) -> None:
        self.store, self.what, self.absent = store, what, absent

    def __enter__(self) -> None:
        return None

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, _tb: Any
    ) -> bool:
        if exc is None or not isinstance(exc, Exception) or isinstance(exc, NotFound):
            return False
        from botocore.exceptions import (
            BotoCoreError,
            ClientError,
            ConnectTimeoutError,
            ReadTimeoutError,
        )

        if isinstance(exc, ClientError):
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code in _ABSENT and self.absent is _SKIP:
                return True
            if code in _ABSENT and isinstance(self.absent, Exception):
                raise self.absent from exc
            reason = f"refused the request ({code or 'no error code'})"
        elif isinstance(exc, ConnectTimeoutError | ReadTimeoutError):
            reason = (
                "cannot be reached (no answer within FACEWARDEN_S3_TIMEOUT_SECONDS="
                f"{self.store.timeout_seconds} s, three times)"
            )
        elif isinstance(exc, BotoCoreError):
            reason = f"cannot be reached ({type(exc).__name__})"
        else:
            return False
        # One line with the cause and the endpoint, for the operators; callers get the detail.
        log.warning("photo store %s: cannot %s: %s", self.store.location, self.what, exc)
        raise PhotoStoreUnavailable(
            f"the photo store (S3) {reason}, so this service cannot {self.what}: check "
            "FACEWARDEN_PHOTO_STORE, FACEWARDEN_S3_ENDPOINT_URL and the AWS credentials"
        ) from exc


def _utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
