"""Models of the gallery: photos with their provenance, faces, source policies and erasures.

Embeddings are kept beside each face (float32 bytes) so the vector index can be rebuilt from the
database; the index itself holds only ids, the source site and the vector.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from uuid import UUID, uuid4

from sqlalchemy import CheckConstraint, Float, ForeignKey, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from biometrics.ports import Face, ModelInfo
from governance.core.orm import Base, UtcDateTime, check_one_of, value_of
from ledger.entry import Actor

__all__ = [
    "COLLECTION_BASES",
    "Erasure",
    "ErasureKind",
    "ErasureRequest",
    "ErasureRequestFace",
    "ErasureRequestStatus",
    "FaceGeometry",
    "GalleryFace",
    "GalleryPhoto",
    "GalleryStats",
    "PolicyStatus",
    "RecognizedBy",
    "SourcePolicy",
    "acted_by",
    "geometry_of",
    "pack_columns",
    "pack_of",
    "value_of",
]

COLLECTION_BASES = ("public_record", "consent", "court_order", "licence")


def acted_by(actor: Actor) -> str:
    """How a gallery row names who enrolled, erased or set a policy: ``kind:id``."""
    return f"{actor.kind}:{actor.id}"


class PolicyStatus(StrEnum):
    """A site's standing in the gallery."""

    BLOCKED = "blocked"
    ALLOWED = "allowed"


class ErasureKind(StrEnum):
    """What an erasure named: a photo id, a source URL, or a probe photo of the person."""

    PHOTO = "photo"
    SOURCE_URL = "source_url"
    PROBE = "probe"


class ErasureRequestStatus(StrEnum):
    """A probe erasure awaits its second administrator, then is confirmed."""

    PENDING = "pending"
    CONFIRMED = "confirmed"


class RecognizedBy:
    """The columns naming the model pack a row's faces were analysed with: a gallery photo's
    and a search's alike."""

    pack_name: Mapped[str] = mapped_column(String(64))
    pack_version: Mapped[str] = mapped_column(String(32))
    recognizer_sha256: Mapped[str] = mapped_column(String(64))


def pack_columns(model: ModelInfo) -> dict[str, str]:
    """The ``RecognizedBy`` column values of the model pack in use."""
    return {
        "pack_name": model.pack_name,
        "pack_version": model.pack_version,
        "recognizer_sha256": model.recognizer_sha256,
    }


def pack_of(source: ModelInfo | RecognizedBy) -> dict[str, str]:
    """How an answer and a ledger entry name a model pack: the one in use or a row's."""
    return {
        "name": source.pack_name,
        "version": source.pack_version,
        "recognizer_sha256": source.recognizer_sha256,
    }


class GalleryPhoto(RecognizedBy, Base):
    """One enrolled photo, stored content-addressed, with where and why it was collected."""

    __tablename__ = "gallery_photos"
    __table_args__ = (
        check_one_of("collection_basis", COLLECTION_BASES),
        CheckConstraint("width > 0 AND height > 0", name="dimensions"),
    )

    id: Mapped[UUID] = mapped_column(primary_key=True, default=uuid4)
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    media_type: Mapped[str] = mapped_column(String(32))
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    source_url: Mapped[str] = mapped_column(Text)
    source_site: Mapped[str] = mapped_column(String(253), index=True)
    collected_at: Mapped[datetime] = mapped_column(UtcDateTime)
    collection_basis: Mapped[str] = mapped_column(String(32))
    subject_ref: Mapped[str | None] = mapped_column(String(128))
    enrolled_at: Mapped[datetime] = mapped_column(UtcDateTime)
    enrolled_by: Mapped[str] = mapped_column(String(80))

    faces: Mapped[list[GalleryFace]] = relationship(
        back_populates="photo", cascade="all, delete-orphan", passive_deletes=True
    )


class FaceGeometry:
    """The columns of a detected face, a gallery face's and a search's probe's alike: its box,
    detection score and quality (size, blur, pose)."""

    x1: Mapped[float] = mapped_column(Float)
    y1: Mapped[float] = mapped_column(Float)
    x2: Mapped[float] = mapped_column(Float)
    y2: Mapped[float] = mapped_column(Float)
    detection_score: Mapped[float] = mapped_column(Float)
    size_px: Mapped[float] = mapped_column(Float)
    blur: Mapped[float] = mapped_column(Float)
    yaw: Mapped[float] = mapped_column(Float)
    pitch: Mapped[float] = mapped_column(Float)
    roll: Mapped[float] = mapped_column(Float)


