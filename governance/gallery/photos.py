"""The gallery: enrolling photos with their provenance, reading them back, and removing them.

A photo is stored content-addressed with a thumbnail of each face; each face's embedding goes to
the vector index and, as bytes, to the database (so the index can be rebuilt). Enrolment is
recorded in the ledger with hashes and ids only: the source URL appears only as its HMAC under the
log's secret, so that erasing a photo leaves nothing about it in an append-only log that a guess
could confirm.

Indexing, unindexing and file deletes are pending effects recorded with the rows
(``governance.gallery.effects``), applied once they commit. Between a removal's commit and its
effects the index may still return a removed face: searches and erasure previews keep only hits
whose row exists, so such a hit is dropped. Files are written before an enrolment commits (they
are content-addressed); those of one that rolled back are deleted after the rollback, or by
``facewarden doctor`` if the process died first.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol
from uuid import UUID, uuid4

import numpy as np
from sqlalchemy import bindparam, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, selectinload

from biometrics.errors import BiometricsError, NoFaceFound
from biometrics.images import DEFAULT_MAX_PROBE_PIXELS, DecodedImage, decode_image
from biometrics.index import VectorIndex
from biometrics.ports import Detection, Face, ImageArray, ModelInfo
from biometrics.thumbnails import face_thumbnail
from governance.core.effects import after_rollback, pend
from governance.core.errors import Conflict, InvalidInput, NotFound
from governance.core.orm import table_of
from governance.core.work import Units, Work
from governance.gallery.blobs import BlobStore, sha256_hex
from governance.gallery.effects import DELETE_BLOBS, INDEX_FACES, UNINDEX_FACES, effect_handlers
from governance.gallery.models import (
    COLLECTION_BASES,
    GalleryFace,
    GalleryPhoto,
    GalleryStats,
    acted_by,
    geometry_of,
    pack_columns,
    value_of,
)
from governance.gallery.sites import check_site_allowed, site_of_url
from ledger.entry import Actor, EntryType

__all__ = [
    "FaceAnalyzer",
    "FaceEngines",
    "FaceInfo",
    "PhotoInfo",
    "PreparedPhoto",
    "Provenance",
    "count_faces",
    "enroll",
    "enroll_photo",
    "gallery_size",
    "is_enrolled",
    "list_photos",
    "photo_bytes",
    "photos_where",
    "prepare_photo",
    "prepare_photos",
    "read_face",
    "read_photo",
    "remove_photos",
    "thumbnail_bytes",
]

_STATS = table_of(GalleryStats)
_UPSERTS: dict[str, Callable[[type[GalleryStats]], postgresql.Insert | sqlite.Insert]] = {
    "postgresql": postgresql.insert,
    "sqlite": sqlite.insert,
}
# Built once: every search reads the gallery size.
_SIZE = select(_STATS.c.faces).where(_STATS.c.recognizer_sha256 == bindparam("recognizer_sha256"))


class FaceAnalyzer(Protocol):
    """What the gallery needs of ``biometrics.faces.FacePipeline``."""

    @property
    def model(self) -> ModelInfo: ...

    def analyze(self, image: ImageArray) -> list[Face]: ...

    def analyze_many(self, images: Sequence[ImageArray]) -> list[list[Face]]: ...

    def too_small(self, image: ImageArray) -> list[Detection]: ...


@dataclass(frozen=True, slots=True)
class FaceEngines:
    """What faces are found, compared and stored with: the analyzer, the vector index, the
    photo store, and the limits and calibration they work within. The database is the Work's.
    """

    analyzer: FaceAnalyzer
    index: VectorIndex
    blobs: BlobStore
    max_bytes: int
    max_pixels: int
    match_threshold: float
    """The pack's calibrated threshold: the floor of every search."""
    match_far: float
    """The false-accept rate measured at ``match_threshold``."""
    # Search probes are capped apart from (and below) gallery photos.
    max_probe_pixels: int = DEFAULT_MAX_PROBE_PIXELS


@dataclass(frozen=True, slots=True)
class Provenance:
    """Where a photo came from and on what basis it was collected."""

    source_url: str
    collected_at: datetime
    collection_basis: str
    subject_ref: str | None = None


@dataclass(frozen=True, slots=True)
class PreparedPhoto:
    """A decoded photo and its faces: the costly part of enrolment, done outside a transaction."""

    data: bytes
    image: DecodedImage
    faces: list[Face]


