"""Rows for unit tests of the governance services, inserted straight into the test's session.

Each factory writes the fewest columns the schema requires and takes keyword overrides for the
rest, so a test states only what it is about. They bypass the services on purpose: a unit test
of one service should not depend on another's behaviour to set up its state.
"""

from __future__ import annotations

import hashlib
import itertools
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

import numpy as np
from sqlalchemy.orm import Session

from governance.gallery.models import (
    ErasureRequest,
    ErasureRequestFace,
    GalleryFace,
    GalleryPhoto,
    SourcePolicy,
)
from governance.gallery.photos import count_faces
from governance.identity.models import Account, Agency, Credential
from governance.identity.permissions import PLATFORM_ROLES, Role
from governance.identity.persons import person_key
from governance.identity.principals import Principal
from governance.identity.tokens import digest
from governance.legal_basis.models import LegalBasis

__all__ = [
    "NOW",
    "account",
    "agency",
    "credential",
    "erasure_request",
    "gallery_photo",
    "legal_basis",
    "principal",
    "source_policy",
]

NOW = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)
_serial = itertools.count(1)


def agency(session: Session, **overrides: Any) -> Agency:
    """An active police agency."""
    n = next(_serial)
    values: dict[str, Any] = {
        "name": f"Agency {n}",
        "kind": "police",
        "country": "NL",
        "jurisdiction": "Utrecht",
        "status": "active",
        "created_at": NOW,
        "status_changed_at": NOW,
    } | overrides
    row = Agency(**values)
    session.add(row)
    session.flush()
    return row


def account(
    session: Session,
    role: Role = Role.INVESTIGATOR,
    *,
    agency_row: Agency | None = None,
    **overrides: Any,
) -> Account:
    """An active account of ``role``; agency roles get a new agency unless one is given."""
    n = next(_serial)
    agency_id = None
    if role not in PLATFORM_ROLES:
        agency_id = (agency_row or agency(session)).id
    email = overrides.pop("email", f"person{n}-{uuid4().hex[:6]}@example.org")
    values: dict[str, Any] = {
        "role": role.value,
        "agency_id": agency_id,
        "status": "active",
        "name": f"Person {n}",
        "email": email,
        "person_key": person_key(email),
        "scope_key": str(agency_id) if agency_id else "platform",
        "created_at": NOW,
        "status_changed_at": NOW,
    } | overrides
    row = Account(**values)
    session.add(row)
    session.flush()
    return row


def credential(session: Session, account_row: Account, **overrides: Any) -> Credential:
    """A live credential of ``account_row`` (its secret is not kept: tests act as principals)."""
    values: dict[str, Any] = {
        "lookup_id": secrets.token_hex(8),
        "account_id": account_row.id,
        "secret_hash": digest(secrets.token_urlsafe(16)),
        "created_at": NOW,
        "expires_at": NOW + timedelta(days=90),
    } | overrides
    row = Credential(**values)
    session.add(row)
    session.flush()
    return row


def principal(session: Session, account_row: Account) -> Principal:
    """The authenticated caller ``account_row`` would be, with a fresh credential."""
    return Principal(
        account_id=account_row.id,
        role=Role(account_row.role),
        agency_id=account_row.agency_id,
        credential_id=credential(session, account_row).id,
    )


def legal_basis(session: Session, author: Account, **overrides: Any) -> LegalBasis:
    """A pending judicial basis recorded by ``author`` in its agency, valid for 30 days."""
    assert author.agency_id is not None, "a legal basis belongs to an agency account's agency"
    n = next(_serial)
    values: dict[str, Any] = {
        "agency_id": author.agency_id,
        "created_by": author.id,
        "created_at": NOW,
        "status": "pending",
        "case_number": f"CASE-{n}",
        "offence_category": "robbery",
        "legal_provision": "Art. 1 Code of Criminal Procedure",
        "authorisation_kind": "judicial",
        "authorisation_reference": f"AUTH-{n}",
        "authorising_authority": "District Court",
        "authorisation_issued_at": NOW - timedelta(days=1),
        "expires_at": NOW + timedelta(days=30),
        "justification": "The suspect was filmed at the scene.",
        "max_searches": 10,
        "searches_used": 0,
    } | overrides
    row = LegalBasis(**values)
    session.add(row)
    session.flush()
    return row


