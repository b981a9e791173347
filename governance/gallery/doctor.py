"""The gallery's doctor: where the database, the vector index and the photo store disagree, and
the repair of what the database alone can put right.

The database is the source of truth: a face row keeps its embedding, so a face missing from the
index is indexed again from it; a vector or a stored file that no row names is left over by a
process killed mid-enrolment or mid-removal, and is deleted. A row whose file is missing cannot
be rebuilt from the database: it is reported, never deleted.

It runs while the service serves. An enrolment writes its files before it commits and indexes
its vectors right after; a removal deletes its vectors and files after it commits (both are
pending effects, ``governance.core.effects``, replayed after a crash). So what looks like a
leftover may belong to a unit of work still open, or to an effect not yet applied:

- a stored file or temporary file is judged only once it is older than ``grace`` (by its
  modification time), and an object is deleted only if, read again right before, no row names
  it and it was not written since;
- vectors have no time, so a repair that finds vectors without rows, or faces without vectors,
  waits ``grace`` and looks again: it acts only on what both looks found, and reads the rows
  again right before deleting a vector.

One narrow race remains: an enrolment of a photo whose leftover file is still stored reuses that
file without writing it; if a repair deletes it in the instant between its last check and that
enrolment's commit, the next examination reports the row without its file.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypeVar
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.orm import Session

from biometrics.index import VectorIndex, collection_name
from governance.core.work import Units
from governance.gallery.blobs import BlobStore
from governance.gallery.effects import index_entries
from governance.gallery.models import GalleryFace, GalleryPhoto
from ledger.entry import Actor, EntryType

__all__ = ["DEFAULT_GRACE", "Findings", "MissingFile", "Repair", "Stores", "examine", "repair"]

DEFAULT_GRACE = timedelta(minutes=10)
"""Far longer than any enrolment's or removal's unit of work takes."""

_BATCH = 500
"""Ids or digests per database query, well under every database's limit of bound parameters."""
_EVERY = 20_000
"""Files or vectors between two progress lines of a long listing."""

Progress = Callable[[str], None]
T = TypeVar("T")


def _silent(_line: str) -> None:
    return None


@dataclass(frozen=True, slots=True)
class Stores:
    """What the doctor compares with the rows: the collection of one recognizer, and the photo
    store."""

    index: VectorIndex
    blobs: BlobStore
    recognizer_sha256: str


@dataclass(frozen=True, slots=True)
class MissingFile:
    """A row whose stored file is gone: a photo (``row_id`` its id) or a face's thumbnail."""

    kind: str
    row_id: str
    sha256: str


@dataclass(frozen=True, slots=True)
class Findings:
    """What one examination found, for the collection of one recognizer.

    ``faces``, ``vectors`` and ``stored_files`` are what it compared; ``other_faces`` are rows
    of other recognizers, whose collections it did not examine; ``recent`` counts files without
    a row too young to judge.
    """

    collection: str
    faces: int
    vectors: int
    stored_files: int
    other_faces: int
    unindexed_faces: tuple[str, ...]
    vectors_without_rows: tuple[str, ...]
    files_without_rows: tuple[str, ...]
    rows_without_files: tuple[MissingFile, ...]
    stale_temporary_files: tuple[str, ...]
    recent: int

    @property
    def clean(self) -> bool:
        """Whether the three stores agree (files too young to judge aside)."""
        return not (
            self.unindexed_faces
            or self.vectors_without_rows
            or self.files_without_rows
            or self.rows_without_files
            or self.stale_temporary_files
        )


@dataclass(frozen=True, slots=True)
class Repair:
    """What a repair found (its last examination) and what it did."""

    findings: Findings
    faces_reindexed: int
    vectors_deleted: int
    files_deleted: int
    temporary_files_deleted: int

    @property
    def complete(self) -> bool:
        """Whether nothing is left that the database cannot repair (rows without files)."""
        return not self.findings.rows_without_files


