"""Acts that would silence oversight take two administrators: one proposes, another confirms.

Suspending an agency, suspending an oversight account and revoking an oversight account's
credential are never done by one administrator (creating an oversight account goes through an
account request for the same reason). One administrator proposes the act with a reason
(``proposal:create``); it stays pending until a different person confirms it, which carries the
act out and records it naming the proposal, or rejects it (``proposal:reject``). The database
refuses a decider who is the proposer's account; the service compares persons.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Unpack
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from governance.core.errors import Conflict, NotFound, PermissionDenied
from governance.core.listing import Page, Window, filtered_by, paginate
from governance.core.orm import value_of
from governance.core.work import Work
from governance.identity import standing
from governance.identity.accounts import ACCOUNTS
from governance.identity.agencies import AGENCIES
from governance.identity.credentials import revoke_credential
from governance.identity.models import Account, Agency, Credential, Proposal
from governance.identity.permissions import Permission
from governance.identity.persons import same_person
from governance.identity.principals import Principal, actor_of, reason_digest, require_scope
from governance.identity.standing import Standings
from governance.identity.vocabulary import ProposalStatus, ProposedAct
from ledger.entry import EntryType

__all__ = [
    "ProposalInfo",
    "ProposedAct",
    "confirm_proposal",
    "get_proposal",
    "list_proposals",
    "propose",
    "reject_proposal",
]

_TARGETS: dict[ProposedAct, type[Account] | type[Credential] | type[Agency]] = {
    ProposedAct.ACCOUNT_SUSPEND: Account,
    ProposedAct.CREDENTIAL_REVOKE: Credential,
    ProposedAct.AGENCY_SUSPEND: Agency,
}


@dataclass(frozen=True, slots=True)
class ProposalInfo:
    """A proposal as the API shows it."""

    id: UUID
    action: ProposedAct
    target_id: UUID
    status: str
    reason: str
    proposed_by: UUID
    proposed_at: datetime
    decided_by: UUID | None
    decided_at: datetime | None
    decision_reason: str | None


def _info(row: Proposal) -> ProposalInfo:
    return value_of(ProposalInfo, row, action=ProposedAct(row.action))


def propose(
    work: Work, *, principal: Principal, action: ProposedAct, target_id: UUID, reason: str
) -> ProposalInfo:
    """Propose an act for a second administrator to confirm; record ``proposal:create``.

    Raises PermissionDenied, NotFound (no such target), Conflict (the same act on the same
    target is already pending).
    """
    require_scope(principal, Permission.PROPOSAL_DECIDE)
    if work.session.get(_TARGETS[action], target_id) is None:
        raise NotFound(f"No such {action.value.partition(':')[0]}.")
    row = Proposal(
        action=action.value,
        target_id=target_id,
        status=ProposalStatus.PENDING.value,
        reason=reason,
        proposed_by=principal.account_id,
        proposed_at=work.now,
    )
    try:
        with work.session.begin_nested():
            work.session.add(row)
    except IntegrityError as exc:  # uq_proposals_pending
        raise Conflict(
            "The same act on the same target is already proposed; confirm or reject it.",
            code="duplicate-proposal",
        ) from exc
    _record(work, EntryType.PROPOSAL_CREATE, row, principal, reason, {})
    return _info(row)


def _record(
    work: Work,
    entry_type: EntryType,
    row: Proposal,
    principal: Principal,
    reason: str,
    extra: dict[str, str],
) -> None:
    """Record a proposal's creation or rejection: the proposal, its act and target, what else
    ``extra`` says, and the digest of the reason given for it."""
    work.record(
        entry_type,
        actor=actor_of(principal),
        payload={
            "proposal": str(row.id),
            "action": row.action,
            "target": str(row.target_id),
            **extra,
            "reason_sha256": reason_digest(reason),
        },
    )


def _decided(
    work: Work, principal: Principal, proposal_id: UUID, status: ProposalStatus, reason: str
) -> Proposal:
    """Decide a pending proposal of another person. Raises PermissionDenied, NotFound,
    Conflict.
    """
    require_scope(principal, Permission.PROPOSAL_DECIDE)
    row = work.session.get(Proposal, proposal_id, with_for_update=True)
    if row is None:
        raise NotFound("No such proposal.")
    if row.status != ProposalStatus.PENDING:
        raise Conflict(f"This proposal was already {row.status}.", code="already-decided")
    if same_person(work.session, row.proposed_by, principal.account_id):
        raise PermissionDenied(
            "An administrator other than the proposer must decide this proposal (four eyes).",
            code="four-eyes-required",
        )
    row.decide(status, by=principal.account_id, reason=reason, at=work.now)
    return row


def confirm_proposal(
    work: Work, proposal_id: UUID, *, principal: Principal, reason: str
) -> ProposalInfo:
    """Confirm a pending proposal of another administrator and carry the act out; its entry
    (``account:suspend``, ``credential:revoke``, ``agency:suspend``) names the proposal.

    Raises PermissionDenied (four-eyes-required), NotFound, Conflict (already decided, or the
    act itself is refused: already suspended, already revoked, ...).
    """
    row = _decided(work, principal, proposal_id, ProposalStatus.CONFIRMED, reason)
    act = ProposedAct(row.action)
    both = f"{row.reason}\n-- confirmed: {reason}"
    if act is ProposedAct.CREDENTIAL_REVOKE:
        revoke_credential(work, principal=principal, credential_id=row.target_id, proposal=row.id)
    else:
        kind: Standings[Any, Any] = ACCOUNTS if act is ProposedAct.ACCOUNT_SUSPEND else AGENCIES
        standing.suspend(
            work, kind, principal=principal, target_id=row.target_id, reason=both, proposal=row.id
        )
    return _info(row)


def reject_proposal(
    work: Work, proposal_id: UUID, *, principal: Principal, reason: str
) -> ProposalInfo:
    """Reject a pending proposal of another administrator (final); record ``proposal:reject``.

    Raises PermissionDenied (four-eyes-required), NotFound, Conflict (already decided).
    """
    row = _decided(work, principal, proposal_id, ProposalStatus.REJECTED, reason)
    extra = {"proposed_by": str(row.proposed_by)}
    _record(work, EntryType.PROPOSAL_REJECT, row, principal, reason, extra)
    return _info(row)


def get_proposal(work: Work, *, principal: Principal, proposal_id: UUID) -> ProposalInfo:
    """One proposal. Raises PermissionDenied, NotFound."""
    require_scope(principal, Permission.PROPOSAL_READ)
    row = work.session.get(Proposal, proposal_id)
    if row is None:
        raise NotFound("No such proposal.")
    return _info(row)


def list_proposals(
    work: Work,
    *,
    principal: Principal,
    status: str | None = None,
    **window: Unpack[Window],
) -> Page[ProposalInfo]:
    """Proposals, oldest first, optionally by status. Raises PermissionDenied."""
    require_scope(principal, Permission.PROPOSAL_READ)
    query = filtered_by(select(Proposal), Proposal.status, status)
    query = query.order_by(Proposal.proposed_at, Proposal.id)
    return paginate(work.session, query, _info, **window)
