"""Agency registrations: submit (public), review by a platform admin, claim the first key.

Approval creates the agency and its first account (a supervisor); the applicant then trades
the one-time claim secret it got on submission for the first API key, which no administrator
ever sees. A wrong secret is refused before the registration's state is revealed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from uuid import UUID

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from governance import audit
from governance.accounts import Page, create_account
from governance.agencies import AgencyDetails, AgencyKind, create_agency
from governance.audit import SigningKeys
from governance.contact import Person
from governance.credentials import IssuedCredential, issue_credential
from governance.errors import Conflict, NotFound, PermissionDenied
from governance.models import AccountRequest, Registration
from governance.permissions import Permission, Role
from governance.principals import (
    Principal,
    actor_of,
    applicant_actor,
    reason_digest,
    require_scope,
)
from governance.tokens import digest, matches, new_claim_secret
from ledger.entry import EntryType

__all__ = [
    "RegistrationInfo",
    "RegistrationStatus",
    "Submitted",
    "approve_registration",
    "claim_registration",
    "get_registration",
    "list_registrations",
    "redeem_claim",
    "reject_registration",
    "submit_registration",
]


class RegistrationStatus(StrEnum):
    """Where a registration (or an account request) stands."""

    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    CLAIMED = "claimed"


@dataclass(frozen=True, slots=True)
class Submitted:
    """A submission's receipt: its id, status, and the claim secret (shown this once)."""

    id: UUID
    status: RegistrationStatus
    claim_secret: str


@dataclass(frozen=True, slots=True)
class RegistrationInfo:
    """A registration as a platform admin reviews it."""

    id: UUID
    status: RegistrationStatus
    agency: AgencyDetails
    contact: Person
    intended_use: str
    submitted_at: datetime
    decided_at: datetime | None
    decided_by: UUID | None
    decision_reason: str | None
    agency_id: UUID | None
    account_id: UUID | None
    claimed_at: datetime | None


def _info(row: Registration) -> RegistrationInfo:
    return RegistrationInfo(
        id=row.id,
        status=RegistrationStatus(row.status),
        agency=AgencyDetails(
            name=row.agency_name,
            kind=AgencyKind(row.agency_kind),
            country=row.country,
            jurisdiction=row.jurisdiction,
        ),
        contact=Person(
            first_name=row.first_name,
            last_name=row.last_name,
            phone=row.phone,
            email=row.email,
            job_title=row.job_title,
        ),
        intended_use=row.intended_use,
        submitted_at=row.submitted_at,
        decided_at=row.decided_at,
        decided_by=row.decided_by,
        decision_reason=row.decision_reason,
        agency_id=row.agency_id,
        account_id=row.account_id,
        claimed_at=row.claimed_at,
    )


def _name_key(name: str) -> str:
    return " ".join(name.casefold().split())


def submit_registration(
    session: Session,
    *,
    agency: AgencyDetails,
    contact: Person,
    intended_use: str,
    keys: SigningKeys,
    now: datetime,
) -> Submitted:
    """Record a pending registration and ``registration:submit``; return its claim secret.

    Raises Conflict when the same agency name and email already wait for review.
    """
    key = _name_key(agency.name)
    duplicate = session.scalar(
        select(Registration.id).where(
            Registration.status == RegistrationStatus.PENDING.value,
            Registration.agency_name_key == key,
            Registration.email == contact.email,
        )
    )
    if duplicate is not None:
        raise Conflict(
            "A registration for this agency and email is already waiting for review.",
            code="duplicate-registration",
        )
    secret = new_claim_secret()
    row = Registration(
        status=RegistrationStatus.PENDING.value,
        agency_name=agency.name,
        agency_name_key=key,
        agency_kind=agency.kind.value,
        country=agency.country,
        jurisdiction=agency.jurisdiction,
        first_name=contact.first_name,
        last_name=contact.last_name,
        phone=contact.phone,
        email=contact.email,
        job_title=contact.job_title,
        intended_use=intended_use,
        claim_hash=digest(secret),
        submitted_at=now,
    )
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError as exc:  # a concurrent twin won the partial unique index
        raise Conflict(
            "A registration for this agency and email is already waiting for review.",
            code="duplicate-registration",
        ) from exc
    audit.record(
        session,
        keys=keys,
        entry_type=EntryType.REGISTRATION_SUBMIT,
        actor=applicant_actor("applicant", row.id),
        payload={
            "registration": str(row.id),
            "agency_kind": agency.kind.value,
            "country": agency.country,
        },
        now=now,
    )
    return Submitted(id=row.id, status=RegistrationStatus.PENDING, claim_secret=secret)


def list_registrations(
    session: Session,
    *,
    actor: Principal,
    limit: int,
    offset: int,
    status: RegistrationStatus | None = None,
) -> Page[RegistrationInfo]:
    """Registrations, oldest first, optionally by status.

    Raises PermissionDenied.
    """
    require_scope(actor, Permission.REGISTRATION_REVIEW)
    query = select(Registration)
    if status is not None:
        query = query.where(Registration.status == status.value)
    total = int(session.scalar(select(func.count()).select_from(query.subquery())) or 0)
    rows = session.scalars(
        query.order_by(Registration.submitted_at, Registration.id).limit(limit).offset(offset)
    )
    return Page([_info(r) for r in rows], total, limit, offset)


