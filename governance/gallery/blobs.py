"""Content-addressed storage of gallery photos and face thumbnails.

Objects are named by the SHA-256 of their bytes, so a photo enrolled twice is stored once and a
stored object can be checked against its name. ``FileBlobStore`` keeps them under the data
directory; an S3-compatible store can implement the same ``BlobStore`` Protocol.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from pathlib import Path
from typing import Protocol, runtime_checkable

from governance.core.errors import NotFound

__all__ = ["BlobStore", "FileBlobStore", "sha256_hex"]

_DIGEST = re.compile(r"^[0-9a-f]{64}$")


def sha256_hex(data: bytes) -> str:
    """Hex SHA-256 of ``data``: the name an object is stored under."""
    return hashlib.sha256(data).hexdigest()


@runtime_checkable
class BlobStore(Protocol):
    """Where photo and thumbnail bytes live, addressed by their SHA-256."""

    def put(self, data: bytes) -> str:
        """Store ``data``; returns its digest. Storing the same bytes twice is a no-op."""
        ...

    def get(self, digest: str) -> bytes:
        """The bytes stored under ``digest``. Raises NotFound."""
        ...

    def delete(self, digest: str) -> bool:
        """Remove the object; returns whether it existed."""
        ...

    def exists(self, digest: str) -> bool: ...


class FileBlobStore:
    """Objects as files ``<root>/<aa>/<bb>/<digest>``, written atomically with owner-only modes."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def _path(self, digest: str) -> Path:
        if not _DIGEST.match(digest):
            raise NotFound(f"no stored object {digest[:80]!r}")
        return self.root / digest[:2] / digest[2:4] / digest

    def put(self, data: bytes) -> str:
        """Store ``data`` (fsync'd before it becomes visible). Raises OSError."""
        digest = sha256_hex(data)
        path = self._path(digest)
        if path.exists():
            return digest
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".incoming-")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.chmod(tmp, 0o600)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return digest

    def get(self, digest: str) -> bytes:
        """Raises NotFound when nothing is stored under ``digest``."""
        try:
            return self._path(digest).read_bytes()
        except FileNotFoundError as exc:
            raise NotFound(f"no stored object {digest}") from exc

    def delete(self, digest: str) -> bool:
        try:
            self._path(digest).unlink()
        except FileNotFoundError:
            return False
        except NotFound:
            return False
        return True

    def exists(self, digest: str) -> bool:
        try:
            return self._path(digest).is_file()
        except NotFound:
            return False
