"""Legal bases: recorded by an investigator, approved by a second person, used under a quota.

A basis is ``pending`` until a supervisor of its agency who is not its author approves or
rejects it. Approved, it can be used (``consume_search``) until it expires, is revoked, or has
no searches left. An ``urgent`` basis may be used once approved but must be ratified (the
authorisation's reference and authority attached) before its deadline; when the deadline
passes or ratification is refused it LAPSES and the results of its searches are deleted
(``governance.legal_basis.deadlines``). Every refusal names the state that caused it.

Reads settle a basis first, recording a due expiry or lapse. Acts that may be refused check the
state the basis has at ``now`` (settled or not); the API settles in a unit of work of its own
before them, so a transition is recorded even when the act is refused and rolled back.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast
from uuid import UUID

from sqlalchemy import BindParameter, Table, bindparam, func, select, update
from sqlalchemy.orm import Session

from governance.core.errors import Conflict, InvalidInput, PermissionDenied
from governance.core.recording import SigningKeys
from governance.identity.accounts import Page
from governance.identity.permissions import Permission, Scope
from governance.identity.principals import Principal, actor_of, reason_digest, require_scope
from governance.legal_basis.deadlines import (
    LapseHook,
    Standing,
    apply_lapse,
    effective_status,
    record_act,
    settle_basis,
    settle_row,
    sweep,
)
from governance.legal_basis.models import LegalBasis
from governance.legal_basis.rules import (
    BasisUnusable,
    authorisation_errors,
    reach,
    reach_standing,
    second_person,
)
from governance.legal_basis.values import (
    JUSTIFICATION_MIN_CHARS,
    Authorisation,
    AuthorisationKind,
    BasisDraft,
    BasisInfo,
    BasisPolicy,
    BasisStatus,
    BasisUse,
    LapseCause,
    Ratification,
    RatificationOutcome,
    Transition,
    basis_info,
)
from ledger.entry import EntryType, format_ts

__all__ = [
    "JUSTIFICATION_MIN_CHARS",
    "Authorisation",
    "AuthorisationKind",
    "BasisDraft",
    "BasisInfo",
    "BasisPolicy",
    "BasisStatus",
    "BasisUnusable",
    "BasisUse",
    "LapseCause",
    "LapseHook",
    "Ratification",
    "RatificationOutcome",
    "Transition",
    "approve_basis",
    "consume_search",
    "create_basis",
    "get_basis",
    "list_bases",
    "ratify_basis",
    "reject_basis",
    "revoke_basis",
    "settle_basis",
    "sweep",
]

_BASES = cast(Table, LegalBasis.__table__)
_NOW: BindParameter[Any] = bindparam("now")
# Spending a search: one conditional Core UPDATE (the ORM's bulk-update path costs more than
# the statement), built once since every search runs it.
_SPEND = (
    update(_BASES)
    .where(
        _BASES.c.id == bindparam("basis_id"),
        _BASES.c.agency_id == bindparam("caller_agency_id"),
        _BASES.c.status == BasisStatus.APPROVED.value,
        _BASES.c.searches_used < _BASES.c.max_searches,
        _BASES.c.expires_at > _NOW,
        (_BASES.c.ratification_deadline.is_(None))
        | (_BASES.c.ratification_outcome == RatificationOutcome.GRANTED.value)
        | (_BASES.c.ratification_deadline > _NOW),
    )
    .values(searches_used=_BASES.c.searches_used + 1)
    .returning(
        _BASES.c.id,
        _BASES.c.agency_id,
        _BASES.c.case_number,
        _BASES.c.offence_category,
        _BASES.c.authorisation_kind,
        _BASES.c.authorisation_reference,
        _BASES.c.searches_used,
        _BASES.c.max_searches,
    )
)

# --- creation and reads ----------------------------------------------------------------------


def create_basis(
    session: Session,
    *,
    actor: Principal,
    draft: BasisDraft,
    policy: BasisPolicy,
    keys: SigningKeys,
    now: datetime,
) -> BasisInfo:
    """Record a pending legal basis for the caller's agency and ``legal_basis:create``.

    Raises PermissionDenied, InvalidInput (per field: category not allowed, dates inconsistent
    or beyond the policy, quota above the cap, justification too short).
    """
    require_scope(actor, Permission.LEGAL_BASIS_CREATE)
    if actor.agency_id is None:
        raise PermissionDenied("Only agency accounts record legal bases.", code="forbidden")
    errors = authorisation_errors(
        draft.authorisation, policy=policy, now=now, prefix="authorisation."
    )
    if draft.offence_category not in policy.offences:
        allowed = ", ".join(c.slug for c in policy.offences)
        errors["offence_category"] = [f"Must be one of: {allowed}."]
    if not 1 <= draft.max_searches <= policy.max_searches:
        errors["max_searches"] = [f"Must be between 1 and {policy.max_searches}."]
    if len(draft.justification) < JUSTIFICATION_MIN_CHARS:
        errors["justification"] = [f"Must be at least {JUSTIFICATION_MIN_CHARS} characters."]
    if errors:
        raise InvalidInput("The legal basis is invalid; see `errors`.", fields=errors)
    auth = draft.authorisation
    urgent = auth.kind is AuthorisationKind.URGENT
    row = LegalBasis(
        agency_id=actor.agency_id,
        created_by=actor.account_id,
        created_at=now,
        status=BasisStatus.PENDING.value,
        case_number=draft.case_number,
        offence_category=draft.offence_category,
        legal_provision=draft.legal_provision,
        authorisation_kind=auth.kind.value,
        authorisation_reference=auth.reference,
        authorising_authority=auth.authority,
        authorisation_issued_at=auth.issued_at,
        expires_at=auth.expires_at,
        justification=draft.justification,
        max_searches=draft.max_searches,
        searches_used=0,
        ratification_deadline=now + policy.ratification_window if urgent else None,
    )
    session.add(row)
    session.flush()
    record_act(
        session,
        row,
        entry_type=EntryType.LEGAL_BASIS_CREATE,
        actor=actor_of(actor),
        payload={
            "case_number": row.case_number,
            "offence_category": row.offence_category,
            "legal_provision_sha256": reason_digest(row.legal_provision),
            "authorisation_kind": auth.kind.value,
            "authorisation_reference": auth.reference,
            "authority_sha256": reason_digest(auth.authority) if auth.authority else None,
            "issued_at": format_ts(auth.issued_at),
            "expires_at": format_ts(auth.expires_at),
            "ratification_deadline": (
                format_ts(row.ratification_deadline) if row.ratification_deadline else None
            ),
            "max_searches": row.max_searches,
            "justification_sha256": reason_digest(row.justification),
        },
        keys=keys,
        now=now,
    )
    return basis_info(row, now)


def get_basis(
    session: Session,
    *,
    actor: Principal,
    basis_id: UUID,
    hooks: Sequence[LapseHook],
    keys: SigningKeys,
    now: datetime,
) -> BasisInfo:
    """One legal basis, settled first (a due expiry or lapse is applied and recorded).

    Raises PermissionDenied, NotFound (also for another agency's basis).
    """
    row = reach(session, actor, Permission.LEGAL_BASIS_READ, basis_id)
    settle_row(session, row, hooks=hooks, keys=keys, now=now)
    return basis_info(row, now)


def list_bases(
    session: Session,
    *,
    actor: Principal,
    limit: int,
    offset: int,
    hooks: Sequence[LapseHook],
    keys: SigningKeys,
    now: datetime,
    status: BasisStatus | None = None,
) -> Page[BasisInfo]:
    """Legal bases within the caller's reach, newest first, optionally by status; the due
    ones are settled first so the status filter is true at ``now``.

    Raises PermissionDenied.
    """
    scope = require_scope(actor, Permission.LEGAL_BASIS_READ)
    agency = None if scope is Scope.ANY else actor.agency_id
    if scope is not Scope.ANY and agency is None:
        return Page([], 0, limit, offset)
    sweep(session, hooks=hooks, keys=keys, now=now, agency_id=agency)
    query = select(LegalBasis)
    if agency is not None:
        query = query.where(LegalBasis.agency_id == agency)
    if status is BasisStatus.EXHAUSTED:
        query = query.where(
            LegalBasis.status == BasisStatus.APPROVED.value,
            LegalBasis.searches_used >= LegalBasis.max_searches,
        )
    elif status is BasisStatus.APPROVED:
        query = query.where(
            LegalBasis.status == status.value, LegalBasis.searches_used < LegalBasis.max_searches
        )
    elif status is not None:
        query = query.where(LegalBasis.status == status.value)
    total = int(session.scalar(select(func.count()).select_from(query.subquery())) or 0)
    rows = session.scalars(
        query.order_by(LegalBasis.created_at.desc(), LegalBasis.id).limit(limit).offset(offset)
    )
    return Page([basis_info(r, now) for r in rows], total, limit, offset)


# --- decisions -------------------------------------------------------------------------------


def _refuse_unless(row: LegalBasis, now: datetime, *allowed: BasisStatus) -> None:
    state = effective_status(row, now)
    if state in allowed:
        return
    if state is BasisStatus.APPROVED:
        raise Conflict("This legal basis was already approved.", code="already-decided")
    raise BasisUnusable(row.id, state.value)


def _decide(
    session: Session,
    *,
    actor: Principal,
    basis_id: UUID,
    reason: str,
    approve: bool,
    keys: SigningKeys,
    now: datetime,
) -> BasisInfo:
    row = reach(session, actor, Permission.LEGAL_BASIS_DECIDE, basis_id, lock=True)
    second_person(session, actor, row, "approve or reject")
    _refuse_unless(row, now, BasisStatus.PENDING)
    row.status = (BasisStatus.APPROVED if approve else BasisStatus.REJECTED).value
    row.decided_at = now
    row.decided_by = actor.account_id
    row.decision_reason = reason
    session.flush()
    record_act(
        session,
        row,
        entry_type=EntryType.LEGAL_BASIS_APPROVE if approve else EntryType.LEGAL_BASIS_REJECT,
        actor=actor_of(actor),
        payload={
            "author": str(row.created_by),
            "authorisation_kind": row.authorisation_kind,
            "reason_sha256": reason_digest(reason),
        },
        keys=keys,
        now=now,
    )
    return basis_info(row, now)


def approve_basis(
    session: Session,
    *,
    actor: Principal,
    basis_id: UUID,
    reason: str,
    keys: SigningKeys,
    now: datetime,
) -> BasisInfo:
    """Approve a pending basis of the caller's agency; the approver is never its author.

    Raises PermissionDenied (four-eyes-required), NotFound, Conflict (already approved),
    BasisUnusable (rejected, expired, revoked, lapsed).
    """
    return _decide(
        session, actor=actor, basis_id=basis_id, reason=reason, approve=True, keys=keys, now=now
    )


def reject_basis(
    session: Session,
    *,
    actor: Principal,
    basis_id: UUID,
    reason: str,
    keys: SigningKeys,
    now: datetime,
) -> BasisInfo:
    """Reject a pending basis of the caller's agency (final); the rejecter is not its author.

    Raises PermissionDenied (four-eyes-required), NotFound, Conflict (already approved),
    BasisUnusable (rejected, expired, revoked, lapsed).
    """
    return _decide(
        session, actor=actor, basis_id=basis_id, reason=reason, approve=False, keys=keys, now=now
    )


def revoke_basis(
    session: Session,
    *,
    actor: Principal,
    basis_id: UUID,
    reason: str,
    keys: SigningKeys,
    now: datetime,
) -> BasisInfo:
    """Revoke a pending or approved basis at once (an unratified urgent one still needs its
    ratification, or it lapses).

    Raises PermissionDenied, NotFound, BasisUnusable (rejected, expired, revoked, lapsed).
    """
    row = reach(session, actor, Permission.LEGAL_BASIS_REVOKE, basis_id, lock=True)
    _refuse_unless(row, now, BasisStatus.PENDING, BasisStatus.APPROVED)
    row.status = BasisStatus.REVOKED.value
    row.revoked_at = now
    row.revoked_by = actor.account_id
    row.revocation_reason = reason
    session.flush()
    record_act(
        session,
        row,
        entry_type=EntryType.LEGAL_BASIS_REVOKE,
        actor=actor_of(actor),
        payload={"searches_used": row.searches_used, "reason_sha256": reason_digest(reason)},
        keys=keys,
        now=now,
    )
    return basis_info(row, now)


def _ratification_errors(
    row: LegalBasis, decision: Ratification, *, policy: BasisPolicy, now: datetime
) -> dict[str, list[str]]:
    if decision.outcome is RatificationOutcome.REFUSED:
        if not decision.reason:
            return {"reason": ["Required when ratification is refused."]}
        return {}
    errors: dict[str, list[str]] = {}
    for name in ("reference", "authority", "issued_at", "expires_at"):
        if not getattr(decision, name):
            errors[name] = ["Required when ratification is granted."]
    if errors or decision.issued_at is None or decision.expires_at is None:
        return errors
    granted = Authorisation(
        kind=AuthorisationKind.JUDICIAL,
        reference=decision.reference,
        authority=decision.authority,
        issued_at=decision.issued_at,
        expires_at=decision.expires_at,
    )
    return authorisation_errors(granted, policy=policy, now=now, not_before=row.created_at)


def ratify_basis(
    session: Session,
    *,
    actor: Principal,
    basis_id: UUID,
    decision: Ratification,
    policy: BasisPolicy,
    hooks: Sequence[LapseHook],
    keys: SigningKeys,
    now: datetime,
) -> BasisInfo:
    """Record the ratification of an urgent basis before its deadline.

    Granted, the authorisation's reference, authority and validity replace the urgent ones
    (the status is unchanged). Refused, the basis lapses at once and ``hooks`` delete the
    results of its searches. A supervisor other than the author records it.
    Raises PermissionDenied (four-eyes-required), NotFound, InvalidInput, Conflict (not urgent,
    already ratified), BasisUnusable (rejected, lapsed — also when the deadline has passed).
    """
    row = reach(session, actor, Permission.LEGAL_BASIS_RATIFY, basis_id, lock=True)
    second_person(session, actor, row, "record the ratification of")
    if row.authorisation_kind != AuthorisationKind.URGENT.value:
        raise Conflict(
            "Only an urgent legal basis is ratified; this one names its authorisation.",
            code="legal-basis-not-urgent",
        )
    if row.ratification_outcome is not None:
        raise Conflict(
            f"The ratification was already recorded ({row.ratification_outcome}).",
            code="already-ratified",
        )
    state = effective_status(row, now)
    if state in (BasisStatus.REJECTED, BasisStatus.LAPSED):
        raise BasisUnusable(row.id, state.value)
    errors = _ratification_errors(row, decision, policy=policy, now=now)
    if errors:
        raise InvalidInput("The ratification is invalid; see `errors`.", fields=errors)
    row.ratification_outcome = decision.outcome.value
    row.ratified_at = now
    row.ratified_by = actor.account_id
    payload: dict[str, object] = {"outcome": decision.outcome.value}
    if decision.outcome is RatificationOutcome.GRANTED:
        assert decision.issued_at is not None and decision.expires_at is not None
        assert decision.authority is not None
        row.authorisation_reference = decision.reference
        row.authorising_authority = decision.authority
        row.authorisation_issued_at = decision.issued_at
        row.expires_at = decision.expires_at
        payload |= {
            "authorisation_reference": decision.reference,
            "authority_sha256": reason_digest(decision.authority),
            "issued_at": format_ts(decision.issued_at),
            "expires_at": format_ts(decision.expires_at),
        }
    else:
        assert decision.reason is not None
        row.ratification_reason = decision.reason
        payload["reason_sha256"] = reason_digest(decision.reason)
    session.flush()
    record_act(
        session,
        row,
        entry_type=EntryType.LEGAL_BASIS_RATIFY,
        actor=actor_of(actor),
        payload=payload,
        keys=keys,
        now=now,
    )
    if decision.outcome is RatificationOutcome.REFUSED:
        apply_lapse(
            session,
            row,
            cause=LapseCause.REFUSED,
            actor=actor_of(actor),
            hooks=hooks,
            keys=keys,
            now=now,
        )
    return basis_info(row, now)


# --- use -------------------------------------------------------------------------------------


def _refuse_unusable(row: LegalBasis | Standing, now: datetime) -> None:
    state = effective_status(row, now)
    if state is not BasisStatus.APPROVED:
        raise BasisUnusable(row.id, state.value)
    if row.searches_used >= row.max_searches:
        raise BasisUnusable(row.id, "exhausted")


def check_usable(session: Session, *, principal: Principal, basis_id: UUID, now: datetime) -> None:
    """Refuse early, before any biometric work, a basis the caller could not search under now.

    Spends nothing: ``consume_search`` still decides, atomically, in the search's unit of work.
    Raises what ``consume_search`` raises.
    """
    _refuse_unusable(reach_standing(session, principal, Permission.LEGAL_BASIS_USE, basis_id), now)


def consume_search(
    session: Session, *, principal: Principal, basis_id: UUID, now: datetime
) -> BasisUse:
    """Spend one search of an approved basis of the caller's agency, atomically.

    One conditional UPDATE ... RETURNING (status approved, unexpired, ratified or within its
    deadline, searches left) increments the count, so concurrent searches never overspend the
    quota on SQLite or PostgreSQL; only a refusal reads the basis again, to say why. Call it
    inside the search's unit of work; settle the basis first in a unit of work of its own
    (``settle_basis``) so a due transition is recorded even when the search is refused.
    Raises PermissionDenied, NotFound (legal-basis-not-found, also for another agency's basis),
    BasisUnusable (pending, rejected, expired, revoked, lapsed, exhausted).
    """
    require_scope(principal, Permission.LEGAL_BASIS_USE)
    spent = session.execute(
        _SPEND, {"basis_id": basis_id, "caller_agency_id": principal.agency_id, "now": now}
    ).first()
    if spent is None:
        # Another agency's, unusable, or a concurrent search took the last one: say which.
        row = reach(session, principal, Permission.LEGAL_BASIS_USE, basis_id)
        session.refresh(row)
        _refuse_unusable(row, now)
        raise BasisUnusable(row.id, "exhausted")
    return BasisUse(
        basis_id=spent.id,
        agency_id=spent.agency_id,
        case_number=spent.case_number,
        offence_category=spent.offence_category,
        authorisation_kind=AuthorisationKind(spent.authorisation_kind),
        authorisation_reference=spent.authorisation_reference,
        searches_used=spent.searches_used,
        searches_left=spent.max_searches - spent.searches_used,
    )
