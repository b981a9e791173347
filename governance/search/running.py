"""The governed search: a probe face against the gallery, under a legal basis, on the record.

``search`` is the whole flow, over several units of work: it settles and checks the basis,
prepares the probe (decode, detect, embed) and searches the index outside any transaction, then
``run_search``, in a unit of work of its own, consumes one search from the legal basis, drops
any face erased or blocked meanwhile, stores the search and appends ``search:run`` with
everything an oversight body needs (but never the image or the embedding). It returns a receipt
that proves, offline, that the search was recorded. Every refusal is recorded too.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID, uuid4

from sqlalchemy import Row, bindparam, insert, select
from sqlalchemy.orm import Session

from biometrics.errors import BiometricsError, NoFaceFound
from biometrics.images import decode_image
from biometrics.index import Hit
from biometrics.ports import Face
from biometrics.thumbnails import face_thumbnail
from governance.core.errors import GovernanceError, InvalidInput
from governance.core.orm import table_of
from governance.core.recording import LedgerUnavailable
from governance.core.work import Units, Work
from governance.gallery.models import (
    GalleryFace,
    GalleryPhoto,
    geometry_of,
    pack_columns,
    pack_of,
)
from governance.gallery.photos import FaceEngines, gallery_size
from governance.gallery.probes import MultipleFaces, box_of, face_at
from governance.gallery.sites import blocked_sites
from governance.identity.principals import Principal, actor_of
from governance.legal_basis.deadlines import settle_basis
from governance.legal_basis.services import check_usable, consume_search
from governance.search.models import Search, SearchCandidate, SearchProbe
from governance.search.outcomes import LEADS_STATEMENT, Candidate, SearchOutcome, receipt_of
from governance.search.refusals import refuse
from ledger.entry import EntryType

__all__ = [
    "Probe",
    "SearchParameters",
    "ThresholdBelowFloor",
    "find_candidates",
    "prepare_probe",
    "run_search",
    "search",
    "search_parameters",
]

MIN_PROBE_FACE_PX = 40
MIN_PROBE_SCORE = 0.6
_OVERFETCH = 16  # extra hits asked of the index, to fill top_k after dropping erased faces
# The mapped tables, for Core statements on the search's hot path.
_FACES = table_of(GalleryFace)
_PHOTOS = table_of(GalleryPhoto)
_SEARCHES = table_of(Search)
_CANDIDATES = table_of(SearchCandidate)
# Built once (building a statement costs more than SQLite takes to run it): the columns a
# candidate needs, for the hits the index returned.
_HIT_ROWS = (
    select(
        _FACES.c.id,
        _FACES.c.photo_id,
        _FACES.c.source_site,
        _PHOTOS.c.source_url,
        _PHOTOS.c.collected_at,
    )
    .join(_PHOTOS, _PHOTOS.c.id == _FACES.c.photo_id)
    .where(_FACES.c.id.in_(bindparam("face_ids", expanding=True)))
)
_HitRow = Row[Any, Any, Any, Any, Any]  # _HIT_ROWS's columns
_INSERT_SEARCH = insert(_SEARCHES)
_INSERT_CANDIDATES = insert(_CANDIDATES)
_INSERT_PROBE = insert(table_of(SearchProbe))


class ProbeQualityTooLow(InvalidInput):
    """The probe face is too small or too uncertain to search with."""

    code = "probe-quality-too-low"


class ThresholdBelowFloor(InvalidInput):
    """A threshold below the model pack's calibrated one: it would return non-matches."""

    code = "threshold-below-floor"

    def __init__(self, threshold: float, floor: float, far: float) -> None:
        super().__init__(
            f"threshold {threshold:g} is below {floor:g}, the model pack's calibrated threshold "
            f"(false-accept rate {far:.1e}): ask for {floor:g} or more, or leave it out",
            fields={"threshold": [f"Must be at least {floor:g}."]},
            extra={"threshold_floor": floor, "threshold_floor_far": far},
        )


@dataclass(frozen=True, slots=True)
class SearchParameters:
    legal_basis_id: UUID
    purpose: str
    top_k: int
    threshold: float


