"""Enrolling photos (with the real models), reading them back, and removing them."""

from __future__ import annotations

import os
import threading
import time
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from uuid import uuid4

import numpy as np
import pytest
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from biometrics.errors import IndexUnavailable
from biometrics.index import VectorIndex
from governance.core.db import unit_of_work
from governance.core.effects import PendingEffect, replay
from governance.core.errors import Conflict, InvalidInput, NotFound
from governance.core.work import Units, Work
from governance.gallery import photos
from governance.gallery.blobs import FileBlobStore
from governance.gallery.effects import effect_handlers, index_entries
from governance.gallery.models import GalleryPhoto
from governance.gallery.photos import FaceEngines, PhotoInfo, Provenance
from governance.gallery.sites import SourceBlocked
from ledger.entry import Actor
from tests import factories
from tests.api.faces import variant
from tests.factories import NOW
from tests.unit.governance.gallery.recorded import appended, last_seq
from tests.unit.governance.legal_basis.helpers import World

OPERATOR = Actor(kind="operator", id="test", agency=None)


def _provenance(**overrides: object) -> Provenance:
    values: dict[str, object] = {
        "source_url": "https://www.example.org/a.jpg",
        "collected_at": NOW - timedelta(days=1),
        "collection_basis": "public_record",
    } | overrides
    return Provenance(**values)  # type: ignore[arg-type]


def test_list_photos_pages_newest_first_and_filters_by_site(work: Work) -> None:
    older = factories.gallery_photo(work.session, site="a.example", enrolled_at=NOW - timedelta(1))
    newer = factories.gallery_photo(work.session, site="a.example")
    factories.gallery_photo(work.session, site="b.example")

    page, total = photos.list_photos(work, site="a.example", limit=1)
    assert ([p.id for p in page], total) == ([newer.id], 2)
    page, total = photos.list_photos(work, site="a.example", limit=1, offset=1)
    assert ([p.id for p in page], total) == ([older.id], 2)


def test_read_photo_and_face_give_provenance_and_boxes(work: Work) -> None:
    row = factories.gallery_photo(work.session, faces=2)

    photo = photos.read_photo(work, row.id)
    assert (photo.source_site, len(photo.faces)) == ("example.org", 2)
    face = photos.read_face(work, row.faces[1].id)
    assert (face.photo_id, face.box) == (row.id, (10.0, 10.0, 90.0, 90.0))


def test_reading_what_is_not_there_raises_not_found(work: Work, blobs: FileBlobStore) -> None:
    from uuid import uuid4

    missing = uuid4()
    for read in (
        lambda: photos.read_photo(work, missing),
        lambda: photos.read_face(work, missing),
        lambda: photos.photo_bytes(work, blobs, missing),
        lambda: photos.thumbnail_bytes(work, blobs, missing),
    ):
        with pytest.raises(NotFound, match=str(missing)):
            read()


def test_photo_and_thumbnail_bytes_come_from_the_store(work: Work, blobs: FileBlobStore) -> None:
    image, thumb = b"the photo", b"the thumbnail"
    row = factories.gallery_photo(work.session, sha256=blobs.put(image), media_type="image/png")
    row.faces[0].thumbnail_sha256 = blobs.put(thumb)

    assert photos.photo_bytes(work, blobs, row.id) == (image, "image/png")
    assert photos.thumbnail_bytes(work, blobs, row.faces[0].id) == thumb


def test_count_faces_keeps_the_gallery_size_per_recognizer(work: Work) -> None:
    recognizer = "f" * 64
    assert photos.gallery_size(work.session, recognizer) == 0
    photos.count_faces(work.session, recognizer, 3)
    photos.count_faces(work.session, recognizer, -1)
    photos.count_faces(work.session, recognizer, 0)
    assert photos.gallery_size(work.session, recognizer) == 2


