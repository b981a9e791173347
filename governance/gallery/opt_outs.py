"""Platform opt-outs: blocking a site and purging every face enrolled from it.

Blocking is two units of work on purpose. The policy commits first, so from that moment every
enrolment from the site is refused and every search filters the site out; the purge then removes
the site's photos in batches, each batch its own transaction, with progress and a ledger entry.
The vectors and files of a batch's photos are pending effects of its transaction: a purge killed
at any point leaves none of them behind once it runs again or the housekeeping sweep replays them.
A purge may stop at a time budget and be continued later (``purge_site``), so a large site need
not hold one request open.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from governance.core.effects import replay
from governance.core.errors import InvalidInput, blank_fields
from governance.core.work import Units, Work
from governance.gallery.effects import effect_handlers
from governance.gallery.models import (
    GalleryFace,
    GalleryPhoto,
    PolicyStatus,
    SourcePolicy,
    acted_by,
    value_of,
)
from governance.gallery.photos import FaceEngines, remove_photos
from governance.gallery.sites import normalize_site, upsert_policy
from ledger.entry import Actor, EntryType

__all__ = [
    "PolicyInfo",
    "PurgeProgress",
    "block_site",
    "get_policy",
    "list_policies",
    "purge_site",
    "purge_site_batch",
    "set_source_policy",
]


@dataclass(frozen=True, slots=True)
class PolicyInfo:
    site: str
    status: str
    reason: str
    reference: str
    updated_at: datetime
    faces_purged: int
    faces_remaining: int


@dataclass(frozen=True, slots=True)
class PurgeProgress:
    """How far the purge of a blocked site has gone."""

    site: str
    purged: int
    """Faces removed so far."""
    total: int
    """Faces enrolled from the site when the block took effect."""


def _info(session: Session, policy: SourcePolicy) -> PolicyInfo:
    return value_of(PolicyInfo, policy, faces_remaining=_site_face_count(session, policy.site))


def _site_face_count(session: Session, site: str) -> int:
    """Faces currently enrolled from ``site``."""
    return int(
        session.scalar(
            select(func.count()).select_from(GalleryFace).where(GalleryFace.source_site == site)
        )
        or 0
    )


def set_source_policy(
    work: Work, *, site: str, status: str, reason: str, reference: str, actor: Actor
) -> PolicyInfo:
    """Record a site's policy (``blocked`` or ``allowed``) and append ``source_policy:set``.

    Blocking this way leaves the site's faces in place: ``block_site`` also purges them.
    Raises InvalidInput (site, status, empty reason or reference).
    """
    normalized = normalize_site(site)
    errors: dict[str, list[str]] = {}
    if status not in tuple(PolicyStatus):
        errors["status"] = [f"Must be one of: {', '.join(PolicyStatus)}."]
    errors |= blank_fields(
        reason=(reason, "A reason is required."),
        reference=(reference, "A reference (e.g. the letter's date and sender) is required."),
    )
    if errors:
        raise InvalidInput("the source policy is invalid", fields=errors)
    policy = upsert_policy(
        work.session,
        site=normalized,
        status=status,
        reason=reason.strip(),
        reference=reference.strip(),
        updated_by=acted_by(actor),
        now=work.now,
    )
    work.record(
        EntryType.SOURCE_POLICY_SET,
        actor=actor,
        payload={"site": normalized, "status": status, "reference": policy.reference},
    )
    return _info(work.session, policy)


def block_site(
    units: Units,
    engines: Callable[[], FaceEngines],
    *,
    site: str,
    reason: str,
    reference: str,
    actor: Actor,
    progress: Callable[[PurgeProgress], object] = lambda _done: None,
    batch_size: int = 200,
    budget_seconds: float | None = None,
) -> PolicyInfo:
    """Block a site, then purge the faces enrolled from it; returns the policy after the purge.

    The block commits first, in its own unit of work: from then on enrolment from the site is
    refused and searches filter it out. The purge then removes its photos in batches, each its
    own unit of work with its own ``source:purge`` entry, so an interrupted purge keeps what it
    did and the block stands. ``engines`` is asked for the face engines only once the block has
    committed, so a block stands even while the models or the index cannot be loaded (the purge
    then fails, and running the block again resumes it, first applying what the interrupted run
    left pending outside the database: vectors and files of photos it removed). ``progress``
    hears once when the block has taken effect and after every batch. With ``budget_seconds``,
    the purge stops after the first batch that ends past the budget (the policy's
    ``faces_remaining`` then says what is left; ``purge_site`` continues it); without, it runs
    to the end. Raises InvalidInput (site, empty reason or reference), and the ledger's and
    index's errors (PackError, ModelError, IndexUnavailable).
    """
    started = time.monotonic()
    with units() as work:
        policy = set_source_policy(
            work,
            site=site,
            status=PolicyStatus.BLOCKED.value,
            reason=reason,
            reference=reference,
            actor=actor,
        )
    progress(PurgeProgress(site=policy.site, purged=0, total=policy.faces_remaining))
    deadline = None if budget_seconds is None else started + budget_seconds
    return _purge(
        units,
        engines(),
        site=policy.site,
        actor=actor,
        batch_size=batch_size,
        deadline=deadline,
        progress=progress,
        total=policy.faces_remaining,
    )


def purge_site(
    units: Units,
    engines: Callable[[], FaceEngines],
    *,
    site: str,
    actor: Actor,
    budget_seconds: float | None = None,
    batch_size: int = 200,
    progress: Callable[[PurgeProgress], object] = lambda _done: None,
) -> PolicyInfo:
    """Continue the purge of a blocked site; returns its policy when the purge stops.

    Each batch is its own unit of work with its own ``source:purge`` entry, after what an
    interrupted run left pending outside the database has been applied. At least one batch
    runs; with ``budget_seconds`` (measured on the monotonic clock, not the units' ``now``),
    no further batch starts once the budget is spent. ``progress`` hears after every batch, of
    the faces removed by this call out of those enrolled from the site when it began. Raises
    InvalidInput (not a site, or the site is not blocked), and the ledger's and index's errors.
    """
    started = time.monotonic()
    normalized = normalize_site(site)
    with units() as work:
        policy = work.session.get(SourcePolicy, normalized)
        if policy is None or policy.status != PolicyStatus.BLOCKED:
            raise InvalidInput(
                f"{normalized} is not blocked, so nothing is purged",
                fields={"site": ["Block the site first: only a blocked site's faces are purged."]},
            )
        total = _site_face_count(work.session, normalized)
    deadline = None if budget_seconds is None else started + budget_seconds
    return _purge(
        units,
        engines(),
        site=normalized,
        actor=actor,
        batch_size=batch_size,
        deadline=deadline,
        progress=progress,
        total=total,
    )


def _purge(
    units: Units,
    loaded: FaceEngines,
    *,
    site: str,
    actor: Actor,
    batch_size: int,
    deadline: float | None,
    progress: Callable[[PurgeProgress], object],
    total: int,
) -> PolicyInfo:
    """Purge batches of ``site`` until none is left or ``deadline`` (monotonic) has passed."""
    # What an earlier, interrupted run committed but did not finish outside the database.
    replay(units.sessions, lambda: effect_handlers(loaded.index, loaded.blobs))
    done = PurgeProgress(site=site, purged=0, total=total)
    while True:
        with units() as work:
            photos, faces = purge_site_batch(
                work, loaded, site=site, actor=actor, batch_size=batch_size
            )
        if photos == 0:
            break
        done = PurgeProgress(site=site, purged=done.purged + faces, total=total)
        progress(done)
        if deadline is not None and time.monotonic() >= deadline:
            break
    with units() as work:
        return _info(work.session, _policy_row(work.session, site))


def purge_site_batch(
    work: Work, engines: FaceEngines, *, site: str, actor: Actor, batch_size: int = 200
) -> tuple[int, int]:
    """Remove up to ``batch_size`` photos of a blocked site; returns (photos, faces) removed.

    Call it in successive units of work until it returns (0, 0). Each non-empty batch appends a
    ``source:purge`` entry with its counts. Raises InvalidInput when the site is not blocked.
    """
    policy = work.session.get(SourcePolicy, site, with_for_update=True)
    if policy is None or policy.status != PolicyStatus.BLOCKED:
        raise InvalidInput(f"{site} is not blocked", fields={"site": ["Block the site first."]})
    photos = list(
        work.session.scalars(
            select(GalleryPhoto)
            .where(GalleryPhoto.source_site == site)
            .options(selectinload(GalleryPhoto.faces))
            .limit(batch_size)
        )
    )
    if not photos:
        return 0, 0
    removed_photos, removed_faces = remove_photos(work.session, engines=engines, photos=photos)
    policy.faces_purged += removed_faces
    work.record(
        EntryType.SOURCE_PURGE,
        actor=actor,
        payload={"site": site, "photos": removed_photos, "faces": removed_faces},
    )
    return removed_photos, removed_faces


def _policy_row(session: Session, site: str) -> SourcePolicy:
    policy = session.get(SourcePolicy, site)
    assert policy is not None, "a blocked site keeps its policy"
    return policy


def get_policy(work: Work, site: str) -> PolicyInfo | None:
    """The policy of the site ``site`` belongs to, if it has one. Raises InvalidInput (site)."""
    policy = work.session.get(SourcePolicy, normalize_site(site))
    return None if policy is None else _info(work.session, policy)


def list_policies(work: Work) -> list[PolicyInfo]:
    """Every site's policy, by site."""
    rows = work.session.scalars(select(SourcePolicy).order_by(SourcePolicy.site))
    return [_info(work.session, p) for p in rows]