@dataclass(frozen=True, slots=True)
class FaceInfo:
    id: UUID
    photo_id: UUID
    source_site: str
    box: tuple[float, float, float, float]
    detection_score: float
    size_px: float
    blur: float
    yaw: float
    pitch: float
    roll: float
    created_at: datetime


@dataclass(frozen=True, slots=True)
class PhotoInfo:
    id: UUID
    sha256: str
    media_type: str
    width: int
    height: int
    source_url: str
    source_site: str
    collected_at: datetime
    collection_basis: str
    subject_ref: str | None
    enrolled_at: datetime
    pack_name: str
    pack_version: str
    recognizer_sha256: str
    faces: tuple[FaceInfo, ...]


def _decode(engines: FaceEngines, data: bytes) -> DecodedImage:
    return decode_image(
        data,
        max_bytes=engines.max_bytes,
        max_pixels=engines.max_pixels,
        limit_name="FACEWARDEN_MAX_IMAGE_PIXELS",
    )


def prepare_photo(engines: FaceEngines, data: bytes) -> PreparedPhoto:
    """Decode and analyse one photo.

    Raises UnsupportedImageType, ImageTooLarge, InvalidImage, NoFaceFound, ModelError.
    """
    image = _decode(engines, data)
    faces = engines.analyzer.analyze(image.pixels)
    if not faces:
        raise NoFaceFound("no face was found in the photo (check size, sharpness and framing)")
    return PreparedPhoto(data=data, image=image, faces=faces)


def prepare_photos(
    engines: FaceEngines, blobs_of_photos: Sequence[bytes]
) -> list[PreparedPhoto | BiometricsError]:
    """``prepare_photo`` for many photos, embedding their faces in shared batches.

    Each item is the prepared photo or the error that photo raised (decoding, no face).
    """
    results: list[PreparedPhoto | BiometricsError | None] = []
    decoded: list[tuple[int, bytes, DecodedImage]] = []
    for data in blobs_of_photos:
        try:
            image = _decode(engines, data)
        except BiometricsError as exc:
            results.append(exc)
            continue
        decoded.append((len(results), data, image))
        results.append(None)
    analyzed = engines.analyzer.analyze_many([image.pixels for _, _, image in decoded])
    for (position, data, image), faces in zip(decoded, analyzed, strict=True):
        results[position] = (
            PreparedPhoto(data=data, image=image, faces=faces)
            if faces
            else NoFaceFound("no face was found in the photo")
        )
    return [r for r in results if r is not None]


def is_enrolled(session: Session, sha256: str) -> bool:
    """Whether a photo with these bytes is already in the gallery."""
    return session.scalar(select(GalleryPhoto.id).where(GalleryPhoto.sha256 == sha256)) is not None


def enroll(
    units: Units, engines: FaceEngines, *, image: bytes, provenance: Provenance, actor: Actor
) -> PhotoInfo:
    """Analyse a photo outside any transaction, then enrol it in one unit of work.

    Raises the errors of ``prepare_photo`` and of ``enroll_photo``.
    """
    prepared = prepare_photo(engines, image)
    with units() as work:
        return enroll_photo(work, engines, prepared=prepared, provenance=provenance, actor=actor)