def _load(session: Session, registration_id: UUID, *, lock: bool = False) -> Registration:
    # Row lock on PostgreSQL so two concurrent decisions or claims cannot both pass the check;
    # SQLite units of work already hold the database write lock.
    row = session.get(Registration, registration_id, with_for_update=lock)
    if row is None:
        raise NotFound("No such registration.")
    return row


def get_registration(
    session: Session, *, actor: Principal, registration_id: UUID
) -> RegistrationInfo:
    """One registration.

    Raises PermissionDenied, NotFound.
    """
    require_scope(actor, Permission.REGISTRATION_REVIEW)
    return _info(_load(session, registration_id))


def _decide(
    session: Session,
    *,
    actor: Principal,
    registration_id: UUID,
    reason: str,
    status: RegistrationStatus,
    now: datetime,
) -> Registration:
    require_scope(actor, Permission.REGISTRATION_REVIEW)
    row = _load(session, registration_id, lock=True)
    if row.status != RegistrationStatus.PENDING.value:
        raise Conflict(
            f"This registration was already decided ({row.status}).", code="already-decided"
        )
    row.decided_at = now
    row.decided_by = actor.account_id
    row.decision_reason = reason
    row.status = status.value
    return row


def approve_registration(
    session: Session,
    *,
    actor: Principal,
    registration_id: UUID,
    reason: str,
    keys: SigningKeys,
    now: datetime,
) -> RegistrationInfo:
    """Approve a pending registration: create the agency and its first supervisor account.

    Raises PermissionDenied, NotFound, Conflict (already decided).
    """
    row = _decide(
        session,
        actor=actor,
        registration_id=registration_id,
        reason=reason,
        status=RegistrationStatus.APPROVED,
        now=now,
    )
    info = _info(row)
    agency = create_agency(session, details=info.agency, now=now)
    account = create_account(
        session,
        role=Role.SUPERVISOR,
        agency_id=agency.id,
        name=info.contact.full_name,
        email=row.email,
        phone=row.phone,
        job_title=row.job_title,
        now=now,
    )
    row.agency_id = agency.id
    row.account_id = account.id
    audit.record(
        session,
        keys=keys,
        entry_type=EntryType.REGISTRATION_APPROVE,
        actor=actor_of(actor),
        payload={
            "registration": str(row.id),
            "agency": str(agency.id),
            "account": str(account.id),
            "role": Role.SUPERVISOR.value,
            "reason_sha256": reason_digest(reason),
        },
        now=now,
    )
    return _info(row)


def reject_registration(
    session: Session,
    *,
    actor: Principal,
    registration_id: UUID,
    reason: str,
    keys: SigningKeys,
    now: datetime,
) -> RegistrationInfo:
    """Reject a pending registration; rejection is final.

    Raises PermissionDenied, NotFound, Conflict (already decided).
    """
    row = _decide(
        session,
        actor=actor,
        registration_id=registration_id,
        reason=reason,
        status=RegistrationStatus.REJECTED,
        now=now,
    )
    audit.record(
        session,
        keys=keys,
        entry_type=EntryType.REGISTRATION_REJECT,
        actor=actor_of(actor),
        payload={"registration": str(row.id), "reason_sha256": reason_digest(reason)},
        now=now,
    )
    return _info(row)


def claim_registration(
    session: Session,
    *,
    registration_id: UUID,
    claim_secret: str,
    ttl: timedelta,
    keys: SigningKeys,
    now: datetime,
) -> IssuedCredential:
    """Trade the claim secret of an approved registration for the first API key, once.

    Raises NotFound, PermissionDenied (wrong secret, checked in constant time before anything
    else is revealed), Conflict (not approved yet, rejected, or already claimed).
    """
    row = _load(session, registration_id, lock=True)
    return redeem_claim(
        session,
        row=row,
        what="registration",
        claim_secret=claim_secret,
        entry_type=EntryType.REGISTRATION_CLAIM,
        ttl=ttl,
        keys=keys,
        now=now,
    )


def redeem_claim(
    session: Session,
    *,
    row: Registration | AccountRequest,
    what: str,
    claim_secret: str,
    entry_type: EntryType,
    ttl: timedelta,
    keys: SigningKeys,
    now: datetime,
) -> IssuedCredential:
    """Trade the claim secret of an approved registration or account request for the first
    key of its account, once, and record the claim (``what`` names the object in messages and
    in the entry's payload).

    Raises PermissionDenied (wrong secret, checked in constant time before anything else is
    revealed), Conflict (not approved yet, rejected, or already claimed).
    """
    if not matches(claim_secret, row.claim_hash):
        raise PermissionDenied("The claim secret is wrong.", code="wrong-claim-secret")
    label = what.replace("_", " ")
    if row.status == RegistrationStatus.CLAIMED.value:
        raise Conflict(f"This {label} was already claimed.", code="already-claimed")
    if row.status != RegistrationStatus.APPROVED.value or row.account_id is None:
        raise Conflict(
            f"This {label} is {row.status}; only an approved one can be claimed.",
            code="not-approved",
        )
    actor = applicant_actor("claimant", row.id)
    issued = issue_credential(
        session,
        account_id=row.account_id,
        ttl=ttl,
        actor=actor,
        keys=keys,
        now=now,
        label="first key",
    )
    row.status = RegistrationStatus.CLAIMED.value
    row.claimed_at = now
    audit.record(
        session,
        keys=keys,
        entry_type=entry_type,
        actor=actor,
        payload={
            "registration" if what == "registration" else "request": str(row.id),
            "account": str(row.account_id),
            "credential": str(issued.credential.id),
        },
        now=now,
    )
    return issued
