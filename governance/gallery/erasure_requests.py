"""Erasure by a probe photo: a face search on the record, confirmed by a second administrator.

Comparing a face with the gallery identifies people, so the preview is governed like a search:
it names a data-subject request, and its own ``erasure:preview`` entry records the probe's
SHA-256, who asked, why, and the SHA-256 of every face id it returned with its score. It shows
face ids, scores and thumbnails only, never a photo's provenance. The first other administrator
who opens the request becomes its confirmer: from then on only the requester and the confirmer
read it, and every thumbnail view is recorded. Only the confirmer can confirm (four eyes), and
the confirmation erases the chosen faces' photos without comparing anything again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID, uuid4

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session, selectinload

from biometrics.index import Hit
from biometrics.ports import Face
from governance.core.errors import (
    Conflict,
    InvalidInput,
    NotFound,
    PermissionDenied,
    blank_fields,
)
from governance.core.work import Units, Work
from governance.gallery.erasure import ErasureResult, erase_photos, id_digest
from governance.gallery.models import (
    ErasureKind,
    ErasureRequest,
    ErasureRequestFace,
    ErasureRequestStatus,
    GalleryFace,
    GalleryPhoto,
    pack_of,
    value_of,
)
from governance.gallery.photos import FaceEngines, PreparedPhoto, photos_where, prepare_photo
from governance.gallery.probes import MultipleFaces, box_of, face_at
from governance.identity.persons import same_person
from governance.identity.principals import Principal, actor_of, reason_digest
from ledger.entry import EntryType

__all__ = [
    "MAX_PROBE_MATCHES",
    "ErasureRequestView",
    "MultipleFaces",
    "ProbeMatch",
    "choose_face",
    "confirm_erasure",
    "find_matches",
    "open_erasure_request",
    "preview_erasure",
    "preview_thumbnail",
    "record_preview",
]

# The preview's entry lists every match; 100 keep it well under the ledger's 16 KiB.
MAX_PROBE_MATCHES = 100


@dataclass(frozen=True, slots=True)
class ProbeMatch:
    rank: int
    face_id: UUID
    score: float


@dataclass(frozen=True, slots=True)
class ErasureRequestView:
    id: UUID
    request_reference: str
    status: str
    threshold: float
    requested_by: UUID
    confirmer_id: UUID | None
    erasure_id: UUID | None
    ledger_seq: int
    created_at: datetime
    matches: tuple[ProbeMatch, ...]


def choose_face(prepared: PreparedPhoto, face_index: int | None) -> Face:
    """The data subject's face in the probe: the only one, or the one ``face_index`` names.

    Only that face is compared: the others are bystanders, whom nothing entitles anyone to
    look for. Raises MultipleFaces (listing the faces and their boxes), InvalidInput.
    """
    faces = prepared.faces
    if face_index is not None:
        return face_at(faces, face_index)
    if len(faces) > 1:
        raise MultipleFaces(
            f"the probe holds {len(faces)} faces: resend with face_index",
            fields={"face_index": ["Choose the data subject's face among `faces`."]},
            extra={"faces": [{"index": i, "box": box_of(f)} for i, f in enumerate(faces)]},
        )
    return faces[0]


def find_matches(engines: FaceEngines, face: Face, threshold: float) -> list[Hit]:
    """Every gallery face matching the probe face at or above ``threshold``, best first.

    Call it outside any unit of work, like ``search.running.find_candidates``: nothing found is
    disclosed unless ``record_preview`` then records the preview. Raises IndexUnavailable.
    """
    return engines.index.search(face.embedding, MAX_PROBE_MATCHES, min_score=threshold)


def preview_erasure(
    units: Units,
    engines: FaceEngines,
    *,
    principal: Principal,
    image: bytes,
    face_index: int | None,
    threshold: float,
    request_reference: str,
    reason: str,
) -> ErasureRequestView:
    """Compare the data subject's face in ``image`` with the gallery and open a request on it.

    The probe is analysed and compared outside any transaction; the preview is then recorded in
    one unit of work (``record_preview``). Raises the image errors of ``prepare_photo``,
    MultipleFaces, InvalidInput, IndexUnavailable, LedgerUnavailable.
    """
    _check_request(request_reference, reason)  # before any face is compared
    prepared = prepare_photo(engines, image)
    face = choose_face(prepared, face_index)
    hits = find_matches(engines, face, threshold)
    with units() as work:
        return record_preview(
            work,
            engines,
            principal=principal,
            prepared=prepared,
            face=face,
            hits=hits,
            threshold=threshold,
            request_reference=request_reference,
            reason=reason,
        )


def _check_request(request_reference: str, reason: str) -> None:
    """Raise InvalidInput unless the preview names its data-subject request and a reason."""
    errors = blank_fields(
        request_reference=(
            request_reference,
            "Name the data-subject request this erasure answers.",
        ),
        reason=(reason, "A reason is required."),
    )
    if errors:
        raise InvalidInput("the erasure preview needs its data-subject request", fields=errors)


def record_preview(
    work: Work,
    engines: FaceEngines,
    *,
    principal: Principal,
    prepared: PreparedPhoto,
    face: Face,
    hits: Sequence[Hit],
    threshold: float,
    request_reference: str,
    reason: str,
) -> ErasureRequestView:
    """Open an erasure request for the probe's matches and append ``erasure:preview``.

    Raises InvalidInput (no data-subject request reference or reason), LedgerUnavailable (the
    caller's transaction must roll back: nothing is disclosed).
    """
    _check_request(request_reference, reason)
    session = work.session
    present = set(
        session.scalars(
            select(GalleryFace.id).where(GalleryFace.id.in_([UUID(h.face_id) for h in hits]))
        )
    )
    matches = tuple(
        ProbeMatch(rank=rank, face_id=UUID(h.face_id), score=h.score)
        for rank, h in enumerate((h for h in hits if UUID(h.face_id) in present), start=1)
    )
    model = engines.analyzer.model
    request_id = uuid4()
    appended = work.record(
        EntryType.ERASURE_PREVIEW,
        actor=actor_of(principal),
        payload={
            "erasure_request_id": str(request_id),
            # Keyed: a reference may name the person asking; oversight matches it to its register
            # by asking the operator for the digest of each reference it holds.
            "request_reference_hmac": work.keyed("dsr", request_reference.strip()),
            "reason_sha256": reason_digest(reason.strip()),
            "account_id": str(principal.account_id),
            "credential_id": str(principal.credential_id),
            "probe_sha256": prepared.image.sha256,
            "probe_faces": len(prepared.faces),
            "probe_face": {"box": [round(v) for v in box_of(face)]},
            "pack": pack_of(model),
            "threshold": f"{threshold:.4f}",
            "matches": [
                {"face_id_sha256": id_digest(m.face_id), "score": f"{m.score:.6f}"} for m in matches
            ],
        },
    )
    row = ErasureRequest(
        id=request_id,
        request_reference=request_reference.strip(),
        reason=reason.strip(),
        probe_sha256=prepared.image.sha256,
        threshold=threshold,
        status=ErasureRequestStatus.PENDING,
        requested_by=principal.account_id,
        ledger_seq=appended.seq,
        created_at=work.now,
    )
    row.faces = [ErasureRequestFace(face_id=m.face_id, rank=m.rank, score=m.score) for m in matches]
    session.add(row)
    session.flush()
    return _view(row)


def open_erasure_request(
    work: Work, *, principal: Principal, request_id: UUID
) -> ErasureRequestView:
    """A request, for its requester or its confirmer (the first other admin to open it).

    Raises NotFound (no such request, or another admin is its confirmer).
    """
    return _view(_reach(work.session, principal, request_id, pending=False))


def preview_thumbnail(
    work: Work, engines: FaceEngines, *, principal: Principal, request_id: UUID, face_id: UUID
) -> bytes:
    """The thumbnail of one face the preview matched; each view appended to the ledger.

    Raises NotFound (no such request or match, another admin confirms it, face gone), Conflict.
    """
    row = _reach(work.session, principal, request_id)
    matched = face_id in {f.face_id for f in row.faces}
    face = work.session.get(GalleryFace, face_id) if matched else None
    if face is None:
        raise NotFound("This face is not among this erasure request's matches.")
    work.record(
        EntryType.ERASURE_THUMBNAIL_VIEW,
        actor=actor_of(principal),
        payload={
            "erasure_request_id": str(row.id),
            "face_id_sha256": id_digest(face_id),
        },
    )
    return engines.blobs.get(face.thumbnail_sha256)


def confirm_erasure(
    work: Work,
    engines: FaceEngines,
    *,
    principal: Principal,
    request_id: UUID,
    face_ids: Sequence[UUID],
    reason: str,
) -> ErasureResult:
    """Erase the photos of the chosen matches: the second administrator's decision.

    Raises PermissionDenied (four-eyes-required: the requester cannot confirm), NotFound,
    Conflict (already confirmed), InvalidInput (no faces, or faces the preview did not match).
    """
    session = work.session
    row = _reach(session, principal, request_id)
    if same_person(session, row.requested_by, principal.account_id):
        raise PermissionDenied(
            "An administrator other than the one who asked for the preview must confirm this "
            "erasure (four eyes).",
            code="four-eyes-required",
        )
    matched = {f.face_id for f in row.faces}
    chosen = set(face_ids)
    if not chosen or not chosen <= matched:
        raise InvalidInput(
            "confirm only faces the preview matched",
            fields={"face_ids": ["Give one or more face ids from this request's matches."]},
        )
    photo_ids = set(session.scalars(select(GalleryFace.photo_id).where(GalleryFace.id.in_(chosen))))
    photos = photos_where(session, GalleryPhoto.id.in_(photo_ids))
    if not photos:
        raise NotFound("the chosen faces are no longer in the gallery")
    # Conditional, so that of two confirmations at once only one erases (the other waits on
    # the row, then finds it decided).
    decided = session.execute(
        update(ErasureRequest)
        .where(ErasureRequest.id == row.id, ErasureRequest.status == ErasureRequestStatus.PENDING)
        .values(status=ErasureRequestStatus.CONFIRMED, decided_at=work.now)
        .returning(ErasureRequest.id)
    ).first()
    if decided is None:
        raise Conflict("This erasure request was already confirmed.", code="already-decided")
    result = erase_photos(
        work,
        engines,
        photos=photos,
        kind=ErasureKind.PROBE.value,
        target_digest=row.probe_sha256,
        reason=reason,
        actor=actor_of(principal),
        payload={
            "erasure_request_id": str(row.id),
            "requested_by": str(row.requested_by),
            "reason_sha256": reason_digest(reason.strip()),
        },
    )
    session.refresh(row, ["status", "decided_at"])
    row.erasure_id = result.id
    # The matches served the decision; the ledger keeps their hashes.
    session.execute(delete(ErasureRequestFace).where(ErasureRequestFace.request_id == row.id))
    session.flush()
    return result


def _reach(
    session: Session, principal: Principal, request_id: UUID, *, pending: bool = True
) -> ErasureRequest:
    row = session.get(ErasureRequest, request_id, options=[selectinload(ErasureRequest.faces)])
    if row is None:
        raise NotFound("No such erasure request.")
    if principal.account_id != row.requested_by:
        if row.confirmer_id is None:
            # Conditional, so that of two admins opening it at once only one becomes confirmer.
            session.execute(
                update(ErasureRequest)
                .where(ErasureRequest.id == row.id, ErasureRequest.confirmer_id.is_(None))
                .values(confirmer_id=principal.account_id)
            )
            session.refresh(row, ["confirmer_id"])
        if row.confirmer_id != principal.account_id:
            # Its matches stay between the two administrators deciding it.
            raise NotFound("No such erasure request.")
    if pending and row.status != ErasureRequestStatus.PENDING:
        raise Conflict("This erasure request was already confirmed.", code="already-decided")
    return row


def _view(row: ErasureRequest) -> ErasureRequestView:
    matches = tuple(ProbeMatch(f.rank, f.face_id, f.score) for f in row.faces)
    return value_of(ErasureRequestView, row, matches=matches)