def search_parameters(
    gallery: FaceEngines, *, legal_basis_id: UUID, purpose: str, top_k: int, threshold: float | None
) -> SearchParameters:
    """The parameters of a search; no threshold means the pack's calibrated one, the floor.

    Raises ThresholdBelowFloor for a threshold below that floor (a stricter one is kept).
    """
    floor = gallery.match_threshold
    if threshold is not None and threshold < floor:
        raise ThresholdBelowFloor(threshold, floor, gallery.match_far)
    return SearchParameters(
        legal_basis_id=legal_basis_id,
        purpose=purpose,
        top_k=top_k,
        threshold=floor if threshold is None else threshold,
    )


@dataclass(frozen=True, slots=True)
class Probe:
    """The probe face chosen for a search. The photo itself is not kept; ``thumbnail`` (the
    face alone, small) is kept for the reviewers while the results are (``SearchProbe``)."""

    sha256: str
    face: Face
    thumbnail: bytes


def search(
    units: Units,
    gallery: FaceEngines,
    principal: Principal,
    *,
    image: bytes,
    legal_basis_id: UUID,
    purpose: str,
    top_k: int,
    threshold: float | None = None,
    face_index: int | None = None,
    face_box: Sequence[float] | None = None,
) -> SearchOutcome:
    """Search the gallery with the probe ``image`` under a legal basis, on the record.

    (1) The parameters are checked; (2) one unit of work settles the basis (a due expiry or
    lapse) and checks it, before any biometric work, committing the settlement even when the
    check refuses; (3) the probe is prepared and the index searched outside any transaction;
    (4) ``run_search`` spends the basis and records the search in a unit of work of its own,
    at the clock's instant then (``Units.later``), not at the request's start.
    Every refusal is put on record in a unit of work of its own (``refusals.refuse``) and then
    raised: the errors of ``search_parameters``, ``check_usable``, ``prepare_probe``,
    ``find_candidates`` and ``run_search``. Raises LedgerUnavailable, unrecorded, when nothing
    can be recorded (then nothing was disclosed or spent either).
    """
    try:
        parameters = search_parameters(
            gallery,
            legal_basis_id=legal_basis_id,
            purpose=purpose,
            top_k=top_k,
            threshold=threshold,
        )
        blocked = _settle_and_check(units, principal, parameters.legal_basis_id)
        probe = prepare_probe(gallery, image, face_index=face_index, face_box=face_box)
        hits = find_candidates(gallery, probe, parameters, blocked=blocked)
        # The analysis took time outside any transaction: the basis is spent, and the search
        # recorded, at the instant of recording, so an expiry passed meanwhile is not missed.
        with units.later()() as work:
            return run_search(
                work,
                gallery=gallery,
                principal=principal,
                parameters=parameters,
                probe=probe,
                hits=hits,
            )
    except LedgerUnavailable:
        raise  # nothing can be recorded, and nothing was disclosed
    except (GovernanceError, BiometricsError) as exc:
        refuse(
            units.later(),
            principal,
            exc,
            legal_basis_id=legal_basis_id,
            probe_sha256=hashlib.sha256(image).hexdigest(),
        )
        raise


def _settle_and_check(units: Units, principal: Principal, basis_id: UUID) -> frozenset[str]:
    """Settle the basis and check it in one unit of work that commits even when the check
    refuses; returns the sites blocked now. Raises what ``check_usable`` raises."""
    refused: GovernanceError | None = None
    with units() as work:
        settle_basis(work, basis_id=basis_id)
        try:
            check_usable(work, principal=principal, basis_id=basis_id)
        except GovernanceError as exc:
            refused = exc
        blocked = blocked_sites(work.session)
    if refused is not None:
        raise refused
    return blocked


def prepare_probe(
    gallery: FaceEngines,
    data: bytes,
    *,
    face_index: int | None = None,
    face_box: Sequence[float] | None = None,
) -> Probe:
    """Decode the probe and pick the face to search.

    Raises the image errors, NoFaceFound, MultipleFaces (listing the faces and their boxes),
    InvalidInput (a face_index or face_box that selects nothing), ProbeQualityTooLow.
    """
    image = decode_image(
        data,
        max_bytes=gallery.max_bytes,
        max_pixels=gallery.max_probe_pixels,
        limit_name="FACEWARDEN_MAX_PROBE_PIXELS",
    )
    faces = gallery.analyzer.analyze(image.pixels)
    if not faces:
        # A face below the detector's own minimum size is as much too small as one below the
        # probe minimum, and the searcher is told so the same way.
        small = gallery.analyzer.too_small(image.pixels)
        if small:
            box = small[0].box
            raise _too_low(min(box.width, box.height), small[0].score)
        raise NoFaceFound("no face was found in the probe (check size, sharpness and framing)")
    face = _choose(faces, face_index, face_box)
    if face.quality.size_px < MIN_PROBE_FACE_PX or face.score < MIN_PROBE_SCORE:
        raise _too_low(face.quality.size_px, face.score)
    return Probe(sha256=image.sha256, face=face, thumbnail=face_thumbnail(image.pixels, face.box))


