"""Enrolling a batch of photos: their faces are found and embedded together, then each photo is
enrolled in its own unit of work, so one bad photo never loses the others and a batch sent again
skips what is already enrolled. The CLI's manifest ingest and the console's upload both call it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple
from uuid import UUID

from sqlalchemy import select

from biometrics.errors import BiometricsError
from governance.core.errors import Conflict, GovernanceError, InvalidInput
from governance.core.work import Units
from governance.gallery.blobs import sha256_hex
from governance.gallery.models import GalleryPhoto
from governance.gallery.photos import (
    FaceEngines,
    PreparedPhoto,
    Provenance,
    enroll_photo,
    prepare_photos,
)
from ledger.entry import Actor

__all__ = ["BatchItem", "BatchSummary", "EnrolledPhoto", "Reject", "enroll_batch"]

DEFAULT_CHUNK = 16
"""Photos whose faces are embedded together: bounds the decoded pixels held at once."""


@dataclass(frozen=True, slots=True)
class BatchItem:
    """One photo of a batch: a label people recognise it by (a file name, a manifest line),
    then its bytes and provenance, or the problem already found while reading it."""

    label: str
    data: bytes | None = None
    provenance: Provenance | None = None
    problem: str | None = None


class Reject(NamedTuple):
    """A photo that was not enrolled, and why, in words for the person who sent it."""

    label: str
    reason: str


@dataclass(frozen=True, slots=True)
class EnrolledPhoto:
    label: str
    photo_id: UUID
    faces: int


@dataclass(frozen=True, slots=True)
class BatchSummary:
    """What a batch did: the photos enrolled, the labels of those already enrolled (skipped),
    and the rejects, each in the order of the batch."""

    photos: tuple[EnrolledPhoto, ...] = ()
    already_enrolled: tuple[str, ...] = ()
    rejects: tuple[Reject, ...] = ()

    @property
    def enrolled(self) -> int:
        return len(self.photos)

    @property
    def faces(self) -> int:
        return sum(p.faces for p in self.photos)

    @property
    def skipped(self) -> int:
        return len(self.already_enrolled)

    def __add__(self, other: BatchSummary) -> BatchSummary:
        return BatchSummary(
            self.photos + other.photos,
            self.already_enrolled + other.already_enrolled,
            self.rejects + other.rejects,
        )


@dataclass(frozen=True, slots=True)
class _Skipped:
    label: str


_Outcome = EnrolledPhoto | Reject | _Skipped


def enroll_batch(
    units: Units,
    engines: FaceEngines,
    items: Sequence[BatchItem],
    *,
    actor: Actor,
    clock: Callable[[], datetime] | None = None,
    chunk: int = DEFAULT_CHUNK,
) -> BatchSummary:
    """Enrol every item that can be; returns what was enrolled, skipped and rejected.

    An item with a problem, undecodable bytes, no face, bytes sent twice in the batch, or a
    provenance ``enroll_photo`` refuses (a blocked site, a bad date or basis) is a reject; one
    whose bytes are already in the gallery is skipped. Faces are found ``chunk`` photos at a
    time; each photo is then enrolled in its own unit of work, dated when it is enrolled (at
    ``clock()``, by default the units' clock), and recorded there in the ledger.

    Raises only what stops every photo alike (the database, the models): a photo's own problem
    is a reject, never an exception.
    """
    outcomes: dict[int, _Outcome] = {}
    first_of: dict[str, str] = {}  # digest -> the label of the batch's first photo with it
    numbered, size = list(enumerate(items)), max(chunk, 1)
    for start in range(0, len(numbered), size):
        part = numbered[start : start + size]
        outcomes |= _enroll_chunk(units, engines, part, actor, clock, first_of)
    done = [outcomes[n] for n in sorted(outcomes)]
    return BatchSummary(
        photos=tuple(o for o in done if isinstance(o, EnrolledPhoto)),
        already_enrolled=tuple(o.label for o in done if isinstance(o, _Skipped)),
        rejects=tuple(o for o in done if isinstance(o, Reject)),
    )


def _enroll_chunk(
    units: Units,
    engines: FaceEngines,
    items: Sequence[tuple[int, BatchItem]],
    actor: Actor,
    clock: Callable[[], datetime] | None,
    first_of: dict[str, str],
) -> dict[int, _Outcome]:
    outcomes: dict[int, _Outcome] = {}
    readable: list[tuple[int, BatchItem, bytes, Provenance]] = []
    for n, item in items:
        if item.problem or item.data is None or item.provenance is None:
            outcomes[n] = Reject(item.label, item.problem or "nothing to enrol")
        else:
            readable.append((n, item, item.data, item.provenance))
    enrolled = _enrolled_among(units, {sha256_hex(data) for _, _, data, _ in readable})
    todo: list[tuple[int, BatchItem, bytes, Provenance]] = []
    for entry in readable:
        n, label, sha = entry[0], entry[1].label, sha256_hex(entry[2])
        if sha in enrolled:
            outcomes[n] = _Skipped(label)
        elif sha in first_of:
            outcomes[n] = Reject(label, f"the same photo as {first_of[sha]}")
        else:
            first_of[sha] = label
            todo.append(entry)
    prepared = prepare_photos(engines, [data for _, _, data, _ in todo])
    for (n, item, _data, provenance), result in zip(todo, prepared, strict=True):
        at = units.at(clock()) if clock is not None else units.later()
        outcomes[n] = _enroll_one(at, engines, item, provenance, result, actor)
    return outcomes


def _enrolled_among(units: Units, digests: set[str]) -> set[str]:
    """Which of these photo digests the gallery holds already."""
    if not digests:
        return set()
    with units() as work:
        found = work.session.scalars(
            select(GalleryPhoto.sha256).where(GalleryPhoto.sha256.in_(sorted(digests)))
        )
        return set(found)


def _enroll_one(
    units: Units,
    engines: FaceEngines,
    item: BatchItem,
    provenance: Provenance,
    result: PreparedPhoto | BiometricsError,
    actor: Actor,
) -> _Outcome:
    if isinstance(result, BiometricsError):
        return Reject(item.label, str(result))
    try:
        with units() as work:
            photo = enroll_photo(work, engines, prepared=result, provenance=provenance, actor=actor)
    except Conflict as exc:
        if exc.code == "photo-already-enrolled":  # meanwhile, by another batch or curator
            return _Skipped(item.label)
        return Reject(item.label, exc.detail)
    except GovernanceError as exc:
        return Reject(item.label, _reason(exc))
    return EnrolledPhoto(item.label, photo.id, len(photo.faces))


def _reason(exc: GovernanceError) -> str:
    """The error's detail, with what is wrong in each field of an invalid provenance."""
    if not isinstance(exc, InvalidInput) or not exc.fields:
        return exc.detail
    said = "; ".join(f"{name}: {' '.join(map(str, msgs))}" for name, msgs in exc.fields.items())
    return f"{exc.detail} ({said})"
