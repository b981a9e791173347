"""Erasure by photo id or by source URL: whole photos go, the ledger keeps hashes and counts."""

from __future__ import annotations

import hashlib
from uuid import uuid4

import pytest

from governance.core.errors import InvalidInput, NotFound
from governance.core.work import Work
from governance.gallery import erasure
from governance.gallery.models import GalleryPhoto
from governance.gallery.photos import FaceEngines, photos_where
from ledger.entry import Actor
from tests import factories
from tests.factories import NOW
from tests.unit.governance.gallery.recorded import appended, last_seq

ADMIN = Actor(kind="account", id=str(uuid4()), agency=None)


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def test_erase_by_photo_records_hashes_and_counts(work: Work, engines: FaceEngines) -> None:
    since = last_seq(work.session)
    photo = factories.gallery_photo(work.session, faces=2)
    face_ids = sorted(str(f.id) for f in photo.faces)

    result = erasure.erase(
        work, engines, kind="photo", reason=" asked ", actor=ADMIN, photo_id=photo.id
    )
    assert (result.kind, result.photos_erased, result.faces_erased) == ("photo", 1, 2)
    assert result.created_at == NOW
    assert appended(work.session, since) == [
        (
            "erasure:run",
            {
                "erasure_id": str(result.id),
                "kind": "photo",
                "target_sha256": _sha(str(photo.id)),
                "photos": 1,
                "faces": 2,
                "face_id_sha256": [_sha(f) for f in face_ids],
            },
        )
    ]
    assert erasure.get_erasure(work, result.id) == result
    assert photos_where(work.session, GalleryPhoto.id == photo.id) == []


def test_erase_by_source_url_keeps_only_its_keyed_digest(work: Work, engines: FaceEngines) -> None:
    since = last_seq(work.session)
    url = "https://www.example.org/same.jpg"
    for _ in range(2):
        factories.gallery_photo(work.session, source_url=url)

    result = erasure.erase(
        work, engines, kind="source_url", reason="asked", actor=ADMIN, source_url=f" {url} "
    )
    assert (result.photos_erased, result.faces_erased) == (2, 2)
    [(_, payload)] = appended(work.session, since)
    assert payload["source_url_hmac"] == work.keyed("url", url)
    assert url not in str(payload)


@pytest.mark.parametrize(
    "arguments",
    [
        {"kind": "photo"},
        {"kind": "source_url", "source_url": "  "},
        {"kind": "probe", "photo_id": uuid4()},
    ],
)
def test_erase_refuses_an_incomplete_request(
    work: Work, engines: FaceEngines, arguments: dict[str, object]
) -> None:
    with pytest.raises(InvalidInput, match="the erasure request is incomplete"):
        erasure.erase(work, engines, reason="r", actor=ADMIN, **arguments)  # type: ignore[arg-type]


def test_erase_raises_not_found_when_nothing_matches(work: Work, engines: FaceEngines) -> None:
    with pytest.raises(NotFound, match="nothing in the gallery matches"):
        erasure.erase(work, engines, kind="photo", reason="r", actor=ADMIN, photo_id=uuid4())


def test_erase_needs_a_reason(work: Work, engines: FaceEngines) -> None:
    photo = factories.gallery_photo(work.session)
    with pytest.raises(InvalidInput, match="a reason is required"):
        erasure.erase(work, engines, kind="photo", reason=" ", actor=ADMIN, photo_id=photo.id)


def test_get_erasure_raises_not_found(work: Work) -> None:
    missing = uuid4()
    with pytest.raises(NotFound, match=str(missing)):
        erasure.get_erasure(work, missing)