# --- Searches: approved bases, gallery faces, searches and their candidates -----------------
# (for tests/unit/governance/search/; the rows a recorded search leaves, without the models)


def approved_basis(session: Session, author: Account, approver: Account, **overrides: Any) -> Any:
    """A judicial basis of ``author``'s agency, approved by ``approver`` at ``NOW``."""
    values: dict[str, Any] = {"status": "approved", "decided_by": approver.id, "decided_at": NOW}
    return legal_basis(session, author, **(values | overrides))


def gallery_face(session: Session, *, site: str = "people.example.org", **overrides: Any) -> Any:
    """A gallery face of a new photo from ``site`` (no embedding worth searching)."""
    from governance.gallery.models import GalleryFace, GalleryPhoto

    n = next(_serial)
    photo = GalleryPhoto(
        sha256=secrets.token_hex(32),
        media_type="image/jpeg",
        width=640,
        height=480,
        source_url=f"https://{site}/{n}.jpg",
        source_site=site,
        collected_at=NOW - timedelta(days=30),
        collection_basis="public_record",
        enrolled_at=NOW - timedelta(days=1),
        enrolled_by="curator",
        pack_name="starter",
        pack_version="1",
        recognizer_sha256="0" * 64,
    )
    session.add(photo)
    session.flush()
    values: dict[str, Any] = {
        "photo_id": photo.id,
        "source_site": site,
        **dict.fromkeys(("x1", "y1", "blur", "yaw", "pitch", "roll"), 0.0),
        "x2": 100.0,
        "y2": 100.0,
        "detection_score": 0.9,
        "size_px": 100.0,
        "thumbnail_sha256": secrets.token_hex(32),
        "recognizer_sha256": "0" * 64,
        "embedding": b"\0" * 16,
        "created_at": NOW - timedelta(days=1),
    } | overrides
    face = GalleryFace(**values)
    session.add(face)
    session.flush()
    return face


def search_record(
    session: Session, searcher: Account, basis: LegalBasis, *, face_ids: Any = (), **overrides: Any
) -> Any:
    """A recorded search by ``searcher`` under ``basis``, with ``face_ids`` as its candidates."""
    from governance.search.models import Search, SearchCandidate

    assert searcher.agency_id is not None, "a search belongs to an agency account's agency"
    values: dict[str, Any] = {
        "agency_id": searcher.agency_id,
        "account_id": searcher.id,
        "legal_basis_id": basis.id,
        "purpose": "identify the suspect",
        "probe_sha256": secrets.token_hex(32),
        **dict.fromkeys(("x1", "y1", "blur", "yaw", "pitch", "roll"), 0.0),
        "x2": 100.0,
        "y2": 100.0,
        "detection_score": 0.9,
        "size_px": 100.0,
        "pack_name": "starter",
        "pack_version": "1",
        "recognizer_sha256": "0" * 64,
        "top_k": 10,
        "threshold": 0.4,
        "gallery_collection": "faces",
        "gallery_size": 100,
        "ledger_seq": 0,
        "created_at": NOW,
    } | overrides
    row = Search(**values)
    row.candidates = [
        SearchCandidate(rank=rank, face_id=face_id, score=0.9, source_site="people.example.org")
        for rank, face_id in enumerate(face_ids, start=1)
    ]
    session.add(row)
    session.flush()
    return row


# --- legal_basis: bases in the states their services bring them to ----------------------------

__all__ += ["approved", "urgent_legal_basis"]