def _too_low(size_px: float, score: float) -> ProbeQualityTooLow:
    return ProbeQualityTooLow(
        f"the probe face is {size_px:.0f} px with detection score {score:.2f}; at least "
        f"{MIN_PROBE_FACE_PX} px and {MIN_PROBE_SCORE} are needed",
        fields={"image": ["Use a larger, sharper photo of the face."]},
    )


def _choose(faces: list[Face], index: int | None, box: Sequence[float] | None) -> Face:
    if index is not None:
        return face_at(faces, index)
    if box is not None:
        best = max(faces, key=lambda f: _iou(box_of(f), box))
        if _iou(box_of(best), box) < 0.3:
            raise InvalidInput(
                "face_box overlaps no detected face",
                fields={"face_box": ["Give the box of one of the detected faces."]},
            )
        return best
    if len(faces) > 1:
        raise MultipleFaces(
            f"the probe holds {len(faces)} faces: resend with face_index or face_box",
            fields={"face_index": ["Choose one of the faces listed in `faces`."]},
            extra={
                "faces": [
                    {"index": i, "box": box_of(f), "detection_score": round(f.score, 3)}
                    for i, f in enumerate(faces)
                ]
            },
        )
    return faces[0]


def _iou(a: Sequence[float], b: Sequence[float]) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def find_candidates(
    gallery: FaceEngines, probe: Probe, parameters: SearchParameters, *, blocked: Iterable[str]
) -> list[Hit]:
    """The index's nearest faces to the probe outside ``blocked`` sites, over-fetched so that
    ``run_search`` can drop faces erased or blocked meanwhile and still fill ``top_k``.

    Call it outside any unit of work: the index is not transactional, and holding the
    database's write lock through the search would serialize concurrent searches. Nothing
    found is disclosed unless ``run_search`` then records the search.
    Raises IndexUnavailable, InvalidQuery.
    """
    return gallery.index.search(
        probe.face.embedding,
        parameters.top_k + _OVERFETCH,
        exclude_sites=blocked,
        min_score=parameters.threshold,
    )


