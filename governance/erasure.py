"""Data-subject erasure: by photo id, by source URL, or by a probe photo of the person.

A probe erasure has two steps: ``preview_probe_erasure`` shows the administrator every gallery
face that matches the probe above the erasure threshold; ``erase`` with the probe and the faces
the administrator confirmed then removes them. Whole photos are removed (a photo of the person
is personal data even where other faces appear in it). The ledger keeps hashes and counts only,
plus the SHA-256 of each erased face id so an audit can prove no later search returned one.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID, uuid4

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from governance.audit import record
from governance.errors import InvalidInput, NotFound
from governance.gallery import Gallery, prepare_photo, remove_photos
from governance.gallery_models import Erasure, GalleryFace, GalleryPhoto
from ledger.entry import Actor, EntryType

__all__ = ["ErasureResult", "ProbeMatch", "erase", "preview_probe_erasure"]

MAX_PROBE_MATCHES = 200
KINDS = ("photo", "source_url", "probe")


@dataclass(frozen=True, slots=True)
class ProbeMatch:
    face_id: UUID
    photo_id: UUID
    score: float
    source_site: str


@dataclass(frozen=True, slots=True)
class ErasureResult:
    id: UUID
    kind: str
    photos_erased: int
    faces_erased: int
    created_at: datetime


def preview_probe_erasure(
    session: Session, *, gallery: Gallery, probe: bytes, threshold: float
) -> list[ProbeMatch]:
    """Every gallery face matching any face of ``probe`` at or above ``threshold``.

    Raises the image errors and NoFaceFound of ``prepare_photo``.
    """
    prepared = prepare_photo(gallery, probe)
    best: dict[str, ProbeMatch] = {}
    for face in prepared.faces:
        for hit in gallery.index.search(face.embedding, MAX_PROBE_MATCHES, min_score=threshold):
            if hit.face_id not in best or best[hit.face_id].score < hit.score:
                best[hit.face_id] = ProbeMatch(
                    face_id=UUID(hit.face_id),
                    photo_id=UUID(hit.photo_id),
                    score=hit.score,
                    source_site=hit.source_site,
                )
    present = set(
        session.scalars(
            select(GalleryFace.id).where(GalleryFace.id.in_([m.face_id for m in best.values()]))
        )
    )
    return sorted((m for m in best.values() if m.face_id in present), key=lambda m: -m.score)


def erase(
    session: Session,
    *,
    gallery: Gallery,
    kind: str,
    reason: str,
    actor: Actor,
    now: datetime,
    photo_id: UUID | None = None,
    source_url: str | None = None,
    probe: bytes | None = None,
    face_ids: Sequence[UUID] = (),
    threshold: float | None = None,
) -> ErasureResult:
    """Erase what the request names and append ``erasure:run`` with hashes and counts.

    For ``probe``, only the confirmed ``face_ids`` that still match the probe are erased.
    Raises InvalidInput (missing or inconsistent arguments), NotFound (nothing to erase).
    """
    if not reason.strip():
        raise InvalidInput("a reason is required", fields={"reason": ["A reason is required."]})
    if kind == "photo" and photo_id is not None:
        target = str(photo_id)
        photos = _photos(session, GalleryPhoto.id == photo_id)
    elif kind == "source_url" and source_url:
        target = source_url.strip()
        photos = _photos(session, GalleryPhoto.source_url == target)
    elif kind == "probe" and probe is not None and threshold is not None and face_ids:
        target = hashlib.sha256(probe).hexdigest()
        matching = {
            m.face_id
            for m in preview_probe_erasure(
                session, gallery=gallery, probe=probe, threshold=threshold
            )
        }
        confirmed = [f for f in face_ids if f in matching]
        if len(confirmed) != len(set(face_ids)):
            raise InvalidInput(
                "some confirmed faces no longer match the probe",
                fields={"face_ids": ["Preview again and confirm only faces from the preview."]},
            )
        photo_ids = set(
            session.scalars(select(GalleryFace.photo_id).where(GalleryFace.id.in_(confirmed)))
        )
        photos = _photos(session, GalleryPhoto.id.in_(photo_ids))
    else:
        raise InvalidInput(
            "the erasure request is incomplete",
            fields={
                "kind": [
                    "Give kind=photo with photo_id, kind=source_url with source_url, or "
                    "kind=probe with the probe image and the confirmed face_ids."
                ]
            },
        )
    if not photos:
        raise NotFound("nothing in the gallery matches this erasure request")

    erased_faces = sorted(str(f.id) for p in photos for f in p.faces)
    n_photos, n_faces = remove_photos(session, gallery=gallery, photos=photos)
    target_sha = hashlib.sha256(target.encode()).hexdigest() if kind != "probe" else target
    row = Erasure(
        id=uuid4(),
        kind=kind,
        target_sha256=target_sha,
        reason=reason.strip(),
        photos_erased=n_photos,
        faces_erased=n_faces,
        requested_by=f"{actor.kind}:{actor.id}",
        created_at=now,
    )
    session.add(row)
    session.flush()
    record(
        session,
        keys=gallery.keys,
        entry_type=EntryType.ERASURE_RUN,
        actor=actor,
        payload={
            "erasure_id": str(row.id),
            "kind": kind,
            "target_sha256": target_sha,
            "photos": n_photos,
            "faces": n_faces,
            "face_id_sha256": [hashlib.sha256(f.encode()).hexdigest() for f in erased_faces],
        },
        now=now,
    )
    return ErasureResult(row.id, kind, n_photos, n_faces, now)


def _photos(session: Session, condition: object) -> list[GalleryPhoto]:
    return list(
        session.scalars(
            select(GalleryPhoto).where(condition).options(selectinload(GalleryPhoto.faces))  # type: ignore[arg-type]
        )
    )


def get_erasure(session: Session, erasure_id: UUID) -> ErasureResult:
    """Raises NotFound."""
    row = session.get(Erasure, erasure_id)
    if row is None:
        raise NotFound(f"no erasure {erasure_id}")
    return ErasureResult(row.id, row.kind, row.photos_erased, row.faces_erased, row.created_at)
