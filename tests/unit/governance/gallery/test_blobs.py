"""Content-addressed photo storage: idempotent, verifiable, owner-only, traversal-proof."""

from __future__ import annotations

import hashlib
import os
import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest

from governance.core.errors import NotFound
from governance.gallery.blobs import BlobStore, DamagedObject, FileBlobStore


def test_put_get_delete_round_trip(tmp_path: Path) -> None:
    store = FileBlobStore(tmp_path)
    assert isinstance(store, BlobStore)
    digest = store.put(b"photo bytes")
    assert digest == hashlib.sha256(b"photo bytes").hexdigest()
    assert store.put(b"photo bytes") == digest  # idempotent
    assert store.get(digest) == b"photo bytes"
    path = tmp_path / digest[:2] / digest[2:4] / digest
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert store.delete(digest) is True
    assert store.delete(digest) is False
    assert not store.exists(digest)
    with pytest.raises(NotFound):
        store.get(digest)
    assert not list(tmp_path.rglob(".incoming-*"))


def test_a_damaged_file_is_never_served_and_is_replaced_by_the_next_put(tmp_path: Path) -> None:
    store = FileBlobStore(tmp_path)
    digest = store.put(b"photo bytes")
    (tmp_path / digest[:2] / digest[2:4] / digest).write_bytes(b"photo bytez")
    with pytest.raises(DamagedObject, match="does not match its SHA-256"):
        store.get(digest)
    assert store.put(b"photo bytes") == digest
    assert store.get(digest) == b"photo bytes"


@pytest.mark.parametrize("name", ["../../etc/passwd", "ab", "Z" * 64, "a" * 63 + "/"])
def test_names_that_are_not_digests_are_refused(tmp_path: Path, name: str) -> None:
    store = FileBlobStore(tmp_path)
    with pytest.raises(NotFound):
        store.get(name)
    assert store.exists(name) is False
    assert store.delete(name) is False


def test_files_lists_objects_and_temporary_files_and_nothing_else(tmp_path: Path) -> None:
    store = FileBlobStore(tmp_path)
    assert list(store.files()) == []  # the store's folder does not exist yet
    digest = store.put(b"a photo")
    folder = tmp_path / digest[:2] / digest[2:4]
    (folder / ".incoming-k3y_9x").write_bytes(b"half a photo")
    (folder / "notes.txt").write_text("not the store's")
    misplaced = hashlib.sha256(b"elsewhere").hexdigest()
    (folder / misplaced).write_bytes(b"elsewhere")  # not where delete() would look
    (tmp_path / "lost+found").mkdir()
    os.utime(folder / digest, (1_700_000_000, 1_700_000_000))

    listed = sorted(store.files(), key=lambda f: f.name)
    temporary = f"{digest[:2]}/{digest[2:4]}/.incoming-k3y_9x"
    assert [(f.name, f.temporary) for f in listed] == sorted([(digest, False), (temporary, True)])
    written = datetime.fromtimestamp(1_700_000_000, tz=UTC)
    assert next(f for f in listed if not f.temporary).modified == written
    assert store.modified(digest) == written
    assert store.modified("f" * 64) is None
    assert store.delete_temporary(temporary) is True
    assert store.delete_temporary(temporary) is False
    assert [f.name for f in store.files()] == [digest]


@pytest.mark.parametrize(
    "name", ["../.incoming-x", "ab/cd/../../../x", "ab/cd/photo", "ab/cd/.incoming-a/b", "a" * 64]
)
def test_delete_temporary_removes_only_temporary_files(tmp_path: Path, name: str) -> None:
    store = FileBlobStore(tmp_path / "store")
    store.put(b"kept")
    (tmp_path / ".incoming-x").write_bytes(b"outside the store")
    assert store.delete_temporary(name) is False
    assert (tmp_path / ".incoming-x").exists()
    assert len(list(store.files())) == 1