def run_search(
    work: Work,
    *,
    gallery: FaceEngines,
    principal: Principal,
    parameters: SearchParameters,
    probe: Probe,
    hits: Sequence[Hit],
) -> SearchOutcome:
    """Record a search of the gallery under a legal basis; returns results and a receipt.

    ``hits`` come from ``find_candidates``. In this unit of work the basis is spent, every hit
    is checked against the gallery and the blocked sites as they are now, and the search and
    its ledger entry are written together.
    Raises ThresholdBelowFloor (parameters not made by ``search_parameters``), the legal-basis
    refusals of ``consume_search``, and LedgerUnavailable when the entry cannot be appended (the
    caller's transaction must roll back: nothing is disclosed).
    """
    session = work.session
    if parameters.threshold < gallery.match_threshold:
        raise ThresholdBelowFloor(parameters.threshold, gallery.match_threshold, gallery.match_far)
    # Whatever the index answered, nothing below the threshold is disclosed.
    hits = [h for h in hits if h.score >= parameters.threshold]
    use = consume_search(work, principal=principal, basis_id=parameters.legal_basis_id)
    blocked = blocked_sites(session)
    # The index is not transactional: keep only faces still in the gallery and not blocked now.
    # The first top_k hits are looked up; the over-fetched rest only when some were dropped.
    rows = _hit_rows(session, hits[: parameters.top_k])
    kept = [h for h in hits[: parameters.top_k] if _still_shown(h, rows, blocked)]
    if len(kept) < parameters.top_k < len(hits):
        rows |= _hit_rows(session, hits[parameters.top_k :])
        kept = [h for h in hits if _still_shown(h, rows, blocked)][: parameters.top_k]

    model = gallery.analyzer.model
    q = probe.face.quality
    search_id = uuid4()
    size = gallery_size(session, model.recognizer_sha256)
    collection = gallery.index.collection
    candidates = tuple(
        Candidate(
            rank=rank,
            face_id=UUID(h.face_id),
            photo_id=rows[h.face_id].photo_id,
            similarity=h.score,
            source_site=rows[h.face_id].source_site,
            source_url=rows[h.face_id].source_url,
            collected_at=rows[h.face_id].collected_at,
        )
        for rank, h in enumerate(kept, start=1)
    )
    probe_face = {
        "box": box_of(probe.face),
        "quality": {
            "size_px": round(q.size_px, 1),
            "detection_score": round(probe.face.score, 4),
            "blur": round(q.blur, 1),
            "yaw": round(q.yaw, 1),
            "pitch": round(q.pitch, 1),
            "roll": round(q.roll, 1),
        },
    }
    # Ledger entries hold no floats (their canonical form would depend on number formatting):
    # boxes are whole pixels, scores and measures decimal strings.
    ledger_face = {
        "box": [round(v) for v in box_of(probe.face)],
        "quality": {k: f"{v:.4f}" for k, v in probe_face["quality"].items()},  # type: ignore[attr-defined]
    }
    appended = work.record(
        EntryType.SEARCH_RUN,
        actor=actor_of(principal),
        payload={
            "search_id": str(search_id),
            "agency_id": str(principal.agency_id),
            "account_id": str(principal.account_id),
            "credential_id": str(principal.credential_id),
            "legal_basis_id": str(use.basis_id),
            "case_number": use.case_number,
            "offence_category": use.offence_category,
            "authorisation": {
                "kind": use.authorisation_kind,
                "reference": use.authorisation_reference,
            },
            "purpose": parameters.purpose,
            "probe_sha256": probe.sha256,
            "probe_face": ledger_face,
            "pack": {
                **pack_of(model),
                # The floor in force, so an audit can check the threshold against it offline.
                "match_threshold": f"{gallery.match_threshold:.4f}",
                "match_far": f"{gallery.match_far:.2e}",
            },
            "top_k": parameters.top_k,
            "threshold": f"{parameters.threshold:.4f}",
            "gallery": {"collection": collection, "size": size},
            "candidates": [
                {
                    "face_id": str(c.face_id),
                    "score": f"{c.similarity:.6f}",
                    "source_site": c.source_site,
                }
                for c in candidates
            ],
        },
    )
    # The search row names its ledger entry; both commit together or neither does.
    session.execute(
        _INSERT_SEARCH,
        {
            "id": search_id,
            "agency_id": principal.agency_id,
            "account_id": principal.account_id,
            "legal_basis_id": parameters.legal_basis_id,
            "purpose": parameters.purpose,
            "probe_sha256": probe.sha256,
            **geometry_of(probe.face),
            **pack_columns(model),
            "top_k": parameters.top_k,
            "threshold": parameters.threshold,
            "gallery_collection": collection,
            "gallery_size": size,
            "ledger_seq": appended.seq,
            "created_at": work.now,
        },
    )
    if candidates:
        # Kept for the reviewers, so only when there is something to review.
        session.execute(
            _INSERT_PROBE,
            {"search_id": search_id, "image": probe.thumbnail, "created_at": work.now},
        )
        session.execute(
            _INSERT_CANDIDATES,
            [
                {
                    "search_id": search_id,
                    "rank": c.rank,
                    "face_id": c.face_id,
                    "score": c.similarity,
                    "source_site": c.source_site,
                    "views": 0,
                }
                for c in candidates
            ],
        )
    return SearchOutcome(
        id=search_id,
        created_at=work.now,
        probe_face=probe_face,
        candidates=candidates,
        pack=pack_of(model),
        gallery_collection=collection,
        gallery_size=size,
        top_k=parameters.top_k,
        threshold=parameters.threshold,
        legal_basis_id=parameters.legal_basis_id,
        statement=LEADS_STATEMENT,
        receipt=receipt_of(appended),
    )


def _hit_rows(session: Session, hits: Sequence[Hit]) -> dict[str, _HitRow]:
    # Core, over the few columns a candidate needs: loading the gallery rows as ORM objects
    # (with their embeddings) cost more than the rest of the search's unit of work.
    if not hits:
        return {}
    found = session.execute(_HIT_ROWS, {"face_ids": [UUID(h.face_id) for h in hits]})
    return {str(row.id): row for row in found}


def _still_shown(hit: Hit, rows: dict[str, _HitRow], blocked: frozenset[str]) -> bool:
    row = rows.get(hit.face_id)
    return row is not None and row.source_site not in blocked
