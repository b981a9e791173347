"""Platform opt-outs: blocking a site and purging every face enrolled from it.

Blocking is two units of work on purpose. The policy commits first, so from that moment every
enrolment from the site is refused and every search filters the site out; the purge then removes
the site's photos in batches, each batch its own transaction, with progress and a ledger entry.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from governance.core.errors import InvalidInput
from governance.core.recording import SigningKeys, record
from governance.gallery.models import GalleryFace, GalleryPhoto, SourcePolicy
from governance.gallery.photos import Gallery, remove_photos
from governance.gallery.sites import normalize_site, upsert_policy
from ledger.entry import Actor, EntryType

__all__ = [
    "PolicyInfo",
    "list_policies",
    "purge_site_batch",
    "set_source_policy",
    "site_face_count",
]

Progress = Callable[[int, int], None]
STATUSES = ("blocked", "allowed")


@dataclass(frozen=True, slots=True)
class PolicyInfo:
    site: str
    status: str
    reason: str
    reference: str
    updated_at: datetime
    faces_purged: int
    faces_remaining: int


def _info(session: Session, policy: SourcePolicy) -> PolicyInfo:
    return PolicyInfo(
        site=policy.site,
        status=policy.status,
        reason=policy.reason,
        reference=policy.reference,
        updated_at=policy.updated_at,
        faces_purged=policy.faces_purged,
        faces_remaining=site_face_count(session, policy.site),
    )


def site_face_count(session: Session, site: str) -> int:
    """Faces currently enrolled from ``site``."""
    return int(
        session.scalar(
            select(func.count()).select_from(GalleryFace).where(GalleryFace.source_site == site)
        )
        or 0
    )


def set_source_policy(
    session: Session,
    *,
    keys: SigningKeys,
    site: str,
    status: str,
    reason: str,
    reference: str,
    actor: Actor,
    now: datetime,
) -> PolicyInfo:
    """Record a site's policy (``blocked`` or ``allowed``) and append ``source_policy:set``.

    Raises InvalidInput (site, status, empty reason or reference).
    """
    normalized = normalize_site(site)
    errors: dict[str, list[str]] = {}
    if status not in STATUSES:
        errors["status"] = [f"Must be one of: {', '.join(STATUSES)}."]
    if not reason.strip():
        errors["reason"] = ["A reason is required."]
    if not reference.strip():
        errors["reference"] = ["A reference (e.g. the letter's date and sender) is required."]
    if errors:
        raise InvalidInput("the source policy is invalid", fields=errors)
    policy = upsert_policy(
        session,
        site=normalized,
        status=status,
        reason=reason.strip(),
        reference=reference.strip(),
        actor_ref=f"{actor.kind}:{actor.id}",
        now=now,
    )
    record(
        session,
        keys=keys,
        entry_type=EntryType.SOURCE_POLICY_SET,
        actor=actor,
        payload={"site": normalized, "status": status, "reference": policy.reference},
        now=now,
    )
    return _info(session, policy)


def purge_site_batch(
    session: Session,
    *,
    gallery: Gallery,
    site: str,
    actor: Actor,
    now: datetime,
    batch_size: int = 200,
) -> tuple[int, int]:
    """Remove up to ``batch_size`` photos of a blocked site; returns (photos, faces) removed.

    Call it in successive units of work until it returns (0, 0). Each non-empty batch appends a
    ``source:purge`` entry with its counts. Raises InvalidInput when the site is not blocked.
    """
    policy = session.get(SourcePolicy, site, with_for_update=True)
    if policy is None or policy.status != "blocked":
        raise InvalidInput(f"{site} is not blocked", fields={"site": ["Block the site first."]})
    photos = list(
        session.scalars(
            select(GalleryPhoto)
            .where(GalleryPhoto.source_site == site)
            .options(selectinload(GalleryPhoto.faces))
            .limit(batch_size)
        )
    )
    if not photos:
        return 0, 0
    removed_photos, removed_faces = remove_photos(session, gallery=gallery, photos=photos)
    policy.faces_purged += removed_faces
    record(
        session,
        keys=gallery.keys,
        entry_type=EntryType.SOURCE_PURGE,
        actor=actor,
        payload={"site": site, "photos": removed_photos, "faces": removed_faces},
        now=now,
    )
    return removed_photos, removed_faces


def get_policy(session: Session, site: str) -> PolicyInfo | None:
    policy = session.get(SourcePolicy, normalize_site(site))
    return None if policy is None else _info(session, policy)


def list_policies(session: Session) -> list[PolicyInfo]:
    rows = session.scalars(select(SourcePolicy).order_by(SourcePolicy.site))
    return [_info(session, p) for p in rows]
