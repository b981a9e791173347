"""Data-subject erasure by photo id or by source URL, and the removal every erasure ends with.

An erasure by a probe photo of the person compares a face with the gallery, so it is a search in
the governance sense: it goes through ``governance.gallery.erasure_requests`` (a preview on the
record under a data-subject request, confirmed by a second administrator) and ends here, in
``erase_photos``. Whole photos are removed (a photo of the person is personal data even where
other faces appear in it). The ledger keeps hashes and counts only, plus the SHA-256 of each
erased face id so an audit can prove no later search returned one; a source URL appears only as
its HMAC under the log's secret, so an erased URL cannot be confirmed by guessing. The erased
photos' vectors and files are pending effects of the erasure's transaction (``photos``): an
erasure on record is carried out, even by the replay after a crash.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

from governance.core.errors import InvalidInput, NotFound, blank_fields
from governance.core.work import Work
from governance.gallery.models import Erasure, ErasureKind, GalleryPhoto, acted_by, value_of
from governance.gallery.photos import FaceEngines, photos_where, remove_photos
from ledger.entry import Actor, EntryType

__all__ = ["ErasureResult", "erase", "erase_photos", "get_erasure", "id_digest"]


@dataclass(frozen=True, slots=True)
class ErasureResult:
    id: UUID
    kind: str
    photos_erased: int
    faces_erased: int
    created_at: datetime


def id_digest(object_id: UUID | str) -> str:
    """The SHA-256 by which entries name an erased or matched photo or face: the same in every
    entry, so an audit can follow a face from its preview to its erasure and beyond."""
    return hashlib.sha256(str(object_id).encode()).hexdigest()


def erase(
    work: Work,
    engines: FaceEngines,
    *,
    kind: str,
    reason: str,
    actor: Actor,
    photo_id: UUID | None = None,
    source_url: str | None = None,
) -> ErasureResult:
    """Erase the photo or the photos of the source URL named, and append ``erasure:run``.

    Raises InvalidInput (missing or inconsistent arguments, or kind=probe, which needs a
    confirmed erasure request), NotFound (nothing to erase).
    """
    if kind == ErasureKind.PHOTO and photo_id is not None:
        digest = id_digest(photo_id)
        target: dict[str, Any] = {"target_sha256": digest}
        photos = photos_where(work.session, GalleryPhoto.id == photo_id)
    elif kind == ErasureKind.SOURCE_URL and source_url and source_url.strip():
        digest = work.keyed("url", source_url.strip())
        target = {"source_url_hmac": digest}
        photos = photos_where(work.session, GalleryPhoto.source_url == source_url.strip())
    else:
        raise InvalidInput(
            "the erasure request is incomplete",
            fields={
                "kind": [
                    "Give kind=photo with photo_id or kind=source_url with source_url. To erase "
                    "by a probe photo, preview it at POST /v1/erasures/preview under the "
                    "data-subject request; a second administrator then confirms it."
                ]
            },
        )
    if not photos:
        raise NotFound("nothing in the gallery matches this erasure request")
    return erase_photos(
        work,
        engines,
        photos=photos,
        kind=kind,
        target_digest=digest,
        reason=reason,
        actor=actor,
        payload=target,
    )


def erase_photos(
    work: Work,
    engines: FaceEngines,
    *,
    photos: list[GalleryPhoto],
    kind: str,
    target_digest: str,
    reason: str,
    actor: Actor,
    payload: Mapping[str, Any],
) -> ErasureResult:
    """Remove ``photos`` and append ``erasure:run`` with ``payload``, hashes and counts.

    Raises InvalidInput (no reason).
    """
    if errors := blank_fields(reason=(reason, "A reason is required.")):
        raise InvalidInput("a reason is required", fields=errors)
    erased_faces = sorted(str(f.id) for p in photos for f in p.faces)
    n_photos, n_faces = remove_photos(work.session, engines=engines, photos=photos)
    row = Erasure(
        id=uuid4(),
        kind=kind,
        target_sha256=target_digest,
        reason=reason.strip(),
        photos_erased=n_photos,
        faces_erased=n_faces,
        requested_by=acted_by(actor),
        created_at=work.now,
    )
    work.session.add(row)
    work.session.flush()
    work.record(
        EntryType.ERASURE_RUN,
        actor=actor,
        payload={
            "erasure_id": str(row.id),
            "kind": kind,
            **payload,
            "photos": n_photos,
            "faces": n_faces,
            "face_id_sha256": [id_digest(f) for f in erased_faces],
        },
    )
    return _result(row)


def get_erasure(work: Work, erasure_id: UUID) -> ErasureResult:
    """Raises NotFound."""
    row = work.session.get(Erasure, erasure_id)
    if row is None:
        raise NotFound(f"no erasure {erasure_id}")
    return _result(row)


def _result(row: Erasure) -> ErasureResult:
    return value_of(ErasureResult, row)