def examine(
    units: Units,
    stores: Stores,
    *,
    grace: timedelta = DEFAULT_GRACE,
    progress: Progress = _silent,
) -> Findings:
    """Compare the face rows of one recognizer with its collection, and every photo and
    thumbnail row with the photo store, without changing anything.

    Raises IndexUnavailable, OSError (the store cannot be read), and the database's errors.
    """
    index, blobs, recognizer_sha256 = stores.index, stores.blobs, stores.recognizer_sha256
    cutoff = units.now - grace
    # Files, then rows, then vectors: a unit of work that commits meanwhile then shows up as a
    # file or a vector without its row (confirmed below), never as a row without either.
    files = _listed(blobs.files(), "photo store", "files", progress)
    with units() as work:
        rows = _Rows.read(work.session, recognizer_sha256)
    progress(f"database: {len(rows.faces)} faces, {len(rows.digests)} stored files named")
    vectors = set(_listed(index.face_ids(), "vector index", "vectors", progress))
    objects = {f.name: f for f in files if not f.temporary}
    unnamed = [f for name, f in objects.items() if name not in rows.digests]
    stray = sorted(vectors - rows.faces)
    unindexed = sorted(rows.faces - vectors)
    missing = [m for m in rows.files if m.sha256 not in objects]
    # Look again at what a unit of work committing meanwhile could explain.
    with units() as work:
        present = _faces_present(work.session, stray + unindexed, recognizer_sha256)
        named = _digests_named(work.session, [m.sha256 for m in missing])
    temporary = [f for f in files if f.temporary]
    return Findings(
        collection=collection_name(recognizer_sha256),
        faces=len(rows.faces),
        vectors=len(vectors),
        stored_files=len(files),
        other_faces=rows.other_faces,
        unindexed_faces=tuple(face for face in unindexed if face in present),
        vectors_without_rows=tuple(face for face in stray if face not in present),
        files_without_rows=tuple(sorted(f.name for f in unnamed if f.modified < cutoff)),
        rows_without_files=tuple(
            m for m in missing if m.sha256 in named and not blobs.exists(m.sha256)
        ),
        stale_temporary_files=tuple(sorted(f.name for f in temporary if f.modified < cutoff)),
        recent=sum(1 for f in [*unnamed, *temporary] if f.modified >= cutoff),
    )


def repair(
    units: Units,
    stores: Stores,
    *,
    actor: Actor,
    grace: timedelta = DEFAULT_GRACE,
    progress: Progress = _silent,
    wait: Callable[[float], None] = time.sleep,
) -> Repair:
    """Examine, then index again the faces missing from the index (from their stored
    embeddings), delete vectors and stored files no row names and stale temporary files, and
    record one ``gallery:repair`` entry with the counts when anything was found.

    Rows whose file is missing are reported in the result, not deleted.
    Raises IndexUnavailable, OSError, and the ledger's and the database's errors.
    """

    def look() -> Findings:
        return examine(units, stores, grace=grace, progress=progress)

    index, blobs, recognizer_sha256 = stores.index, stores.blobs, stores.recognizer_sha256
    first = last = look()
    unindexed, stray = set(first.unindexed_faces), set(first.vectors_without_rows)
    if unindexed or stray:
        progress(
            f"{len(unindexed)} faces without vectors, {len(stray)} vectors without rows: "
            f"looking again in {_minutes(grace)} (a unit of work still open explains neither)"
        )
        wait(grace.total_seconds())
        last = look()
        unindexed &= set(last.unindexed_faces)
        stray &= set(last.vectors_without_rows)
    reindexed = _reindex(units, index, sorted(unindexed), recognizer_sha256)
    deleted = _delete_vectors(units, index, sorted(stray), recognizer_sha256)
    files = _delete_files(units, blobs, last.files_without_rows, units.now - grace)
    temporary = sum(1 for name in last.stale_temporary_files if blobs.delete_temporary(name))
    done = Repair(
        findings=last,
        faces_reindexed=reindexed,
        vectors_deleted=deleted,
        files_deleted=files,
        temporary_files_deleted=temporary,
    )
    if reindexed or deleted or files or temporary or last.rows_without_files:
        with units.later()() as work:
            work.record(
                EntryType.GALLERY_REPAIR,
                actor=actor,
                payload={
                    "recognizer_sha256": recognizer_sha256,
                    "faces_reindexed": reindexed,
                    "vectors_deleted": deleted,
                    "files_deleted": files,
                    "temporary_files_deleted": temporary,
                    "rows_without_files": len(last.rows_without_files),
                },
            )
    return done


