"""Requests for more accounts: a supervisor asks, a platform admin decides, the person claims.

Staff accounts have no agency and no supervisor. A platform admin creates a curator directly,
already approved; an oversight account would let one admin hold the key of the body meant to
watch them, so it is proposed by one admin and created only when a different person approves.
On approval the one-time claim secret is mailed to the person named on the request, never
returned to the requester or the approver; the person claims the first API key. One person
holds at most one active account per agency (``governance.identity.persons``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from governance.core import recording
from governance.core.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from governance.core.recording import SigningKeys
from governance.identity.accounts import Page, create_account
from governance.identity.claims import (
    ClaimPolicy,
    issue_claim,
    redeem_claim,
    reissue_claim,
    sealed_claim_hash,
)
from governance.identity.contact import Person
from governance.identity.credentials import IssuedCredential
from governance.identity.models import AccountRequest, Agency
from governance.identity.permissions import AGENCY_ROLES, Permission, Role, Scope
from governance.identity.persons import person_key, person_of, person_ref, refuse_second_account
from governance.identity.principals import (
    Principal,
    actor_of,
    reason_digest,
    require_scope,
    visible,
)
from governance.identity.registrations import RegistrationStatus, Submitted
from ledger.entry import EntryType, format_ts

__all__ = [
    "STAFF_ROLES",
    "AccountRequestInfo",
    "approve_request",
    "claim_request",
    "create_staff",
    "get_request",
    "list_requests",
    "reject_request",
    "request_account",
    "resend_claim",
]

STAFF_ROLES = frozenset({Role.OVERSIGHT, Role.CURATOR})
_PENDING = RegistrationStatus.PENDING.value


@dataclass(frozen=True, slots=True)
class AccountRequestInfo:
    """An account request as the API shows it."""

    id: UUID
    status: RegistrationStatus
    agency_id: UUID | None
    requested_by: UUID
    role: Role
    person: Person
    requested_at: datetime
    decided_at: datetime | None
    decided_by: UUID | None
    decision_reason: str | None
    account_id: UUID | None
    claimed_at: datetime | None


def _info(row: AccountRequest) -> AccountRequestInfo:
    return AccountRequestInfo(
        id=row.id,
        status=RegistrationStatus(row.status),
        agency_id=row.agency_id,
        requested_by=row.requested_by,
        role=Role(row.role),
        person=Person(
            first_name=row.first_name,
            last_name=row.last_name,
            phone=row.phone,
            email=row.email,
            job_title=row.job_title,
        ),
        requested_at=row.requested_at,
        decided_at=row.decided_at,
        decided_by=row.decided_by,
        decision_reason=row.decision_reason,
        account_id=row.account_id,
        claimed_at=row.claimed_at,
    )


def _new_row(
    *,
    role: Role,
    agency_id: UUID | None,
    actor: Principal,
    person: Person,
    now: datetime,
) -> AccountRequest:
    return AccountRequest(
        status=_PENDING,
        agency_id=agency_id,
        requested_by=actor.account_id,
        role=role.value,
        first_name=person.first_name,
        last_name=person.last_name,
        phone=person.phone,
        email=person.email,
        job_title=person.job_title,
        claim_hash=sealed_claim_hash(),
        requested_at=now,
    )


def request_account(
    session: Session,
    *,
    actor: Principal,
    role: Role,
    person: Person,
    keys: SigningKeys,
    now: datetime,
) -> Submitted:
    """Ask for another account in the caller's agency, for a person who holds none in it.

    Raises PermissionDenied, InvalidInput (a role agencies cannot have), PersonHasAccount (the
    person already holds an active account in the agency), Conflict (the same email already
    waits for approval in this agency).
    """
    require_scope(actor, Permission.ACCOUNT_REQUEST_CREATE)
    if role not in AGENCY_ROLES or actor.agency_id is None:
        raise InvalidInput(
            "An agency may request supervisor or investigator accounts only.",
            fields={"role": ["Must be one of: investigator, supervisor."]},
        )
    pending = session.scalar(
        select(AccountRequest.id).where(
            AccountRequest.agency_id == actor.agency_id,
            AccountRequest.email == person.email,
            AccountRequest.status == _PENDING,
        )
    )
    if pending is not None:
        raise Conflict(
            "An account request for this email already waits for approval.",
            code="duplicate-request",
        )
    refuse_second_account(session, agency_id=actor.agency_id, email=person.email)
    row = _new_row(role=role, agency_id=actor.agency_id, actor=actor, person=person, now=now)
    session.add(row)
    session.flush()
    recording.record(
        session,
        keys=keys,
        entry_type=EntryType.ACCOUNT_REQUEST,
        actor=actor_of(actor),
        payload={
            "request": str(row.id),
            "agency": str(actor.agency_id),
            "role": role.value,
            "person": person_ref(keys, person_key(person.email)),
        },
        now=now,
    )
    return Submitted(id=row.id, status=RegistrationStatus.PENDING)


def create_staff(
    session: Session,
    *,
    actor: Principal,
    role: Role,
    person: Person,
    reason: str | None,
    claims: ClaimPolicy,
    keys: SigningKeys,
    now: datetime,
) -> Submitted:
    """Create a curator account (approved at once, its claim secret mailed to the person), or
    propose an oversight account, which waits for the approval of a second administrator.

    Raises PermissionDenied, InvalidInput (not a staff role; an oversight proposal without a
    reason), PersonHasAccount (the person already holds a platform account).
    """
    require_scope(actor, Permission.STAFF_CREATE)
    if role not in STAFF_ROLES:
        raise InvalidInput(
            "Staff accounts are oversight or curator accounts.",
            fields={"role": ["Must be one of: curator, oversight."]},
        )
    if role is Role.OVERSIGHT and not reason:
        raise InvalidInput(
            "An oversight account is proposed with a reason, for a second administrator.",
            fields={"reason": ["Required for an oversight account."]},
        )
    refuse_second_account(session, agency_id=None, email=person.email)
    row = _new_row(role=role, agency_id=None, actor=actor, person=person, now=now)
    session.add(row)
    session.flush()
    ref = person_ref(keys, person_key(person.email))
    if role is Role.OVERSIGHT:
        recording.record(
            session,
            keys=keys,
            entry_type=EntryType.ACCOUNT_REQUEST,
            actor=actor_of(actor),
            payload={
                "request": str(row.id),
                "agency": None,
                "role": role.value,
                "person": ref,
                "reason_sha256": reason_digest(reason or ""),
            },
            now=now,
        )
        return Submitted(id=row.id, status=RegistrationStatus.PENDING)
    _decide_row(row, actor=actor, reason=reason or "created by a platform administrator", now=now)
    _approve(session, row, actor=actor, claims=claims, keys=keys, now=now)
    return Submitted(id=row.id, status=RegistrationStatus.APPROVED)


def _load(
    session: Session,
    actor: Principal,
    request_id: UUID,
    permission: Permission,
    *,
    lock: bool = False,
) -> AccountRequest:
    row = session.get(AccountRequest, request_id, with_for_update=lock)
    if row is None:
        raise NotFound("No such account request.")
    visible(actor, permission, agency_id=row.agency_id, what="account request")
    return row


def get_request(session: Session, *, actor: Principal, request_id: UUID) -> AccountRequestInfo:
    """One account request: any for admins, one's own agency's for supervisors.

    Raises PermissionDenied, NotFound (also for another agency's request).
    """
    return _info(_load(session, actor, request_id, Permission.ACCOUNT_REQUEST_READ))


def list_requests(
    session: Session,
    *,
    actor: Principal,
    limit: int,
    offset: int,
    status: RegistrationStatus | None = None,
) -> Page[AccountRequestInfo]:
    """Account requests within the caller's reach, oldest first.

    Raises PermissionDenied.
    """
    scope = require_scope(actor, Permission.ACCOUNT_REQUEST_READ)
    query = select(AccountRequest)
    if scope is not Scope.ANY:
        query = query.where(AccountRequest.agency_id == actor.agency_id)
    if status is not None:
        query = query.where(AccountRequest.status == status.value)
    total = int(session.scalar(select(func.count()).select_from(query.subquery())) or 0)
    rows = session.scalars(
        query.order_by(AccountRequest.requested_at, AccountRequest.id).limit(limit).offset(offset)
    )
    return Page([_info(r) for r in rows], total, limit, offset)


def _decide_row(
    row: AccountRequest,
    *,
    actor: Principal,
    reason: str,
    now: datetime,
    status: RegistrationStatus = RegistrationStatus.APPROVED,
) -> None:
    row.decided_at = now
    row.decided_by = actor.account_id
    row.decision_reason = reason
    row.status = status.value


def _decide(
    session: Session,
    *,
    actor: Principal,
    request_id: UUID,
    reason: str,
    status: RegistrationStatus,
    now: datetime,
) -> AccountRequest:
    row = _load(session, actor, request_id, Permission.ACCOUNT_REQUEST_DECIDE, lock=True)
    if row.status != _PENDING:
        raise Conflict(f"This request was already decided ({row.status}).", code="already-decided")
    if person_of(session, actor.account_id) == person_of(session, row.requested_by):
        raise PermissionDenied(
            "An administrator other than the requester must decide this request (four eyes).",
            code="four-eyes-required",
        )
    _decide_row(row, actor=actor, reason=reason, now=now, status=status)
    return row


def _approve(
    session: Session,
    row: AccountRequest,
    *,
    actor: Principal,
    claims: ClaimPolicy,
    keys: SigningKeys,
    now: datetime,
) -> None:
    """Create the account of a request just approved, mail its claim secret, record the act."""
    agency = session.get(Agency, row.agency_id) if row.agency_id else None
    if agency is not None and agency.status != "active":
        raise Conflict("The agency is suspended; reinstate it first.", code="agency-suspended")
    info = _info(row)
    account = create_account(
        session,
        role=info.role,
        agency_id=row.agency_id,
        name=info.person.full_name,
        email=row.email,
        phone=row.phone,
        job_title=row.job_title,
        now=now,
    )
    row.account_id = account.id
    where = f" at {agency.name}" if agency is not None else " on the FaceWarden platform"
    person = issue_claim(
        session,
        row,
        what="account_request",
        headline=f"An account of role {row.role}{where} was approved for you.",
        policy=claims,
        keys=keys,
        now=now,
    )
    recording.record(
        session,
        keys=keys,
        entry_type=(
            EntryType.OVERSIGHT_CREATE if info.role is Role.OVERSIGHT else EntryType.ACCOUNT_APPROVE
        ),
        actor=actor_of(actor),
        payload={
            "request": str(row.id),
            "account": str(account.id),
            "agency": str(row.agency_id) if row.agency_id else None,
            "role": row.role,
            "person": person,
            "requested_by": str(row.requested_by),
            "claim_expires_at": format_ts(now + claims.ttl),
            "reason_sha256": reason_digest(row.decision_reason or ""),
        },
        now=now,
    )


def approve_request(
    session: Session,
    *,
    actor: Principal,
    request_id: UUID,
    reason: str,
    claims: ClaimPolicy,
    keys: SigningKeys,
    now: datetime,
) -> AccountRequestInfo:
    """Approve a pending request, create the account and mail its claim secret to the person.

    The approver is never the requester (compared as persons): for an oversight account, that
    makes two administrators. Raises PermissionDenied (four-eyes-required), NotFound,
    PersonHasAccount, Conflict (already decided, or the agency is suspended).
    """
    row = _decide(
        session,
        actor=actor,
        request_id=request_id,
        reason=reason,
        status=RegistrationStatus.APPROVED,
        now=now,
    )
    _approve(session, row, actor=actor, claims=claims, keys=keys, now=now)
    return _info(row)


def reject_request(
    session: Session,
    *,
    actor: Principal,
    request_id: UUID,
    reason: str,
    keys: SigningKeys,
    now: datetime,
) -> AccountRequestInfo:
    """Reject a pending request; rejection is final.

    Raises PermissionDenied, NotFound, Conflict (already decided).
    """
    row = _decide(
        session,
        actor=actor,
        request_id=request_id,
        reason=reason,
        status=RegistrationStatus.REJECTED,
        now=now,
    )
    recording.record(
        session,
        keys=keys,
        entry_type=EntryType.ACCOUNT_REJECT,
        actor=actor_of(actor),
        payload={
            "request": str(row.id),
            "agency": str(row.agency_id) if row.agency_id else None,
            "reason_sha256": reason_digest(reason),
        },
        now=now,
    )
    return _info(row)


def claim_request(
    session: Session,
    *,
    request_id: UUID,
    claim_secret: str,
    claims: ClaimPolicy,
    keys: SigningKeys,
    now: datetime,
) -> IssuedCredential:
    """Trade the claim secret of an approved request for the account's first API key, once.

    Raises WrongClaim (unknown request or wrong secret, alike), Conflict (expired, pending,
    rejected or already claimed).
    """
    row = session.get(AccountRequest, request_id, with_for_update=True)
    return redeem_claim(
        session,
        row=row,
        what="account_request",
        claim_secret=claim_secret,
        entry_type=EntryType.ACCOUNT_CLAIM,
        policy=claims,
        keys=keys,
        now=now,
    )


def resend_claim(
    session: Session,
    *,
    actor: Principal,
    request_id: UUID,
    claims: ClaimPolicy,
    keys: SigningKeys,
    now: datetime,
) -> AccountRequestInfo:
    """Mail a new claim secret to the person of an approved, unclaimed request (the old one
    stops working), after an expiry or a lost message, and record ``claim:reissue``.

    Raises PermissionDenied, NotFound, Conflict (not approved, or already claimed).
    """
    row = _load(session, actor, request_id, Permission.ACCOUNT_REQUEST_DECIDE, lock=True)
    person = reissue_claim(session, row, what="account_request", policy=claims, keys=keys, now=now)
    recording.record(
        session,
        keys=keys,
        entry_type=EntryType.CLAIM_REISSUE,
        actor=actor_of(actor),
        payload={
            "request": str(row.id),
            "account": str(row.account_id),
            "person": person,
            "claim_expires_at": format_ts(now + claims.ttl),
        },
        now=now,
    )
    return _info(row)
