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
from enum import StrEnum
from uuid import UUID

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from governance.core import recording
from governance.core.errors import Conflict, NotFound, PermissionDenied
from governance.core.recording import SigningKeys
from governance.identity.accounts import Page, suspend_account
from governance.identity.agencies import suspend_agency
from governance.identity.credentials import revoke_credential
from governance.identity.models import Account, Agency, Credential, Proposal
from governance.identity.permissions import Permission
from governance.identity.persons import same_person
from governance.identity.principals import Principal, actor_of, reason_digest, require_scope
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


class ProposedAct(StrEnum):
    """The acts that need two administrators (besides creating an oversight account)."""

    ACCOUNT_SUSPEND = "account:suspend"
    CREDENTIAL_REVOKE = "credential:revoke"
    AGENCY_SUSPEND = "agency:suspend"


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
    return ProposalInfo(
        id=row.id,
        action=ProposedAct(row.action),
        target_id=row.target_id,
        status=row.status,
        reason=row.reason,
        proposed_by=row.proposed_by,
        proposed_at=row.proposed_at,
        decided_by=row.decided_by,
        decided_at=row.decided_at,
        decision_reason=row.decision_reason,
    )


def propose(
    session: Session,
    *,
    actor: Principal,
    action: ProposedAct,
    target_id: UUID,
    reason: str,
    keys: SigningKeys,
    now: datetime,
) -> ProposalInfo:
    """Propose an act for a second administrator to confirm; record ``proposal:create``.

    Raises PermissionDenied, NotFound (no such target), Conflict (the same act on the same
    target is already pending).
    """
    require_scope(actor, Permission.PROPOSAL_DECIDE)
    if session.get(_TARGETS[action], target_id) is None:
        raise NotFound(f"No such {action.value.partition(':')[0]}.")
    row = Proposal(
        action=action.value,
        target_id=target_id,
        status="pending",
        reason=reason,
        proposed_by=actor.account_id,
        proposed_at=now,
    )
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError as exc:  # uq_proposals_pending
        raise Conflict(
            "The same act on the same target is already proposed; confirm or reject it.",
            code="duplicate-proposal",
        ) from exc
    recording.record(
        session,
        keys=keys,
        entry_type=EntryType.PROPOSAL_CREATE,
        actor=actor_of(actor),
        payload={
            "proposal": str(row.id),
            "action": action.value,
            "target": str(target_id),
            "reason_sha256": reason_digest(reason),
        },
        now=now,
    )
    return _info(row)


def _pending(session: Session, actor: Principal, proposal_id: UUID) -> Proposal:
    require_scope(actor, Permission.PROPOSAL_DECIDE)
    row = session.get(Proposal, proposal_id, with_for_update=True)
    if row is None:
        raise NotFound("No such proposal.")
    if row.status != "pending":
        raise Conflict(f"This proposal was already {row.status}.", code="already-decided")
    if same_person(session, row.proposed_by, actor.account_id):
        raise PermissionDenied(
            "An administrator other than the proposer must decide this proposal (four eyes).",
            code="four-eyes-required",
        )
    return row


def confirm_proposal(
    session: Session,
    *,
    actor: Principal,
    proposal_id: UUID,
    reason: str,
    keys: SigningKeys,
    now: datetime,
) -> ProposalInfo:
    """Confirm a pending proposal of another administrator and carry the act out; its entry
    (``account:suspend``, ``credential:revoke``, ``agency:suspend``) names the proposal.

    Raises PermissionDenied (four-eyes-required), NotFound, Conflict (already decided, or the
    act itself is refused: already suspended, already revoked, ...).
    """
    row = _pending(session, actor, proposal_id)
    row.status = "confirmed"
    row.decided_by = actor.account_id
    row.decided_at = now
    row.decision_reason = reason
    act = ProposedAct(row.action)
    both = f"{row.reason}\n-- confirmed: {reason}"
    if act is ProposedAct.ACCOUNT_SUSPEND:
        suspend_account(
            session,
            actor=actor,
            account_id=row.target_id,
            reason=both,
            keys=keys,
            now=now,
            proposal=row.id,
        )
    elif act is ProposedAct.CREDENTIAL_REVOKE:
        revoke_credential(
            session, actor=actor, credential_id=row.target_id, keys=keys, now=now, proposal=row.id
        )
    else:
        suspend_agency(
            session,
            actor=actor,
            agency_id=row.target_id,
            reason=both,
            keys=keys,
            now=now,
            proposal=row.id,
        )
    return _info(row)


def reject_proposal(
    session: Session,
    *,
    actor: Principal,
    proposal_id: UUID,
    reason: str,
    keys: SigningKeys,
    now: datetime,
) -> ProposalInfo:
    """Reject a pending proposal of another administrator (final); record ``proposal:reject``.

    Raises PermissionDenied (four-eyes-required), NotFound, Conflict (already decided).
    """
    row = _pending(session, actor, proposal_id)
    row.status = "rejected"
    row.decided_by = actor.account_id
    row.decided_at = now
    row.decision_reason = reason
    recording.record(
        session,
        keys=keys,
        entry_type=EntryType.PROPOSAL_REJECT,
        actor=actor_of(actor),
        payload={
            "proposal": str(row.id),
            "action": row.action,
            "target": str(row.target_id),
            "proposed_by": str(row.proposed_by),
            "reason_sha256": reason_digest(reason),
        },
        now=now,
    )
    return _info(row)


def get_proposal(session: Session, *, actor: Principal, proposal_id: UUID) -> ProposalInfo:
    """One proposal. Raises PermissionDenied, NotFound."""
    require_scope(actor, Permission.PROPOSAL_READ)
    row = session.get(Proposal, proposal_id)
    if row is None:
        raise NotFound("No such proposal.")
    return _info(row)


def list_proposals(
    session: Session,
    *,
    actor: Principal,
    limit: int,
    offset: int,
    status: str | None = None,
) -> Page[ProposalInfo]:
    """Proposals, oldest first, optionally by status. Raises PermissionDenied."""
    require_scope(actor, Permission.PROPOSAL_READ)
    query = select(Proposal)
    if status is not None:
        query = query.where(Proposal.status == status)
    total = int(session.scalar(select(func.count()).select_from(query.subquery())) or 0)
    rows = session.scalars(
        query.order_by(Proposal.proposed_at, Proposal.id).limit(limit).offset(offset)
    )
    return Page([_info(r) for r in rows], total, limit, offset)
