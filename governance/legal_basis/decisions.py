"""Decisions on legal bases: approve or reject (four eyes), revoke, ratify an urgent one.

A supervisor of the basis's agency who is not its author approves or rejects a pending basis;
a supervisor revokes a pending or approved one at once; an urgent basis is ratified (granted
with its authorisation's details, or refused: it lapses) before its deadline. Each decision
checks the state the basis has at ``now`` (settled or not). ``settle_then_decide`` and
``settle_then_ratify`` settle the basis first in a unit of work of their own, so a due expiry
or lapse is recorded even when the decision is then refused and rolled back.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any
from uuid import UUID

from governance.core.errors import Conflict, InvalidInput
from governance.core.work import Units, Work
from governance.identity.permissions import Permission
from governance.identity.principals import Principal, actor_of, reason_digest
from governance.legal_basis.deadlines import (
    apply_lapse,
    effective_status,
    record_act,
    settle_basis,
)
from governance.legal_basis.models import LegalBasis
from governance.legal_basis.rules import (
    BasisUnusable,
    authorisation_errors,
    reach,
    second_person,
)
from governance.legal_basis.values import (
    Authorisation,
    AuthorisationKind,
    BasisInfo,
    BasisPolicy,
    BasisStatus,
    LapseCause,
    Ratification,
    RatificationOutcome,
    Verdict,
    basis_info,
)
from ledger.entry import EntryType, format_ts

__all__ = [
    "decide_basis",
    "ratify_basis",
    "settle_then_decide",
    "settle_then_ratify",
]


@dataclass(frozen=True, slots=True)
class _Rule:
    """What a verdict needs and does: who may give it, on what, into which state, on record."""

    permission: Permission
    allowed: tuple[BasisStatus, ...]
    four_eyes: bool
    becomes: BasisStatus
    entry_type: EntryType


_RULES = {
    Verdict.APPROVE: _Rule(
        Permission.LEGAL_BASIS_DECIDE,
        (BasisStatus.PENDING,),
        True,
        BasisStatus.APPROVED,
        EntryType.LEGAL_BASIS_APPROVE,
    ),
    Verdict.REJECT: _Rule(
        Permission.LEGAL_BASIS_DECIDE,
        (BasisStatus.PENDING,),
        True,
        BasisStatus.REJECTED,
        EntryType.LEGAL_BASIS_REJECT,
    ),
    # An unratified urgent basis that is revoked still needs its ratification, or it lapses.
    Verdict.REVOKE: _Rule(
        Permission.LEGAL_BASIS_REVOKE,
        (BasisStatus.PENDING, BasisStatus.APPROVED),
        False,
        BasisStatus.REVOKED,
        EntryType.LEGAL_BASIS_REVOKE,
    ),
}


def _refuse_unless(row: LegalBasis, now: datetime, allowed: tuple[BasisStatus, ...]) -> None:
    state = effective_status(row, now)
    if state in allowed:
        return
    if state is BasisStatus.APPROVED:
        raise Conflict("This legal basis was already approved.", code="already-decided")
    raise BasisUnusable(row.id, state.value)


def decide_basis(
    work: Work, *, principal: Principal, basis_id: UUID, verdict: Verdict, reason: str
) -> BasisInfo:
    """Approve or reject a pending basis of the caller's agency (rejection is final), or revoke
    a pending or approved one at once; who approves or rejects is never the basis's author.

    Raises PermissionDenied (four-eyes-required), NotFound, Conflict (already approved),
    BasisUnusable (rejected, expired, revoked, lapsed).
    """
    rule = _RULES[verdict]
    row = reach(work.session, principal, rule.permission, basis_id, lock=True)
    if rule.four_eyes:
        second_person(work.session, principal, row, "approve or reject")
    _refuse_unless(row, work.now, rule.allowed)
    row.status = rule.becomes.value
    payload: dict[str, Any] = {"reason_sha256": reason_digest(reason)}
    if verdict is Verdict.REVOKE:
        row.revoked_at, row.revoked_by, row.revocation_reason = (
            work.now,
            principal.account_id,
            reason,
        )
        payload["searches_used"] = row.searches_used
        payload["probes_deleted"] = sum(hook(work, row.id) for hook in work.hooks.on_revoke)
    else:
        row.decided_at, row.decided_by, row.decision_reason = (
            work.now,
            principal.account_id,
            reason,
        )
        payload |= {"author": str(row.created_by), "authorisation_kind": row.authorisation_kind}
    work.session.flush()
    record_act(work, row, entry_type=rule.entry_type, actor=actor_of(principal), payload=payload)
    return basis_info(row, work.now)


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


def _refuse_ratification(row: LegalBasis, now: datetime) -> None:
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


def _ratified(row: LegalBasis, decision: Ratification) -> dict[str, Any]:
    """Write ``decision`` on ``row``; the ``legal_basis:ratify`` payload beyond the outcome."""
    if decision.outcome is RatificationOutcome.REFUSED:
        assert decision.reason is not None
        row.ratification_reason = decision.reason
        return {"reason_sha256": reason_digest(decision.reason)}
    assert decision.issued_at is not None and decision.expires_at is not None
    assert decision.authority is not None
    row.authorisation_reference = decision.reference
    row.authorising_authority = decision.authority
    row.authorisation_issued_at = decision.issued_at
    row.expires_at = decision.expires_at
    return {
        "authorisation_reference": decision.reference,
        "authority_sha256": reason_digest(decision.authority),
        "issued_at": format_ts(decision.issued_at),
        "expires_at": format_ts(decision.expires_at),
    }


def ratify_basis(
    work: Work,
    *,
    principal: Principal,
    basis_id: UUID,
    decision: Ratification,
    policy: BasisPolicy,
) -> BasisInfo:
    """Record the ratification of an urgent basis before its deadline.

    Granted, the authorisation's reference, authority and validity replace the urgent ones
    (the status is unchanged). Refused, the basis lapses at once and the lapse hooks delete the
    results of its searches. A supervisor other than the author records it.
    Raises PermissionDenied (four-eyes-required), NotFound, InvalidInput, Conflict (not urgent,
    already ratified), BasisUnusable (rejected, lapsed — also when the deadline has passed).
    """
    row = reach(work.session, principal, Permission.LEGAL_BASIS_RATIFY, basis_id, lock=True)
    second_person(work.session, principal, row, "record the ratification of")
    _refuse_ratification(row, work.now)
    errors = _ratification_errors(row, decision, policy=policy, now=work.now)
    if errors:
        raise InvalidInput("The ratification is invalid; see `errors`.", fields=errors)
    row.ratification_outcome = decision.outcome.value
    row.ratified_at = work.now
    row.ratified_by = principal.account_id
    payload = {"outcome": decision.outcome.value, **_ratified(row, decision)}
    work.session.flush()
    actor = actor_of(principal)
    record_act(work, row, entry_type=EntryType.LEGAL_BASIS_RATIFY, actor=actor, payload=payload)
    if decision.outcome is RatificationOutcome.REFUSED:
        apply_lapse(work, row, cause=LapseCause.REFUSED, actor=actor)
    return basis_info(row, work.now)


# --- settle first, then decide ---------------------------------------------------------------


def settle_then_decide(
    units: Units, *, principal: Principal, basis_id: UUID, verdict: Verdict, reason: str
) -> BasisInfo:
    """``decide_basis`` after settling the basis. Raises what ``decide_basis`` raises."""
    decide = partial(
        decide_basis, principal=principal, basis_id=basis_id, verdict=verdict, reason=reason
    )
    return _settled_then(units, basis_id, decide)


def settle_then_ratify(
    units: Units,
    *,
    principal: Principal,
    basis_id: UUID,
    decision: Ratification,
    policy: BasisPolicy,
) -> BasisInfo:
    """``ratify_basis`` after settling the basis. Raises what ``ratify_basis`` raises."""
    ratify = partial(
        ratify_basis, principal=principal, basis_id=basis_id, decision=decision, policy=policy
    )
    return _settled_then(units, basis_id, ratify)


def _settled_then(units: Units, basis_id: UUID, act: Callable[[Work], BasisInfo]) -> BasisInfo:
    """Settle the basis in a unit of work of its own, so a due expiry or lapse stays recorded
    when ``act`` is refused and rolled back; then ``act`` in another."""
    with units() as work:
        settle_basis(work, basis_id=basis_id)
    with units() as work:
        return act(work)
