"""Requests for more accounts: a supervisor asks, a platform admin decides, the person claims.

Staff accounts (oversight, curator) have no agency and no supervisor: a platform admin creates
them directly, already approved, and passes the one-time claim secret on out of band; the person
then claims the first API key, which the admin never sees.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from governance import audit
from governance.accounts import Page, create_account
from governance.audit import SigningKeys
from governance.contact import Person
from governance.credentials import IssuedCredential
from governance.errors import Conflict, InvalidInput, NotFound
from governance.models import AccountRequest, Agency
from governance.permissions import AGENCY_ROLES, Permission, Role, Scope
from governance.principals import (
    Principal,
    actor_of,
    reason_digest,
    require_scope,
    visible,
)
from governance.registrations import RegistrationStatus, Submitted, redeem_claim
from governance.tokens import digest, new_claim_secret
from ledger.entry import EntryType

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
]

STAFF_ROLES = frozenset({Role.OVERSIGHT, Role.CURATOR})
# TODO(ledger): a dedicated "curator:create" type; until then a curator's creation is recorded
# as the admin approving an account of role curator.
_STAFF_ENTRY = {Role.OVERSIGHT: EntryType.OVERSIGHT_CREATE, Role.CURATOR: EntryType.ACCOUNT_APPROVE}
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
    secret: str,
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
        claim_hash=digest(secret),
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
    """Ask for another account in the caller's agency; return the claim secret once.

    Raises PermissionDenied, InvalidInput (a role agencies cannot have), Conflict (the same
    email already waits for approval in this agency).
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
    secret = new_claim_secret()
    row = _new_row(
        role=role, agency_id=actor.agency_id, actor=actor, person=person, secret=secret, now=now
    )
    session.add(row)
    session.flush()
    audit.record(
        session,
        keys=keys,
        entry_type=EntryType.ACCOUNT_REQUEST,
        actor=actor_of(actor),
        payload={"request": str(row.id), "agency": str(actor.agency_id), "role": role.value},
        now=now,
    )
    return Submitted(id=row.id, status=RegistrationStatus.PENDING, claim_secret=secret)


def create_staff(
    session: Session,
    *,
    actor: Principal,
    role: Role,
    person: Person,
    keys: SigningKeys,
    now: datetime,
) -> Submitted:
    """Create an oversight or curator account, approved at once; return its claim secret.

    Raises PermissionDenied, InvalidInput (not a staff role).
    """
    require_scope(actor, Permission.STAFF_CREATE)
    if role not in STAFF_ROLES:
        raise InvalidInput(
            "Staff accounts are oversight or curator accounts.",
            fields={"role": ["Must be one of: curator, oversight."]},
        )
    secret = new_claim_secret()
    row = _new_row(role=role, agency_id=None, actor=actor, person=person, secret=secret, now=now)
    account = create_account(
        session,
        role=role,
        agency_id=None,
        name=person.full_name,
        email=person.email,
        phone=person.phone,
        job_title=person.job_title,
        now=now,
    )
    row.status = RegistrationStatus.APPROVED.value
    row.decided_at = now
    row.decided_by = actor.account_id
    row.decision_reason = "created by a platform administrator"
    row.account_id = account.id
    session.add(row)
    session.flush()
    audit.record(
        session,
        keys=keys,
        entry_type=_STAFF_ENTRY[role],
        actor=actor_of(actor),
        payload={"request": str(row.id), "account": str(account.id), "role": role.value},
        now=now,
    )
    return Submitted(id=row.id, status=RegistrationStatus.APPROVED, claim_secret=secret)


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
    row.decided_at = now
    row.decided_by = actor.account_id
    row.decision_reason = reason
    row.status = status.value
    return row


def approve_request(
    session: Session,
    *,
    actor: Principal,
    request_id: UUID,
    reason: str,
    keys: SigningKeys,
    now: datetime,
) -> AccountRequestInfo:
    """Approve a pending request and create the account.

    Raises PermissionDenied, NotFound, Conflict (already decided, or the agency is suspended).
    """
    row = _decide(
        session,
        actor=actor,
        request_id=request_id,
        reason=reason,
        status=RegistrationStatus.APPROVED,
        now=now,
    )
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
    audit.record(
        session,
        keys=keys,
        entry_type=EntryType.ACCOUNT_APPROVE,
        actor=actor_of(actor),
        payload={
            "request": str(row.id),
            "account": str(account.id),
            "agency": str(row.agency_id) if row.agency_id else None,
            "role": row.role,
            "reason_sha256": reason_digest(reason),
        },
        now=now,
    )
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
    audit.record(
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
    ttl: timedelta,
    keys: SigningKeys,
    now: datetime,
) -> IssuedCredential:
    """Trade the claim secret of an approved request for the account's first API key, once.

    Raises NotFound, PermissionDenied (wrong secret, checked in constant time first),
    Conflict (pending, rejected or already claimed).
    """
    row = session.get(AccountRequest, request_id, with_for_update=True)
    if row is None:
        raise NotFound("No such account request.")
    return redeem_claim(
        session,
        row=row,
        what="account_request",
        claim_secret=claim_secret,
        entry_type=EntryType.ACCOUNT_CLAIM,
        ttl=ttl,
        keys=keys,
        now=now,
    )
