"""Content-addressed photo storage: idempotent, verifiable, owner-only, traversal-proof."""

from __future__ import annotations

import hashlib
import stat
from pathlib import Path

import pytest

from governance.core.errors import NotFound
from governance.gallery.blobs import BlobStore, FileBlobStore


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


@pytest.mark.parametrize("name", ["../../etc/passwd", "ab", "Z" * 64, "a" * 63 + "/"])
def test_names_that_are_not_digests_are_refused(tmp_path: Path, name: str) -> None:
    store = FileBlobStore(tmp_path)
    with pytest.raises(NotFound):
        store.get(name)
    assert store.exists(name) is False
    assert store.delete(name) is False