def enroll_photo(
    work: Work,
    engines: FaceEngines,
    *,
    prepared: PreparedPhoto,
    provenance: Provenance,
    actor: Actor,
) -> PhotoInfo:
    """Store a prepared photo, its faces and their embeddings, and record the enrolment; the
    faces are indexed once the unit of work commits (a pending effect).

    Raises InvalidInput (provenance), SourceBlocked (the site opted out), Conflict (already
    enrolled), and the ledger's errors. The index's errors do not undo the enrolment: its faces
    stay pending, indexed by the next replay.
    """
    session = work.session
    site = site_of_url(provenance.source_url)
    _check_provenance(provenance, work.now)
    check_site_allowed(session, site)
    sha = prepared.image.sha256
    existing = session.scalar(select(GalleryPhoto.id).where(GalleryPhoto.sha256 == sha))
    if existing is not None:
        raise Conflict(
            f"this photo is already enrolled as {existing}", code="photo-already-enrolled"
        )
    model = engines.analyzer.model
    new_blobs = [d for d in [_put(engines.blobs, prepared.data)] if d]
    photo = GalleryPhoto(
        id=uuid4(),
        sha256=sha,
        media_type=f"image/{prepared.image.format}",
        width=prepared.image.width,
        height=prepared.image.height,
        source_url=provenance.source_url.strip(),
        source_site=site,
        collected_at=provenance.collected_at,
        collection_basis=provenance.collection_basis,
        subject_ref=provenance.subject_ref,
        enrolled_at=work.now,
        enrolled_by=acted_by(actor),
        **pack_columns(model),
    )
    for face in prepared.faces:
        thumb = face_thumbnail(prepared.image.pixels, face.box)
        created = _put(engines.blobs, thumb)
        if created:
            new_blobs.append(created)
        photo.faces.append(_new_face(face, thumb, site, model.recognizer_sha256, work.now))
    session.add(photo)
    after_rollback(session, lambda: [engines.blobs.delete(d) for d in new_blobs])
    session.flush()
    count_faces(session, model.recognizer_sha256, len(photo.faces))
    work.record(
        EntryType.GALLERY_ENROLL,
        actor=actor,
        payload={
            "photo_id": str(photo.id),
            "photo_sha256": sha,
            "source_site": site,
            "source_url_hmac": work.keyed("url", photo.source_url),
            "collection_basis": provenance.collection_basis,
            "face_ids": [str(f.id) for f in photo.faces],
            "pack": {"name": model.pack_name, "version": model.pack_version},
            "recognizer_sha256": model.recognizer_sha256,
        },
    )
    _pend(session, engines, INDEX_FACES, {"face_ids": [str(f.id) for f in photo.faces]})
    return _photo_info(photo)


def _new_face(
    face: Face, thumb: bytes, site: str, recognizer_sha256: str, now: datetime
) -> GalleryFace:
    return GalleryFace(
        id=uuid4(),
        source_site=site,
        **geometry_of(face),
        thumbnail_sha256=sha256_hex(thumb),
        recognizer_sha256=recognizer_sha256,
        embedding=np.asarray(face.embedding, dtype=np.float32).tobytes(),
        created_at=now,
    )


def _put(blobs: BlobStore, data: bytes) -> str | None:
    """Store ``data``; returns its digest only if this call created it (for rollback)."""
    digest = sha256_hex(data)
    if blobs.exists(digest):
        return None
    return blobs.put(data)


EARLIEST_COLLECTION = datetime(1990, 1, 1, tzinfo=UTC)
"""No photo was collected from the web before there was one: an earlier date is a typing error."""


def _check_provenance(provenance: Provenance, now: datetime) -> None:
    errors: dict[str, list[str]] = {}
    if provenance.collection_basis not in COLLECTION_BASES:
        errors["collection_basis"] = [f"Must be one of: {', '.join(COLLECTION_BASES)}."]
    if provenance.collected_at.tzinfo is None:
        errors["collected_at"] = ["Must carry a timezone (e.g. 2026-01-31T12:00:00Z)."]
    elif provenance.collected_at > now + timedelta(minutes=5):
        errors["collected_at"] = ["Must not be in the future."]
    elif provenance.collected_at < EARLIEST_COLLECTION:
        errors["collected_at"] = ["Must be on or after 1990-01-01: check the date."]
    if errors:
        raise InvalidInput("the photo's provenance is invalid", fields=errors)


def _photo_info(photo: GalleryPhoto) -> PhotoInfo:
    return value_of(PhotoInfo, photo, faces=tuple(_face_info(f) for f in photo.faces))


def _face_info(face: GalleryFace) -> FaceInfo:
    return value_of(FaceInfo, face, box=(face.x1, face.y1, face.x2, face.y2))


def _photo_row(session: Session, photo_id: UUID) -> GalleryPhoto:
    row = session.get(GalleryPhoto, photo_id)
    if row is None:
        raise NotFound(f"no gallery photo {photo_id}")
    return row


def _face_row(session: Session, face_id: UUID) -> GalleryFace:
    row = session.get(GalleryFace, face_id)
    if row is None:
        raise NotFound(f"no gallery face {face_id}")
    return row


def read_photo(work: Work, photo_id: UUID) -> PhotoInfo:
    """One photo with its provenance and faces. Raises NotFound."""
    return _photo_info(_photo_row(work.session, photo_id))


