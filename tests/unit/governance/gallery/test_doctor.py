"""The gallery's doctor on real components: rows in the test database, a milvus-lite index and
photo files of its own, photos enrolled with the real models; each leftover made for real."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from uuid import uuid4

import numpy as np
import pytest
from sqlalchemy import delete, update
from sqlalchemy.orm import Session

from biometrics.index import IndexedFace, MilvusIndex
from governance.core.work import Units
from governance.gallery import doctor, photos
from governance.gallery.blobs import FileBlobStore
from governance.gallery.doctor import Findings, MissingFile
from governance.gallery.models import GalleryFace, GalleryPhoto
from governance.gallery.photos import FaceEngines, PhotoInfo, Provenance
from ledger.entry import Actor, parse_entry
from ledger.storage import entry_bytes
from tests import factories
from tests.api.faces import variant
from tests.factories import NOW
from tests.unit.governance.gallery.recorded import appended, last_seq

OPERATOR = Actor(kind="operator", id="test", agency=None)
GRACE = timedelta(minutes=10)
OLD = NOW - timedelta(hours=1)
FRESH = NOW - timedelta(minutes=1)


@dataclasses.dataclass
class Gallery:
    """Three enrolled photos, their own index and store, and the units of work over them."""

    units: Units
    engines: FaceEngines
    index: MilvusIndex
    blobs: FileBlobStore
    photos: list[PhotoInfo]

    @property
    def recognizer(self) -> str:
        return self.engines.analyzer.model.recognizer_sha256

    @property
    def stores(self) -> doctor.Stores:
        return doctor.Stores(self.index, self.blobs, self.recognizer)

    def examine(self) -> Findings:
        return doctor.examine(self.units, self.stores, grace=GRACE)

    def repair(self, waited: list[float]) -> doctor.Repair:
        return doctor.repair(
            self.units, self.stores, actor=OPERATOR, grace=GRACE, wait=waited.append
        )

    def stored(self, data: bytes, modified: datetime) -> str:
        """Store ``data`` as if written at ``modified``; returns its digest."""
        digest = self.blobs.put(data)
        _touch(self.blobs.root / digest[:2] / digest[2:4] / digest, modified)
        return digest

    def temporary(self, name: str, modified: datetime) -> str:
        path = self.blobs.root / "ab" / "cd" / f".incoming-{name}"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"half a photo")
        _touch(path, modified)
        return f"ab/cd/.incoming-{name}"


def _touch(path: Path, modified: datetime) -> None:
    os.utime(path, (modified.timestamp(), modified.timestamp()))


@pytest.fixture
def gallery(
    units: Units,
    session: Session,
    engines: FaceEngines,
    tmp_path: Path,
    faces_dir: dict[str, list[Path]],
) -> Iterator[Gallery]:
    # Only this test's rows: others' (committed by earlier tests) have no files in this store.
    session.execute(delete(GalleryFace))
    session.execute(delete(GalleryPhoto))
    index = MilvusIndex(
        str(tmp_path / "index.db"), recognizer_sha256=engines.analyzer.model.recognizer_sha256
    )
    index.ensure_collection(engines.analyzer.model.dimension)
    blobs = FileBlobStore(tmp_path / "photos")
    own = dataclasses.replace(engines, index=index, blobs=blobs)
    enrolled = [
        photos.enroll(
            units,
            own,
            image=variant(paths[0]),
            provenance=Provenance(
                source_url=f"https://doctor.example.org/{i}.png",
                collected_at=NOW - timedelta(days=1),
                collection_basis="consent",
            ),
            actor=OPERATOR,
        )
        for i, paths in enumerate(list(faces_dir.values())[:3])
    ]
    yield Gallery(units, own, index, blobs, enrolled)
    index.close()


def _face_ids(gallery: Gallery) -> set[str]:
    return {str(face.id) for photo in gallery.photos for face in photo.faces}


def test_a_consistent_gallery_is_clean(gallery: Gallery) -> None:
    findings = gallery.examine()

    faces = len(_face_ids(gallery))
    assert findings.clean is True
    assert (findings.faces, findings.vectors, findings.other_faces) == (faces, faces, 0)
    assert findings.stored_files == len(gallery.photos) + faces  # photos and thumbnails
    assert findings.recent == 0


def test_every_kind_of_leftover_is_found_repaired_and_recorded(
    gallery: Gallery, session: Session
) -> None:
    unindexed = str(gallery.photos[0].faces[0].id)
    gallery.index.delete([unindexed])
    stray = str(uuid4())
    vector = np.ones(gallery.engines.analyzer.model.dimension, dtype=np.float32)
    gallery.index.insert([IndexedFace(stray, str(uuid4()), "killed.example", vector)])
    lost = gallery.photos[1]
    lost_bytes = gallery.blobs.get(lost.sha256)
    gallery.blobs.delete(lost.sha256)
    orphan = gallery.stored(b"the photo of an enrolment killed before its commit", OLD)
    young = gallery.stored(b"the photo of an enrolment still running", FRESH)
    stale = gallery.temporary("killed0", OLD)
    writing = gallery.temporary("running", FRESH)

    found = gallery.examine()
    assert found.unindexed_faces == (unindexed,)
    assert found.vectors_without_rows == (stray,)
    assert found.files_without_rows == (orphan,)
    assert found.rows_without_files == (MissingFile("photo", str(lost.id), lost.sha256),)
    assert found.stale_temporary_files == (stale,)
    assert found.recent == 2  # the young photo and the temporary file being written
    assert found.clean is False

    since = last_seq(session)
    waited: list[float] = []
    repaired = gallery.repair(waited)

    assert waited == [GRACE.total_seconds()]  # the vectors were looked at twice
    counts = (
        repaired.faces_reindexed,
        repaired.vectors_deleted,
        repaired.files_deleted,
        repaired.temporary_files_deleted,
    )
    assert counts == (1, 1, 1, 1)
    assert repaired.complete is False  # the lost photo cannot be rebuilt from the database
    assert repaired.findings.rows_without_files == found.rows_without_files
    assert appended(session, since) == [
        (
            "gallery:repair",
            {
                "recognizer_sha256": gallery.recognizer,
                "faces_reindexed": 1,
                "vectors_deleted": 1,
                "files_deleted": 1,
                "temporary_files_deleted": 1,
                "rows_without_files": 1,
            },
        )
    ]
    # The verifier's own parser reads the new entry type.
    seq = last_seq(session)
    assert parse_entry(entry_bytes(session, seq, seq + 1)[0]).type == "gallery:repair"

    assert set(gallery.index.face_ids()) == _face_ids(gallery)
    [hit] = gallery.index.search(
        np.frombuffer(
            session.get(GalleryFace, gallery.photos[0].faces[0].id).embedding, np.float32
        ),
        1,
    )
    assert (hit.face_id, hit.score) == (unindexed, pytest.approx(1.0, abs=1e-5))
    assert gallery.blobs.exists(orphan) is False
    assert gallery.blobs.exists(young) is True  # younger than the grace period: left alone
    left = {f.name for f in gallery.blobs.files() if f.temporary}
    assert left == {writing}

    after = gallery.examine()
    assert after.rows_without_files == found.rows_without_files
    assert (after.unindexed_faces, after.vectors_without_rows, after.files_without_rows) == (
        (),
        (),
        (),
    )
    gallery.blobs.put(lost_bytes)  # restored from a backup
    assert gallery.examine().clean is True


def test_what_a_unit_of_work_explains_before_the_second_look_is_left_alone(
    gallery: Gallery, session: Session
) -> None:
    # An enrolment inserted its vector and has not committed; a removal deleted a vector and
    # will roll back, putting it back.
    enrolling = uuid4()
    vector = np.ones(gallery.engines.analyzer.model.dimension, dtype=np.float32)
    gallery.index.insert([IndexedFace(str(enrolling), str(uuid4()), "busy.example", vector)])
    removed = gallery.photos[2].faces[0]
    embedding = session.get(GalleryFace, removed.id).embedding  # type: ignore[union-attr]
    gallery.index.delete([str(removed.id)])

    def meanwhile(_seconds: float) -> None:
        row = factories.gallery_photo(
            session, recognizer_sha256=gallery.recognizer, sha256=gallery.blobs.put(b"photo")
        )
        session.execute(
            update(GalleryFace)
            .where(GalleryFace.photo_id == row.id)
            .values(id=enrolling, thumbnail_sha256=gallery.blobs.put(b"its thumbnail"))
        )
        restored = np.frombuffer(embedding, np.float32).copy()
        gallery.index.upsert(
            [IndexedFace(str(removed.id), str(removed.photo_id), removed.source_site, restored)]
        )

    since = last_seq(session)
    repaired = doctor.repair(
        gallery.units, gallery.stores, actor=OPERATOR, grace=GRACE, wait=meanwhile
    )

    assert (repaired.faces_reindexed, repaired.vectors_deleted) == (0, 0)
    assert str(enrolling) in set(gallery.index.face_ids())
    assert appended(session, since) == []  # nothing was repaired: nothing to record


def test_vectors_of_faces_of_another_recognizer_are_strays_of_this_collection(
    gallery: Gallery, session: Session
) -> None:
    other = factories.gallery_photo(session, recognizer_sha256="e" * 64)
    face = other.faces[0]
    vector = np.frombuffer(face.embedding, np.float32).copy()
    gallery.index.insert([IndexedFace(str(face.id), str(other.id), other.source_site, vector)])

    found = gallery.examine()

    assert found.other_faces == 1
    assert found.vectors_without_rows == (str(face.id),)
    assert {m.row_id for m in found.rows_without_files} == {str(other.id), str(face.id)}
