"""Agency registrations: submit (public), review by a platform admin, claim the first key.

Approval creates the agency and its first account (a supervisor) and mails a one-time claim
secret to the contact (the applicant) at the address on the registration; the contact trades
it for the first API key, which no administrator ever sees. Nothing secret is returned to the
anonymous submitter, who could have named someone else's address. A wrong secret is refused
before the registration's state is revealed (``governance.identity.claims``).
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
from governance.core.errors import Conflict, NotFound
from governance.core.recording import SigningKeys
from governance.identity.accounts import Page, create_account
from governance.identity.agencies import AgencyDetails, AgencyKind, create_agency
from governance.identity.claims import (
    ClaimPolicy,
    issue_claim,
    redeem_claim,
    reissue_claim,
    sealed_claim_hash,
)
from governance.identity.contact import Person
from governance.identity.credentials import IssuedCredential
from governance.identity.models import Registration
from governance.identity.permissions import Permission, Role
from governance.identity.principals import (
    Principal,
    actor_of,
    applicant_actor,
    reason_digest,
    require_scope,
)
from ledger.entry import EntryType, format_ts

__all__ = [
    "RegistrationInfo",
    "RegistrationStatus",
    "Submitted",
    "approve_registration",
    "claim_registration",
    "get_registration",
    "list_registrations",
    "reject_registration",
    "resend_claim",
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
    """A submission's receipt: its id and status (the claim secret goes by mail, on approval)."""

    id: UUID
    status: RegistrationStatus


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
    """Record a pending registration and ``registration:submit``.

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
        claim_hash=sealed_claim_hash(),
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
    recording.record(
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
    return Submitted(id=row.id, status=RegistrationStatus.PENDING)


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
    claims: ClaimPolicy,
    keys: SigningKeys,
    now: datetime,
) -> RegistrationInfo:
    """Approve a pending registration: create the agency and its first supervisor account,
    and mail the claim secret to the contact.

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
    person = issue_claim(
        session,
        row,
        what="registration",
        headline=(
            f"The registration of {row.agency_name} was approved; you hold its first account "
            "(supervisor)."
        ),
        policy=claims,
        keys=keys,
        now=now,
    )
    recording.record(
        session,
        keys=keys,
        entry_type=EntryType.REGISTRATION_APPROVE,
        actor=actor_of(actor),
        payload={
            "registration": str(row.id),
            "agency": str(agency.id),
            "account": str(account.id),
            "role": Role.SUPERVISOR.value,
            "person": person,
            "claim_expires_at": format_ts(now + claims.ttl),
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
    recording.record(
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
    claims: ClaimPolicy,
    keys: SigningKeys,
    now: datetime,
) -> IssuedCredential:
    """Trade the claim secret of an approved registration for the first API key, once.

    Raises WrongClaim (unknown registration or wrong secret, alike), Conflict (expired, not
    approved yet, rejected, or already claimed).
    """
    row = session.get(Registration, registration_id, with_for_update=True)
    return redeem_claim(
        session,
        row=row,
        what="registration",
        claim_secret=claim_secret,
        entry_type=EntryType.REGISTRATION_CLAIM,
        policy=claims,
        keys=keys,
        now=now,
    )


def resend_claim(
    session: Session,
    *,
    actor: Principal,
    registration_id: UUID,
    claims: ClaimPolicy,
    keys: SigningKeys,
    now: datetime,
) -> RegistrationInfo:
    """Mail a new claim secret to the contact of an approved, unclaimed registration (the old
    one stops working), after an expiry or a lost message, and record ``claim:reissue``.

    Raises PermissionDenied, NotFound, Conflict (not approved, or already claimed).
    """
    require_scope(actor, Permission.REGISTRATION_REVIEW)
    row = _load(session, registration_id, lock=True)
    person = reissue_claim(session, row, what="registration", policy=claims, keys=keys, now=now)
    recording.record(
        session,
        keys=keys,
        entry_type=EntryType.CLAIM_REISSUE,
        actor=actor_of(actor),
        payload={
            "registration": str(row.id),
            "account": str(row.account_id),
            "person": person,
            "claim_expires_at": format_ts(now + claims.ttl),
        },
        now=now,
    )
    return _info(row)