def read_face(work: Work, face_id: UUID) -> FaceInfo:
    """One gallery face. Raises NotFound."""
    return _face_info(_face_row(work.session, face_id))


def list_photos(
    work: Work, *, site: str | None = None, limit: int = 50, offset: int = 0
) -> tuple[list[PhotoInfo], int]:
    """A page of photos, newest first, and the total count."""
    query = select(GalleryPhoto)
    count = select(func.count()).select_from(GalleryPhoto)
    if site:
        query = query.where(GalleryPhoto.source_site == site)
        count = count.where(GalleryPhoto.source_site == site)
    rows = work.session.scalars(
        query.order_by(GalleryPhoto.enrolled_at.desc(), GalleryPhoto.id).limit(limit).offset(offset)
    )
    return [_photo_info(p) for p in rows], int(work.session.scalar(count) or 0)


def photo_bytes(work: Work, blobs: BlobStore, photo_id: UUID) -> tuple[bytes, str]:
    """The stored photo and its media type. Raises NotFound."""
    row = _photo_row(work.session, photo_id)
    return blobs.get(row.sha256), row.media_type


def thumbnail_bytes(work: Work, blobs: BlobStore, face_id: UUID) -> bytes:
    """The JPEG thumbnail of a gallery face. Raises NotFound."""
    return blobs.get(_face_row(work.session, face_id).thumbnail_sha256)


def photos_where(session: Session, condition: object) -> list[GalleryPhoto]:
    """The gallery photos matching ``condition``, with their faces loaded."""
    return list(
        session.scalars(
            select(GalleryPhoto).where(condition).options(selectinload(GalleryPhoto.faces))  # type: ignore[arg-type]
        )
    )


def gallery_size(session: Session, recognizer_sha256: str) -> int:
    """How many faces the gallery holds for one recognizer (kept by ``count_faces``)."""
    faces = session.scalar(_SIZE, {"recognizer_sha256": recognizer_sha256})
    return int(faces or 0)


def count_faces(session: Session, recognizer_sha256: str, delta: int) -> None:
    """Add ``delta`` (may be negative) to the gallery size of one recognizer.

    A growth is one upsert (INSERT ... ON CONFLICT DO UPDATE, on PostgreSQL and SQLite alike):
    two first enrolments of a recognizer at once on PostgreSQL both count, where an insert
    after an update that found no row made the second a unique violation. A removal updates
    the row its faces were counted in.
    """
    if delta > 0:
        grow = _UPSERTS[session.get_bind().dialect.name](GalleryStats).values(
            recognizer_sha256=recognizer_sha256, faces=delta
        )
        session.execute(
            grow.on_conflict_do_update(
                index_elements=[GalleryStats.recognizer_sha256],
                set_={"faces": GalleryStats.faces + delta},
            )
        )
    elif delta < 0:
        session.execute(
            update(GalleryStats)
            .where(GalleryStats.recognizer_sha256 == recognizer_sha256)
            .values(faces=GalleryStats.faces + delta)
        )
    session.flush()


def remove_photos(
    session: Session, *, engines: FaceEngines, photos: Sequence[GalleryPhoto]
) -> tuple[int, int]:
    """Remove photos, their faces, vectors, thumbnails and stored bytes; returns (photos, faces).

    The rows go with the caller's transaction; their vectors and files are pending effects of
    it, applied once it commits (and replayed after a crash), never if it rolls back.
    """
    faces = [f for p in photos for f in p.faces]
    for recognizer in {f.recognizer_sha256 for f in faces}:
        count_faces(
            session, recognizer, -sum(1 for f in faces if f.recognizer_sha256 == recognizer)
        )
    digests = {p.sha256 for p in photos} | {f.thumbnail_sha256 for f in faces}
    for row in photos:
        session.delete(row)
    session.flush()
    if faces:
        _pend(session, engines, UNINDEX_FACES, {"face_ids": sorted(str(f.id) for f in faces)})
    if digests:
        _pend(session, engines, DELETE_BLOBS, {"digests": sorted(digests)})
    return len(photos), len(faces)


def _pend(session: Session, engines: FaceEngines, kind: str, payload: Mapping[str, Any]) -> None:
    pend(session, kind, payload, effect_handlers(engines.index, engines.blobs)[kind])