def geometry_of(face: Face) -> dict[str, float]:
    """The ``FaceGeometry`` column values of a detected face."""
    box, quality = face.box, face.quality
    return {
        "x1": box.x1,
        "y1": box.y1,
        "x2": box.x2,
        "y2": box.y2,
        "detection_score": face.score,
        "size_px": quality.size_px,
        "blur": quality.blur,
        "yaw": quality.yaw,
        "pitch": quality.pitch,
        "roll": quality.roll,
    }


class GalleryFace(FaceGeometry, Base):
    """A face found in a gallery photo: its box, quality, thumbnail and embedding."""

    __tablename__ = "gallery_faces"

    id: Mapped[UUID] = mapped_column(primary_key=True, default=uuid4)
    photo_id: Mapped[UUID] = mapped_column(
        ForeignKey("gallery_photos.id", ondelete="CASCADE"), index=True
    )
    source_site: Mapped[str] = mapped_column(String(253), index=True)
    thumbnail_sha256: Mapped[str] = mapped_column(String(64))
    recognizer_sha256: Mapped[str] = mapped_column(String(64), index=True)
    embedding: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)

    photo: Mapped[GalleryPhoto] = relationship(back_populates="faces")


class GalleryStats(Base):
    """How many faces the gallery holds per recognizer, kept with every enrolment and removal.

    Every search records the gallery size it searched; counting 100k rows per search would
    cost more than the rest of the bookkeeping together.
    """

    __tablename__ = "gallery_stats"
    __table_args__ = (CheckConstraint("faces >= 0", name="faces"),)

    recognizer_sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    faces: Mapped[int] = mapped_column(Integer)


class SourcePolicy(Base):
    """A site's standing: ``blocked`` after an opt-out (cease-and-desist), or ``allowed``."""

    __tablename__ = "source_policies"
    __table_args__ = (check_one_of("status", PolicyStatus),)

    site: Mapped[str] = mapped_column(String(253), primary_key=True)
    status: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(Text)
    reference: Mapped[str] = mapped_column(String(256))
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_by: Mapped[str] = mapped_column(String(80))
    faces_purged: Mapped[int] = mapped_column(Integer, default=0)


class Erasure(Base):
    """A data-subject erasure: what was asked (as a digest) and how much was removed.

    ``target_sha256`` holds the SHA-256 of the photo id or of the probe, or for a source URL
    its HMAC under the log's secret (before keyed digests: its SHA-256).
    """

    __tablename__ = "erasures"
    __table_args__ = (check_one_of("kind", ErasureKind),)

    id: Mapped[UUID] = mapped_column(primary_key=True, default=uuid4)
    kind: Mapped[str] = mapped_column(String(16))
    target_sha256: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(Text)
    photos_erased: Mapped[int] = mapped_column(Integer)
    faces_erased: Mapped[int] = mapped_column(Integer)
    requested_by: Mapped[str] = mapped_column(String(80))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class ErasureRequest(Base):
    """A probe erasure asked for under a data-subject request, awaiting a second admin.

    The preview's matches are kept until the decision (``ErasureRequestFace``); the probe image
    is not. ``confirmer_id`` is the one other admin who may read, view and confirm the request:
    the first to open it.
    """

    __tablename__ = "erasure_requests"
    __table_args__ = (
        check_one_of("status", ErasureRequestStatus),
        CheckConstraint("confirmer_id IS NULL OR confirmer_id <> requested_by", name="four_eyes"),
    )

    id: Mapped[UUID] = mapped_column(primary_key=True, default=uuid4)
    request_reference: Mapped[str] = mapped_column(String(128))
    reason: Mapped[str] = mapped_column(Text)
    probe_sha256: Mapped[str] = mapped_column(String(64))
    threshold: Mapped[float] = mapped_column(Float)
    status: Mapped[str] = mapped_column(String(16))
    requested_by: Mapped[UUID] = mapped_column(ForeignKey("accounts.id"))
    confirmer_id: Mapped[UUID | None] = mapped_column(ForeignKey("accounts.id"))
    erasure_id: Mapped[UUID | None] = mapped_column(ForeignKey("erasures.id"))
    ledger_seq: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    decided_at: Mapped[datetime | None] = mapped_column(UtcDateTime)

    faces: Mapped[list[ErasureRequestFace]] = relationship(
        cascade="all, delete-orphan", passive_deletes=True, order_by="ErasureRequestFace.rank"
    )


class ErasureRequestFace(Base):
    """One gallery face a probe erasure's preview matched, with its rank and score."""

    __tablename__ = "erasure_request_faces"

    request_id: Mapped[UUID] = mapped_column(
        ForeignKey("erasure_requests.id", ondelete="CASCADE"), primary_key=True
    )
    face_id: Mapped[UUID] = mapped_column(primary_key=True)
    rank: Mapped[int] = mapped_column(Integer)
    score: Mapped[float] = mapped_column(Float)