@dataclass(frozen=True, slots=True)
class _Rows:
    """What the database names: this recognizer's face ids, every stored file's digest and the
    rows naming each."""

    faces: set[str]
    digests: set[str]
    files: list[MissingFile]
    other_faces: int

    @classmethod
    def read(cls, session: Session, recognizer_sha256: str) -> _Rows:
        faces: set[str] = set()
        files: list[MissingFile] = []
        other = 0
        for face_id, recognizer, thumbnail in session.execute(
            select(GalleryFace.id, GalleryFace.recognizer_sha256, GalleryFace.thumbnail_sha256)
        ):
            if recognizer == recognizer_sha256:
                faces.add(str(face_id))
            else:
                other += 1
            files.append(MissingFile("thumbnail", str(face_id), thumbnail))
        for photo_id, sha in session.execute(select(GalleryPhoto.id, GalleryPhoto.sha256)):
            files.append(MissingFile("photo", str(photo_id), sha))
        return cls(faces, {f.sha256 for f in files}, files, other)


def _listed(items: Iterable[T], where: str, what: str, progress: Progress) -> list[T]:
    """Everything ``items`` yields, with a progress line now and then on a long listing."""
    listed: list[T] = []
    for item in items:
        listed.append(item)
        if len(listed) % _EVERY == 0:
            progress(f"{where}: {len(listed)} {what} so far")
    progress(f"{where}: {len(listed)} {what}")
    return listed


def _batches(items: Sequence[str]) -> Iterator[Sequence[str]]:
    for start in range(0, len(items), _BATCH):
        yield items[start : start + _BATCH]


def _faces_present(session: Session, face_ids: Sequence[str], recognizer_sha256: str) -> set[str]:
    """Which of these face ids have a row of this recognizer now."""
    present: set[str] = set()
    for batch in _batches(face_ids):
        present.update(
            str(face_id)
            for face_id in session.scalars(
                select(GalleryFace.id).where(
                    GalleryFace.id.in_([UUID(f) for f in batch]),
                    GalleryFace.recognizer_sha256 == recognizer_sha256,
                )
            )
        )
    return present


def _digests_named(session: Session, digests: Collection[str]) -> set[str]:
    """Which of these digests a photo or a thumbnail row names now."""
    named: set[str] = set()
    for batch in _batches(sorted(set(digests))):
        named.update(
            session.scalars(select(GalleryPhoto.sha256).where(GalleryPhoto.sha256.in_(batch)))
        )
        named.update(
            session.scalars(
                select(GalleryFace.thumbnail_sha256).where(GalleryFace.thumbnail_sha256.in_(batch))
            )
        )
    return named


def _reindex(units: Units, index: VectorIndex, face_ids: Sequence[str], recognizer: str) -> int:
    """Upsert these faces' vectors from the embeddings their rows keep; returns how many.

    The rows are share-locked until their vectors are in, as the outbox's own indexing does: an
    erasure of one of them waits, then takes its vector out, so a repair never brings back the
    vector of a face erased while it ran.
    """
    done = 0
    for batch in _batches(face_ids):
        with units() as work:
            rows = work.session.scalars(
                select(GalleryFace)
                .where(
                    GalleryFace.id.in_([UUID(f) for f in batch]),
                    GalleryFace.recognizer_sha256 == recognizer,
                )
                .with_for_update(read=True)
            ).all()
            if rows:
                index.upsert(index_entries(rows))
        done += len(rows)
    return done


def _delete_vectors(
    units: Units, index: VectorIndex, face_ids: Sequence[str], recognizer: str
) -> int:
    """Delete the vectors of these ids that still have no row, read again just before."""
    done = 0
    for batch in _batches(face_ids):
        with units() as work:
            present = _faces_present(work.session, batch, recognizer)
        gone = [face_id for face_id in batch if face_id not in present]
        index.delete(gone)
        done += len(gone)
    return done


def _delete_files(units: Units, blobs: BlobStore, digests: Sequence[str], cutoff: datetime) -> int:
    """Delete the objects no row names, read again just before, and not written since."""
    done = 0
    for batch in _batches(digests):
        with units() as work:
            named = _digests_named(work.session, batch)
        for digest in batch:
            modified = blobs.modified(digest)
            if digest not in named and modified is not None and modified < cutoff:
                done += blobs.delete(digest)
    return done


def _minutes(span: timedelta) -> str:
    seconds = int(span.total_seconds())
    return f"{seconds // 60} min" if seconds % 60 == 0 else f"{seconds} s"