def test_a_first_enrolment_racing_another_counts_both(world: World) -> None:
    """On PostgreSQL the second of two first enrolments of a recognizer was a unique
    violation (a 500): its insert waited for the first's row, then collided with it."""
    if world.sessions.kw["bind"].dialect.name != "postgresql":
        pytest.skip("SQLite serializes writers: the second waits before it reads")
    recognizer = "e" * 64
    first = world.sessions()
    photos.count_faces(first, recognizer, 1)  # its row, not committed yet
    failures: list[Exception] = []

    def second() -> None:
        try:
            with unit_of_work(world.sessions) as session:
                photos.count_faces(session, recognizer, 2)
        except Exception as exc:
            failures.append(exc)

    racing = threading.Thread(target=second)
    racing.start()
    _until_a_backend_waits_for_a_lock(world)
    first.commit()
    first.close()
    racing.join(30)
    assert failures == []
    with world.sessions() as session:
        assert photos.gallery_size(session, recognizer) == 3


def _until_a_backend_waits_for_a_lock(world: World, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    with world.sessions() as session:
        while time.monotonic() < deadline:
            waiting = session.scalar(
                text(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND wait_event_type = 'Lock'"
                )
            )
            if waiting:
                return
            session.rollback()  # a fresh snapshot of the statistics
            time.sleep(0.01)
    raise AssertionError(f"no backend waited for a lock in {seconds} s")


def test_photos_where_loads_the_matching_photos(work: Work) -> None:
    row = factories.gallery_photo(work.session, faces=2)
    factories.gallery_photo(work.session)

    found = photos.photos_where(work.session, GalleryPhoto.id == row.id)
    assert [(p.id, len(p.faces)) for p in found] == [(row.id, 2)]
    assert photos.is_enrolled(work.session, row.sha256) is True
    assert photos.is_enrolled(work.session, "0" * 64) is False


def test_remove_photos_removes_rows_and_counts(work: Work, engines: FaceEngines) -> None:
    rows = [factories.gallery_photo(work.session, faces=n) for n in (1, 2)]
    size = photos.gallery_size(work.session, rows[0].recognizer_sha256)

    assert photos.remove_photos(work.session, engines=engines, photos=rows) == (2, 3)
    assert photos.photos_where(work.session, GalleryPhoto.id.in_([r.id for r in rows])) == []
    assert photos.gallery_size(work.session, rows[0].recognizer_sha256) == size - 3


# Enrolment detects, embeds and indexes faces: it needs the real models and a real face.


@pytest.fixture
def face_photo(faces_dir: dict[str, list[Path]]) -> bytes:
    return variant(faces_dir["Matthew_Perry"][0])


def test_enroll_photo_stores_faces_and_records_hashes_only(
    work: Work, engines: FaceEngines, face_photo: bytes
) -> None:
    since = last_seq(work.session)
    prepared = photos.prepare_photo(engines, face_photo)

    photo = photos.enroll_photo(
        work, engines, prepared=prepared, provenance=_provenance(), actor=OPERATOR
    )
    [(kind, payload)] = appended(work.session, since)
    assert kind == "gallery:enroll"
    assert payload["photo_id"] == str(photo.id)
    assert payload["source_url_hmac"] == work.keyed("url", "https://www.example.org/a.jpg")
    assert "https://www.example.org/a.jpg" not in str(payload)
    assert (photo.source_site, photo.enrolled_at) == ("example.org", NOW)
    assert len(photo.faces) == len(prepared.faces) >= 1
    with pytest.raises(Conflict, match="already enrolled"):
        photos.enroll_photo(
            work, engines, prepared=prepared, provenance=_provenance(), actor=OPERATOR
        )
    _unindex(engines, photo)


def test_enroll_flow_analyses_then_enrols_in_one_unit(
    units: Units, engines: FaceEngines, face_photo: bytes
) -> None:
    photo = photos.enroll(
        units, engines, image=face_photo, provenance=_provenance(), actor=OPERATOR
    )
    with units() as work:
        assert photos.read_photo(work, photo.id).sha256 == photo.sha256
    _unindex(engines, photo)


def _unindex(engines: FaceEngines, photo: PhotoInfo) -> None:
    """The index is not transactional: take out what the rolled-back test put in."""
    engines.index.delete([str(f.id) for f in photo.faces])


@pytest.mark.parametrize(
    ("provenance", "field"),
    [
        (_provenance(collection_basis="rumour"), "collection_basis"),
        (_provenance(collected_at=NOW + timedelta(days=1)), "collected_at"),
        (_provenance(collected_at=NOW.replace(year=1980)), "collected_at"),
        (_provenance(collected_at=NOW.replace(tzinfo=None)), "collected_at"),
        (_provenance(source_url="ftp://example.org/a.jpg"), "source_url"),
    ],
)
def test_enroll_photo_refuses_bad_provenance(
    work: Work, engines: FaceEngines, face_photo: bytes, provenance: Provenance, field: str
) -> None:
    prepared = photos.prepare_photo(engines, face_photo)
    with pytest.raises(InvalidInput) as raised:
        photos.enroll_photo(work, engines, prepared=prepared, provenance=provenance, actor=OPERATOR)
    assert list(raised.value.fields) == [field]


def test_enroll_photo_refuses_a_blocked_site(
    work: Work, engines: FaceEngines, face_photo: bytes
) -> None:
    site = f"optedout-{uuid4().hex[:8]}.example"  # a site no other test set a policy on
    factories.source_policy(work.session, site)
    prepared = photos.prepare_photo(engines, face_photo)
    with pytest.raises(SourceBlocked, match=rf"{site} has opted out"):
        photos.enroll_photo(
            work,
            engines,
            prepared=prepared,
            provenance=_provenance(source_url=f"https://{site}/a.jpg"),
            actor=OPERATOR,
        )


# What the gallery does outside the database follows its transaction as pending effects.


def _stored(session: Session, engines: FaceEngines, faces: int = 2) -> GalleryPhoto:
    """A photo whose bytes, thumbnails and (distinct) vectors are stored, as an enrolment does."""
    row = factories.gallery_photo(
        session,
        site=f"fx-{uuid4().hex[:8]}.example",
        faces=faces,
        recognizer_sha256=engines.analyzer.model.recognizer_sha256,
    )
    row.sha256 = engines.blobs.put(os.urandom(256))
    rng = np.random.default_rng()
    for face in row.faces:
        face.thumbnail_sha256 = engines.blobs.put(os.urandom(64))
        vector = rng.standard_normal(512).astype(np.float32)
        face.embedding = (vector / np.linalg.norm(vector)).tobytes()
    session.flush()
    engines.index.upsert(index_entries(row.faces))
    return row


def _indexed_ids(engines: FaceEngines, row: GalleryPhoto) -> set[str]:
    """Which of the photo's faces the index returns for their own embedding."""
    found: set[str] = set()
    for face in row.faces:
        query = np.frombuffer(face.embedding, dtype=np.float32)
        found |= {h.face_id for h in engines.index.search(query, 3, min_score=0.99)}
    return found & {str(f.id) for f in row.faces}


def _files(engines: FaceEngines, row: GalleryPhoto) -> list[bool]:
    return [engines.blobs.exists(d) for d in [row.sha256, *(f.thumbnail_sha256 for f in row.faces)]]


def _pending_about(units: Units, row: GalleryPhoto) -> list[str]:
    """The kinds of the pending effects that name the photo's faces or files."""
    names = [row.sha256, *(str(f.id) for f in row.faces)]
    with units() as work:
        pending = work.session.scalars(select(PendingEffect).order_by(PendingEffect.id)).all()
        return [p.kind for p in pending if any(n in p.payload for n in names)]


class _DownIndex:
    """The real index, except that it is down for writes and deletes."""

    def __init__(self, index: VectorIndex) -> None:
        self._index = index

    def __getattr__(self, name: str) -> object:
        if name in {"insert", "upsert", "delete"}:
            raise IndexUnavailable("the vector index is down")
        return getattr(self._index, name)


def test_removed_photos_leave_the_index_and_the_store_once_the_removal_commits(
    units: Units, engines: FaceEngines
) -> None:
    with units() as work:
        row = _stored(work.session, engines)
    assert (len(_indexed_ids(engines, row)), _files(engines, row)) == (2, [True] * 3)
    with units() as work:
        gone = photos.photos_where(work.session, GalleryPhoto.id == row.id)
        assert photos.remove_photos(work.session, engines=engines, photos=gone) == (1, 2)
        # Nothing leaves before the commit: a rollback would have nothing to put back.
        assert (len(_indexed_ids(engines, row)), _files(engines, row)) == (2, [True] * 3)
    assert (_indexed_ids(engines, row), _files(engines, row)) == (set(), [False] * 3)
    assert _pending_about(units, row) == []


def test_a_rolled_back_removal_leaves_vectors_files_and_no_pending_effect(
    units: Units, engines: FaceEngines
) -> None:
    with units() as work:
        row = _stored(work.session, engines)
    with pytest.raises(RuntimeError, match="the ledger refused"), units() as work:
        gone = photos.photos_where(work.session, GalleryPhoto.id == row.id)
        photos.remove_photos(work.session, engines=engines, photos=gone)
        raise RuntimeError("the ledger refused")
    assert (len(_indexed_ids(engines, row)), _files(engines, row)) == (2, [True] * 3)
    assert _pending_about(units, row) == []
    engines.index.delete([str(f.id) for f in row.faces])


def test_a_removal_while_the_index_is_down_commits_and_the_replay_finishes_it(
    units: Units, engines: FaceEngines
) -> None:
    with units() as work:
        row = _stored(work.session, engines)
    down = replace(engines, index=_DownIndex(engines.index))  # type: ignore[arg-type]
    with units() as work:  # the caller is not told: the removal is done
        gone = photos.photos_where(work.session, GalleryPhoto.id == row.id)
        photos.remove_photos(work.session, engines=down, photos=gone)
    with units() as work:
        assert photos.photos_where(work.session, GalleryPhoto.id == row.id) == []
    # The files went (their effect is its own); the vectors wait for the index.
    assert (len(_indexed_ids(engines, row)), _files(engines, row)) == (2, [False] * 3)
    assert _pending_about(units, row) == ["gallery:unindex_faces"]
    handlers = effect_handlers(engines.index, engines.blobs)
    replay(units.sessions, lambda: handlers)
    assert (_indexed_ids(engines, row), _pending_about(units, row)) == (set(), [])
    # Applying the removal's effects again (a crash before their rows were deleted) is harmless.
    payload = {"face_ids": [str(f.id) for f in row.faces]}
    with units() as work:
        handlers["gallery:unindex_faces"](work.session, payload)
        handlers["gallery:delete_blobs"](work.session, {"digests": [row.sha256]})
    assert (_indexed_ids(engines, row), _files(engines, row)) == (set(), [False] * 3)


def test_a_file_another_photo_still_uses_is_kept(units: Units, engines: FaceEngines) -> None:
    with units() as work:
        row, twin = _stored(work.session, engines, faces=1), _stored(work.session, engines, faces=1)
        twin.faces[0].thumbnail_sha256 = row.faces[0].thumbnail_sha256
    with units() as work:
        gone = photos.photos_where(work.session, GalleryPhoto.id == row.id)
        photos.remove_photos(work.session, engines=engines, photos=gone)
    assert _files(engines, row) == [False, True]
    engines.index.delete([str(twin.faces[0].id)])


def test_replaying_an_enrolment_indexes_only_the_faces_still_enrolled(
    units: Units, engines: FaceEngines
) -> None:
    with units() as work:
        kept, removed = _stored(work.session, engines), _stored(work.session, engines)
    engines.index.delete([str(f.id) for f in [*kept.faces, *removed.faces]])
    with units() as work:
        gone = photos.photos_where(work.session, GalleryPhoto.id == removed.id)
        photos.remove_photos(work.session, engines=engines, photos=gone)
    index_faces = effect_handlers(engines.index, engines.blobs)["gallery:index_faces"]
    face_ids = [str(f.id) for f in [*kept.faces, *removed.faces]]
    for _ in range(2):  # twice: the second changes nothing
        with units() as work:
            index_faces(work.session, {"face_ids": face_ids})
    assert (len(_indexed_ids(engines, kept)), _indexed_ids(engines, removed)) == (2, set())
    engines.index.delete([str(f.id) for f in kept.faces])


def test_indexing_skips_faces_of_another_recognizer_than_the_index(
    units: Units, engines: FaceEngines
) -> None:
    # A pending indexing of an earlier model pack's faces must not mix them into this
    # recognizer's collection.
    with units() as work:
        row = _stored(work.session, engines)
        ours = engines.analyzer.model.recognizer_sha256
        for face in row.faces:
            face.recognizer_sha256 = "e" * 64
    engines.index.delete([str(f.id) for f in row.faces])
    index_faces = effect_handlers(engines.index, engines.blobs)["gallery:index_faces"]
    payload = {"face_ids": [str(f.id) for f in row.faces]}
    with units() as work:
        index_faces(work.session, payload)
    assert _indexed_ids(engines, row) == set()
    with units() as work:
        for face in photos.photos_where(work.session, GalleryPhoto.id == row.id)[0].faces:
            face.recognizer_sha256 = ours
    with units() as work:
        index_faces(work.session, payload)
    assert len(_indexed_ids(engines, row)) == 2
    engines.index.delete([str(f.id) for f in row.faces])


def _enrolled_row(units: Units, photo: PhotoInfo) -> GalleryPhoto:
    with units() as work:
        [row] = photos.photos_where(work.session, GalleryPhoto.id == photo.id)
        return row


def test_an_acknowledged_enrolment_is_searchable_at_once(
    units: Units, engines: FaceEngines, face_photo: bytes
) -> None:
    photo = photos.enroll(
        units, engines, image=face_photo, provenance=_provenance(), actor=OPERATOR
    )
    row = _enrolled_row(units, photo)
    assert _indexed_ids(engines, row) == {str(f.id) for f in photo.faces}
    assert _pending_about(units, row) == []
    _unindex(engines, photo)


def test_an_enrolment_while_the_index_is_down_is_indexed_by_the_replay(
    units: Units, engines: FaceEngines, face_photo: bytes
) -> None:
    down = replace(engines, index=_DownIndex(engines.index))  # type: ignore[arg-type]
    photo = photos.enroll(units, down, image=face_photo, provenance=_provenance(), actor=OPERATOR)
    row = _enrolled_row(units, photo)
    assert (_indexed_ids(engines, row), _pending_about(units, row)) == (
        set(),
        ["gallery:index_faces"],
    )
    replay(units.sessions, lambda: effect_handlers(engines.index, engines.blobs))
    assert _indexed_ids(engines, row) == {str(f.id) for f in photo.faces}
    assert _pending_about(units, row) == []
    _unindex(engines, photo)


def test_a_rolled_back_enrolment_indexes_nothing_and_leaves_no_pending_effect(
    units: Units, engines: FaceEngines, face_photo: bytes
) -> None:
    prepared = photos.prepare_photo(engines, face_photo)
    with pytest.raises(RuntimeError, match="the ledger refused"), units() as work:
        photo = photos.enroll_photo(
            work, engines, prepared=prepared, provenance=_provenance(), actor=OPERATOR
        )
        row = photos.photos_where(work.session, GalleryPhoto.id == photo.id)[0]
        work.session.expunge(row)
        raise RuntimeError("the ledger refused")
    assert (_indexed_ids(engines, row), _pending_about(units, row)) == (set(), [])
    assert not engines.blobs.exists(row.sha256)  # written for it, deleted after the rollback