def urgent_legal_basis(session: Session, author: Account, **overrides: Any) -> LegalBasis:
    """A pending urgent basis of ``author``: no reference or authority until it is ratified,
    which is due 48 hours after ``NOW``."""
    values: dict[str, Any] = {
        "authorisation_kind": "urgent",
        "authorisation_reference": None,
        "authorising_authority": None,
        "ratification_deadline": NOW + timedelta(hours=48),
    } | overrides
    return legal_basis(session, author, **values)


def approved(session: Session, row: LegalBasis, decider: Account) -> LegalBasis:
    """``row`` approved by ``decider`` at ``NOW``."""
    row.status, row.decided_at, row.decided_by = "approved", NOW, decider.id
    row.decision_reason = "Necessary and proportionate."
    session.flush()
    return row


# --- Gallery: photos with faces, source policies, probe erasure requests ----------------------


def gallery_photo(
    session: Session, *, site: str = "example.org", faces: int = 1, **overrides: Any
) -> GalleryPhoto:
    """An enrolled photo from ``site`` with ``faces`` faces, counted in the gallery size.

    Their embeddings (512-d, as the test packs') are in the database only, not in the index.
    """
    n = next(_serial)
    sha = hashlib.sha256(f"photo {n} {uuid4()}".encode()).hexdigest()
    values: dict[str, Any] = {
        "sha256": sha,
        "media_type": "image/jpeg",
        "width": 640,
        "height": 480,
        "source_url": f"https://www.{site}/photos/{n}.jpg",
        "source_site": site,
        "collected_at": NOW - timedelta(days=10),
        "collection_basis": "public_record",
        "enrolled_at": NOW,
        "enrolled_by": "operator:test",
        "pack_name": "test",
        "pack_version": "1",
        "recognizer_sha256": "0" * 64,
    } | overrides
    row = GalleryPhoto(**values)
    row.faces = [_gallery_face(row, i) for i in range(faces)]
    session.add(row)
    session.flush()
    count_faces(session, row.recognizer_sha256, faces)
    return row


def _gallery_face(photo: GalleryPhoto, i: int) -> GalleryFace:
    return GalleryFace(
        source_site=photo.source_site,
        x1=10.0 * i,
        y1=10.0,
        x2=10.0 * i + 80,
        y2=90.0,
        detection_score=0.9,
        size_px=80.0,
        blur=100.0,
        yaw=0.0,
        pitch=0.0,
        roll=0.0,
        thumbnail_sha256=hashlib.sha256(f"{photo.sha256} {i}".encode()).hexdigest(),
        recognizer_sha256=photo.recognizer_sha256,
        embedding=np.full(512, 512**-0.5, dtype=np.float32).tobytes(),
        created_at=photo.enrolled_at,
    )


def source_policy(session: Session, site: str, **overrides: Any) -> SourcePolicy:
    """A site's policy: blocked by default."""
    values: dict[str, Any] = {
        "site": site,
        "status": "blocked",
        "reason": "cease-and-desist letter",
        "reference": "L-1",
        "updated_at": NOW,
        "updated_by": "operator:test",
        "faces_purged": 0,
    } | overrides
    row = SourcePolicy(**values)
    session.add(row)
    session.flush()
    return row


def erasure_request(
    session: Session, requester: Account, faces: list[GalleryFace], **overrides: Any
) -> ErasureRequest:
    """A pending probe erasure ``requester`` asked for, which matched ``faces`` in that order."""
    values: dict[str, Any] = {
        "request_reference": f"DSR-{next(_serial)}",
        "reason": "the data subject asked",
        "probe_sha256": "1" * 64,
        "threshold": 0.5,
        "status": "pending",
        "requested_by": requester.id,
        "ledger_seq": 0,
        "created_at": NOW,
    } | overrides
    row = ErasureRequest(**values)
    row.faces = [
        ErasureRequestFace(face_id=f.id, rank=rank, score=0.9)
        for rank, f in enumerate(faces, start=1)
    ]
    session.add(row)
    session.flush()
    return row
