"""Legal bases: recorded by an investigator, read by its agency and oversight, used under a quota.

A basis is ``pending`` until a supervisor of its agency who is not its author approves or
rejects it (``governance.legal_basis.decisions``). Approved, it can be used
(``consume_search``) until it expires, is revoked, or has no searches left. An ``urgent`` basis
may be used once approved but must be ratified before its deadline, or it LAPSES
(``governance.legal_basis.deadlines``). Every refusal names the state that caused it.

Reads settle a basis first, recording a due expiry or lapse. A use checks the state the basis
has at ``now`` (settled or not); the search settles it in a unit of work of its own first, so a
transition is recorded even when the search is refused and rolled back.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Unpack
from uuid import UUID

from sqlalchemy import BindParameter, bindparam, select, update

from governance.core.errors import InvalidInput, PermissionDenied
from governance.core.listing import Page, Window, filtered_by, paginate
from governance.core.orm import table_of
from governance.core.work import Work
from governance.identity.permissions import Permission, Scope
from governance.identity.principals import Principal, actor_of, reason_digest, require_scope
from governance.legal_basis.deadlines import (
    Standing,
    effective_status,
    record_act,
    settle_row,
    sweep_batch,
)
from governance.legal_basis.models import LegalBasis
from governance.legal_basis.rules import (
    BasisUnusable,
    authorisation_errors,
    reach,
    reach_standing,
)
from governance.legal_basis.values import (
    JUSTIFICATION_MIN_CHARS,
    AuthorisationKind,
    BasisDraft,
    BasisInfo,
    BasisPolicy,
    BasisStatus,
    BasisUse,
    RatificationOutcome,
    basis_info,
)
from ledger.entry import EntryType, format_ts

__all__ = [
    "check_usable",
    "consume_search",
    "create_basis",
    "get_basis",
    "list_bases",
]

_BASES = table_of(LegalBasis)
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
    work: Work, *, principal: Principal, draft: BasisDraft, policy: BasisPolicy
) -> BasisInfo:
    """Record a pending legal basis for the caller's agency and ``legal_basis:create``.

    Raises PermissionDenied, InvalidInput (per field: category not allowed, dates inconsistent
    or beyond the policy, quota above the cap, justification too short).
    """
    require_scope(principal, Permission.LEGAL_BASIS_CREATE)
    if principal.agency_id is None:
        raise PermissionDenied("Only agency accounts record legal bases.", code="forbidden")
    errors = _draft_errors(draft, policy=policy, work=work)
    if errors:
        raise InvalidInput("The legal basis is invalid; see `errors`.", fields=errors)
    auth = draft.authorisation
    urgent = auth.kind is AuthorisationKind.URGENT
    row = LegalBasis(
        agency_id=principal.agency_id,
        created_by=principal.account_id,
        created_at=work.now,
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
        ratification_deadline=work.now + policy.ratification_window if urgent else None,
    )
    work.session.add(row)
    work.session.flush()
    record_act(
        work,
        row,
        entry_type=EntryType.LEGAL_BASIS_CREATE,
        actor=actor_of(principal),
        payload=_created(row),
    )
    return basis_info(row, work.now)


def _draft_errors(draft: BasisDraft, *, policy: BasisPolicy, work: Work) -> dict[str, list[str]]:
    errors = authorisation_errors(
        draft.authorisation, policy=policy, now=work.now, prefix="authorisation."
    )
    if draft.offence_category not in policy.offences:
        allowed = ", ".join(c.slug for c in policy.offences)
        errors["offence_category"] = [f"Must be one of: {allowed}."]
    if not 1 <= draft.max_searches <= policy.max_searches:
        errors["max_searches"] = [f"Must be between 1 and {policy.max_searches}."]
    if len(draft.justification) < JUSTIFICATION_MIN_CHARS:
        errors["justification"] = [f"Must be at least {JUSTIFICATION_MIN_CHARS} characters."]
    return errors


def _created(row: LegalBasis) -> dict[str, Any]:
    """The ``legal_basis:create`` payload: the free texts as digests only."""
    authority = row.authorising_authority
    deadline = row.ratification_deadline
    return {
        "case_number": row.case_number,
        "offence_category": row.offence_category,
        "legal_provision_sha256": reason_digest(row.legal_provision),
        "authorisation_kind": row.authorisation_kind,
        "authorisation_reference": row.authorisation_reference,
        "authority_sha256": reason_digest(authority) if authority else None,
        "issued_at": format_ts(row.authorisation_issued_at),
        "expires_at": format_ts(row.expires_at),
        "ratification_deadline": format_ts(deadline) if deadline else None,
        "max_searches": row.max_searches,
        "justification_sha256": reason_digest(row.justification),
    }


def get_basis(work: Work, *, principal: Principal, basis_id: UUID) -> BasisInfo:
    """One legal basis, settled first (a due expiry or lapse is applied and recorded).

    Raises PermissionDenied, NotFound (also for another agency's basis).
    """
    row = reach(work.session, principal, Permission.LEGAL_BASIS_READ, basis_id)
    settle_row(work, row)
    return basis_info(row, work.now)


def list_bases(
    work: Work,
    *,
    principal: Principal,
    status: BasisStatus | None = None,
    **window: Unpack[Window],
) -> Page[BasisInfo]:
    """Legal bases within the caller's reach, newest first, optionally by status; the due
    ones are settled first so the status filter is true at ``now``.

    Raises PermissionDenied.
    """
    scope = require_scope(principal, Permission.LEGAL_BASIS_READ)
    agency = None if scope is Scope.ANY else principal.agency_id
    if scope is not Scope.ANY and agency is None:
        return Page([], 0, **window)
    sweep_batch(work, agency_id=agency)
    query = filtered_by(select(LegalBasis), LegalBasis.agency_id, agency)
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
    query = query.order_by(LegalBasis.created_at.desc(), LegalBasis.id)
    return paginate(work.session, query, lambda row: basis_info(row, work.now), **window)


# --- use -------------------------------------------------------------------------------------


def _refuse_unusable(row: LegalBasis | Standing, now: datetime) -> None:
    state = effective_status(row, now)
    if state is not BasisStatus.APPROVED:
        raise BasisUnusable(row.id, state.value)
    if row.searches_used >= row.max_searches:
        raise BasisUnusable(row.id, "exhausted")


def check_usable(work: Work, *, principal: Principal, basis_id: UUID) -> None:
    """Refuse early, before any biometric work, a basis the caller could not search under now.

    Spends nothing: ``consume_search`` still decides, atomically, in the search's unit of work.
    Raises what ``consume_search`` raises.
    """
    standing = reach_standing(work.session, principal, Permission.LEGAL_BASIS_USE, basis_id)
    _refuse_unusable(standing, work.now)


def consume_search(work: Work, *, principal: Principal, basis_id: UUID) -> BasisUse:
    """Spend one search of an approved basis of the caller's agency, atomically.

    One conditional UPDATE ... RETURNING (status approved, unexpired, ratified or within its
    deadline, searches left) increments the count, so concurrent searches never overspend the
    quota on SQLite or PostgreSQL; only a refusal reads the basis again, to say why. Call it
    inside the search's unit of work; settle the basis first in a unit of work of its own
    (``governance.legal_basis.deadlines.settle_basis``) so a due transition is recorded even
    when the search is refused.
    Raises PermissionDenied, NotFound (legal-basis-not-found, also for another agency's basis),
    BasisUnusable (pending, rejected, expired, revoked, lapsed, exhausted).
    """
    require_scope(principal, Permission.LEGAL_BASIS_USE)
    session = work.session
    spent = session.execute(
        _SPEND,
        {"basis_id": basis_id, "caller_agency_id": principal.agency_id, "now": work.now},
    ).first()
    if spent is None:
        # Another agency's, unusable, or a concurrent search took the last one: say which.
        row = reach(session, principal, Permission.LEGAL_BASIS_USE, basis_id)
        session.refresh(row)
        _refuse_unusable(row, work.now)
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
