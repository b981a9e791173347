"""Requests for more accounts: a supervisor asks, a platform admin decides, the person claims.

Staff accounts have no agency and no supervisor. A platform admin creates a curator directly,
already approved (``curator:create``); an oversight account would let one admin hold the key of
the body meant to watch them, so it is proposed by one admin and created only when a different
person approves (``oversight:create``). On approval the one-time claim secret is mailed to the
person named on the request, never returned to the requester or the approver; the person claims
the first API key. One person holds at most one active account per agency
(``governance.identity.persons``). The workflow is the one agency registrations follow
(``governance.identity.applications``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from sqlalchemy import select

from governance.core.errors import Conflict, InvalidInput, PermissionDenied
from governance.core.orm import value_of
from governance.core.work import Work
from governance.identity import applications
from governance.identity.applications import ApplicationInfo, Flow, Grant, Submitted
from governance.identity.claims import ClaimPolicy
from governance.identity.contact import Person
from governance.identity.credentials import IssuedCredential
from governance.identity.models import AccountRequest, Agency
from governance.identity.permissions import AGENCY_ROLES, Permission, Role
from governance.identity.persons import person_key, person_of, person_ref, refuse_second_account
from governance.identity.principals import (
    Principal,
    actor_of,
    reason_digest,
    require_scope,
    visible,
)
from governance.identity.vocabulary import ApplicationStatus, Standing
from ledger.entry import EntryType

__all__ = [
    "ACCOUNT_REQUESTS",
    "STAFF_ROLES",
    "AccountRequestInfo",
    "approve_request",
    "claim_request",
    "create_staff",
    "get_request",
    "reject_request",
    "request_account",
    "resend_claim",
]

STAFF_ROLES = frozenset({Role.OVERSIGHT, Role.CURATOR})
# What the approval of a request records: an oversight or a curator account is created as such.
_APPROVED = {Role.OVERSIGHT: EntryType.OVERSIGHT_CREATE, Role.CURATOR: EntryType.CURATOR_CREATE}
_CREATED = "created by a platform administrator"


@dataclass(frozen=True, slots=True)
class AccountRequestInfo(ApplicationInfo):
    """An account request as the API shows it."""

    agency_id: UUID | None
    requested_by: UUID
    role: Role
    person: Person
    requested_at: datetime


def _info(row: AccountRequest) -> AccountRequestInfo:
    return value_of(
        AccountRequestInfo,
        row,
        status=ApplicationStatus(row.status),
        role=Role(row.role),
        person=applications.applicant(row),
    )


ACCOUNT_REQUESTS = Flow(
    AccountRequest,
    _info,
    what="account_request",
    noun="request",
    rejected=EntryType.ACCOUNT_REJECT,
    claimed=EntryType.ACCOUNT_CLAIM,
    read=Permission.ACCOUNT_REQUEST_READ,
    received=AccountRequest.requested_at,
)


def _new_request(
    work: Work, *, role: Role, agency_id: UUID | None, principal: Principal, person: Person
) -> AccountRequest:
    refuse_second_account(work.session, agency_id=agency_id, email=person.email)
    row = applications.pending_row(
        ACCOUNT_REQUESTS,
        person,
        agency_id=agency_id,
        requested_by=principal.account_id,
        role=role.value,
        requested_at=work.now,
    )
    work.session.add(row)
    work.session.flush()
    return row


def _record_request(
    work: Work, row: AccountRequest, *, principal: Principal, reason: str | None = None
) -> Submitted:
    work.record(
        EntryType.ACCOUNT_REQUEST,
        actor=actor_of(principal),
        payload={
            "request": str(row.id),
            "agency": str(row.agency_id) if row.agency_id else None,
            "role": row.role,
            "person": person_ref(work.keys, person_key(row.email)),
            **({"reason_sha256": reason_digest(reason)} if reason is not None else {}),
        },
    )
    return Submitted(id=row.id, status=ApplicationStatus.PENDING)


def request_account(work: Work, *, principal: Principal, role: Role, person: Person) -> Submitted:
    """Ask for another account in the caller's agency, for a person who holds none in it.

    Raises PermissionDenied, InvalidInput (a role agencies cannot have), PersonHasAccount (the
    person already holds an active account in the agency), Conflict (the same email already
    waits for approval in this agency).
    """
    require_scope(principal, Permission.ACCOUNT_REQUEST_CREATE)
    if role not in AGENCY_ROLES or principal.agency_id is None:
        raise InvalidInput(
            "An agency may request supervisor or investigator accounts only.",
            fields={"role": ["Must be one of: investigator, supervisor."]},
        )
    pending = work.session.scalar(
        select(AccountRequest.id).where(
            AccountRequest.agency_id == principal.agency_id,
            AccountRequest.email == person.email,
            AccountRequest.status == ApplicationStatus.PENDING.value,
        )
    )
    if pending is not None:
        raise Conflict(
            "An account request for this email already waits for approval.",
            code="duplicate-request",
        )
    row = _new_request(
        work, role=role, agency_id=principal.agency_id, principal=principal, person=person
    )
    return _record_request(work, row, principal=principal)


def create_staff(
    work: Work,
    *,
    principal: Principal,
    role: Role,
    person: Person,
    reason: str | None,
    claims: ClaimPolicy,
) -> Submitted:
    """Create a curator account (approved at once and recorded as ``curator:create``, its claim
    secret mailed to the person), or propose an oversight account, which waits for the approval
    of a second administrator.

    Raises PermissionDenied, InvalidInput (not a staff role; an oversight proposal without a
    reason), PersonHasAccount (the person already holds a platform account).
    """
    require_scope(principal, Permission.STAFF_CREATE)
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
    row = _new_request(work, role=role, agency_id=None, principal=principal, person=person)
    if role is Role.OVERSIGHT:
        return _record_request(work, row, principal=principal, reason=reason or "")
    _approve(work, row, principal=principal, reason=reason or _CREATED, claims=claims)
    return Submitted(id=row.id, status=ApplicationStatus.APPROVED)


def _load(
    work: Work,
    principal: Principal,
    request_id: UUID,
    permission: Permission,
    *,
    lock: bool = False,
) -> AccountRequest:
    row = applications.load(work, ACCOUNT_REQUESTS, request_id, lock=lock)
    visible(principal, permission, agency_id=row.agency_id, what="account request")
    return row


def get_request(work: Work, request_id: UUID, *, principal: Principal) -> AccountRequestInfo:
    """One account request: any for admins, one's own agency's for supervisors.

    Raises PermissionDenied, NotFound (also for another agency's request).
    """
    return _info(_load(work, principal, request_id, Permission.ACCOUNT_REQUEST_READ))


def _decidable(work: Work, principal: Principal, request_id: UUID) -> AccountRequest:
    """A request ``principal`` may decide: never the requester's own (compared as persons).

    Raises PermissionDenied (four-eyes-required), NotFound.
    """
    row = _load(work, principal, request_id, Permission.ACCOUNT_REQUEST_DECIDE, lock=True)
    if row.status == ApplicationStatus.PENDING and person_of(
        work.session, principal.account_id
    ) == person_of(work.session, row.requested_by):
        raise PermissionDenied(
            "An administrator other than the requester must decide this request (four eyes).",
            code="four-eyes-required",
        )
    return row


def _grant(work: Work, row: AccountRequest) -> Grant:
    agency = work.session.get(Agency, row.agency_id) if row.agency_id else None
    if agency is not None and agency.status != Standing.ACTIVE:
        raise Conflict("The agency is suspended; reinstate it first.", code="agency-suspended")
    role = Role(row.role)
    where = f" at {agency.name}" if agency is not None else " on the FaceWarden platform"
    return Grant(
        role=role,
        agency_id=row.agency_id,
        headline=f"An account of role {row.role}{where} was approved for you.",
        entry_type=_APPROVED.get(role, EntryType.ACCOUNT_APPROVE),
        payload={
            "agency": str(row.agency_id) if row.agency_id else None,
            "role": row.role,
            "requested_by": str(row.requested_by),
        },
    )


def _approve(
    work: Work, row: AccountRequest, *, principal: Principal, reason: str, claims: ClaimPolicy
) -> None:
    applications.approve(
        work, row, ACCOUNT_REQUESTS, _grant, principal=principal, reason=reason, policy=claims
    )


def approve_request(
    work: Work, request_id: UUID, *, principal: Principal, reason: str, claims: ClaimPolicy
) -> AccountRequestInfo:
    """Approve a pending request, create the account and mail its claim secret to the person.

    The approver is never the requester (compared as persons): for an oversight account, that
    makes two administrators. Raises PermissionDenied (four-eyes-required), NotFound,
    PersonHasAccount, Conflict (already decided, or the agency is suspended).
    """
    row = _decidable(work, principal, request_id)
    _approve(work, row, principal=principal, reason=reason, claims=claims)
    return _info(row)


def reject_request(
    work: Work, request_id: UUID, *, principal: Principal, reason: str
) -> AccountRequestInfo:
    """Reject a pending request; rejection is final.

    Raises PermissionDenied, NotFound, Conflict (already decided).
    """
    row = _decidable(work, principal, request_id)
    applications.reject(
        work,
        row,
        ACCOUNT_REQUESTS,
        principal=principal,
        reason=reason,
        payload={"agency": str(row.agency_id) if row.agency_id else None},
    )
    return _info(row)


def claim_request(
    work: Work, request_id: UUID, *, claim_secret: str, claims: ClaimPolicy
) -> IssuedCredential:
    """Trade the claim secret of an approved request for the account's first API key, once.

    Raises WrongClaim (unknown request or wrong secret, alike), Conflict (expired, pending,
    rejected or already claimed).
    """
    return applications.claim(
        work, ACCOUNT_REQUESTS, request_id, claim_secret=claim_secret, policy=claims
    )


def resend_claim(
    work: Work, request_id: UUID, *, principal: Principal, claims: ClaimPolicy
) -> AccountRequestInfo:
    """Mail a new claim secret to the person of an approved, unclaimed request (the old one
    stops working), after an expiry or a lost message, and record ``claim:reissue``.

    Raises PermissionDenied, NotFound, Conflict (not approved, or already claimed).
    """
    row = _load(work, principal, request_id, Permission.ACCOUNT_REQUEST_DECIDE, lock=True)
    applications.resend(work, row, ACCOUNT_REQUESTS, principal=principal, policy=claims)
    return _info(row)
