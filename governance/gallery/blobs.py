"""Content-addressed storage of gallery photos and face thumbnails.

Objects are named by the SHA-256 of their bytes, so a photo enrolled twice is stored once and a
stored object can be checked against its name. ``FileBlobStore`` keeps them under the data
directory; ``governance.gallery.s3.S3BlobStore`` keeps them in a bucket, behind the same
``BlobStore`` Protocol. ``files`` lists what is stored, so that ``facewarden doctor`` can find
objects no row names and temporary files an interrupted write left.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol, runtime_checkable

from governance.core.errors import NotFound, ServiceUnavailable

__all__ = ["BlobStore", "DamagedObject", "FileBlobStore", "StoredFile", "sha256_hex", "verified"]

_DIGEST = re.compile(r"^[0-9a-f]{64}$")
_TEMPORARY_PREFIX = ".incoming-"
# A temporary file's name: its two fan-out folders, then what ``tempfile.mkstemp`` made.
_TEMPORARY = re.compile(r"^[0-9a-f]{2}/[0-9a-f]{2}/\.incoming-[A-Za-z0-9_]+$")


def sha256_hex(data: bytes) -> str:
    """Hex SHA-256 of ``data``: the name an object is stored under."""
    return hashlib.sha256(data).hexdigest()


class DamagedObject(ServiceUnavailable):
    """A stored object's bytes do not hash to its name: the disk or the bucket damaged it, or
    someone altered it. Nothing is served from it; the detail tells the operators what to do."""


def verified(digest: str, data: bytes) -> bytes:
    """``data`` if it hashes to ``digest``. Raises DamagedObject."""
    if sha256_hex(data) != digest:
        raise DamagedObject(
            f"the stored object {digest} does not match its SHA-256: it was damaged or altered "
            "in the photo store. Restore it from a backup (facewarden restore), or erase the "
            "gallery photo that names it"
        )
    return data


@dataclass(frozen=True, slots=True)
class StoredFile:
    """One file of the store: an object, named by its digest, or a temporary file a write left
    behind (named by its place in the store, for ``delete_temporary``), with when it was last
    written."""

    name: str
    modified: datetime
    temporary: bool


@runtime_checkable
class BlobStore(Protocol):
    """Where photo and thumbnail bytes live, addressed by their SHA-256."""

    def put(self, data: bytes) -> str:
        """Store ``data``; returns its digest. Storing the same bytes twice is a no-op."""
        ...

    def get(self, digest: str) -> bytes:
        """The bytes stored under ``digest``, checked against it. Raises NotFound,
        DamagedObject."""
        ...

    def delete(self, digest: str) -> bool:
        """Remove the object; returns whether it existed."""
        ...

    def exists(self, digest: str) -> bool: ...

    def files(self) -> Iterator[StoredFile]:
        """Every object and temporary file stored now, in no particular order. Raises OSError."""
        ...

    def modified(self, digest: str) -> datetime | None:
        """When the object was last written; None when it is not stored."""
        ...

    def delete_temporary(self, name: str) -> bool:
        """Remove a temporary file ``files`` listed; returns whether it existed."""
        ...


def _holds(path: Path, digest: str) -> bool:
    try:
        return sha256_hex(path.read_bytes()) == digest
    except FileNotFoundError:
        return False


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
        if _holds(path, digest):
            return digest  # a damaged or altered file is replaced below
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=_TEMPORARY_PREFIX)
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
        """Raises NotFound when nothing is stored under ``digest``, DamagedObject."""
        try:
            data = self._path(digest).read_bytes()
        except FileNotFoundError as exc:
            raise NotFound(f"no stored object {digest}") from exc
        return verified(digest, data)

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

    def files(self) -> Iterator[StoredFile]:
        """Objects and temporary files under ``<root>/<aa>/<bb>/``; anything else is skipped.

        Raises OSError (the store cannot be read).
        """
        if not self.root.is_dir():
            return
        for first in _folders(self.root):
            for second in _folders(first):
                with os.scandir(second) as found:
                    for entry in found:
                        stored = _stored(entry, f"{first.name}/{second.name}")
                        if stored is not None:
                            yield stored

    def modified(self, digest: str) -> datetime | None:
        try:
            return _mtime(self._path(digest).stat().st_mtime)
        except (FileNotFoundError, NotFound):
            return None

    def delete_temporary(self, name: str) -> bool:
        try:
            self._temporary_path(name).unlink()
        except (FileNotFoundError, NotFound):
            return False
        return True

    def _temporary_path(self, name: str) -> Path:
        if not _TEMPORARY.match(name):
            raise NotFound(f"no temporary file {name[:80]!r}")
        return self.root / name


def _folders(parent: Path) -> list[Path]:
    """The two-hex-digit fan-out folders of ``parent``."""
    return sorted(
        p for p in parent.iterdir() if p.is_dir() and re.fullmatch(r"[0-9a-f]{2}", p.name)
    )


def _stored(entry: os.DirEntry[str], folder: str) -> StoredFile | None:
    if not entry.is_file(follow_symlinks=False):
        return None
    temporary = entry.name.startswith(_TEMPORARY_PREFIX)
    name = f"{folder}/{entry.name}" if temporary else entry.name
    if temporary:
        if not _TEMPORARY.match(name):
            return None
    elif not _DIGEST.match(name) or folder != f"{name[:2]}/{name[2:4]}":
        return None  # not where ``delete`` would look for it: not the store's
    try:
        modified = _mtime(entry.stat(follow_symlinks=False).st_mtime)
    except FileNotFoundError:  # removed since the folder was listed
        return None
    return StoredFile(name=name, modified=modified, temporary=temporary)


def _mtime(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, tz=UTC)
