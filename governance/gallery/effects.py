"""The gallery's effects outside the database: indexing faces, taking them out, deleting files.

Enrolment and removal record them with their rows (``governance.core.effects``); the handlers
here apply them once the rows commit, and again in a replay, so each is harmless twice and reads
the rows as they are when it runs: faces are indexed only while enrolled, and a file is deleted
only when no row refers to it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from uuid import UUID

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from biometrics.index import IndexedFace, VectorIndex, collection_name
from governance.core.effects import Handler
from governance.gallery.blobs import BlobStore
from governance.gallery.models import GalleryFace, GalleryPhoto

__all__ = ["DELETE_BLOBS", "INDEX_FACES", "UNINDEX_FACES", "effect_handlers", "index_entries"]

INDEX_FACES = "gallery:index_faces"
"""``{"face_ids": [...]}``: index these faces, from their rows."""
UNINDEX_FACES = "gallery:unindex_faces"
"""``{"face_ids": [...]}``: take these faces out of the index."""
DELETE_BLOBS = "gallery:delete_blobs"
"""``{"digests": [...]}``: delete these stored files, unless a row still refers to one."""


def effect_handlers(index: VectorIndex, blobs: BlobStore) -> dict[str, Handler]:
    """What applies the gallery's pending effects, by kind, on ``index`` and ``blobs``."""

    def index_faces(session: Session, payload: Mapping[str, Any]) -> None:
        # Shared-locked: a removal of these faces waits until they are indexed, then takes
        # them out, so a replay never brings back the vector of a face already removed.
        rows = session.scalars(
            select(GalleryFace)
            .where(GalleryFace.id.in_([UUID(i) for i in payload["face_ids"]]))
            .with_for_update(read=True)
        ).all()
        # Only this index's recognizer: a face of an earlier model pack, still pending when the
        # pack changed, belongs to another collection (``gallery reindex`` moves them).
        mine = [f for f in rows if collection_name(f.recognizer_sha256) == index.collection]
        if mine:
            index.upsert(index_entries(mine))

    def unindex_faces(_session: Session, payload: Mapping[str, Any]) -> None:
        index.delete(list(payload["face_ids"]))

    def delete_blobs(session: Session, payload: Mapping[str, Any]) -> None:
        # Content-addressed: a file is shared by every row with the same bytes, and the same
        # photo may have been enrolled again since, so only files no row refers to now go.
        for digest in set(payload["digests"]) - _in_use(session, payload["digests"]):
            blobs.delete(digest)

    return {INDEX_FACES: index_faces, UNINDEX_FACES: unindex_faces, DELETE_BLOBS: delete_blobs}


def index_entries(faces: Sequence[GalleryFace]) -> list[IndexedFace]:
    """The index entries of ``faces``, from the embeddings kept in the database."""
    return [
        IndexedFace(
            face_id=str(f.id),
            photo_id=str(f.photo_id),
            source_site=f.source_site,
            embedding=np.frombuffer(f.embedding, dtype=np.float32).copy(),
        )
        for f in faces
    ]


def _in_use(session: Session, digests: Sequence[str]) -> set[str]:
    photos = session.scalars(select(GalleryPhoto.sha256).where(GalleryPhoto.sha256.in_(digests)))
    thumbnails = session.scalars(
        select(GalleryFace.thumbnail_sha256).where(GalleryFace.thumbnail_sha256.in_(digests))
    )
    return set(photos) | set(thumbnails)
