"""Agency registrations: submit (public), review by a platform admin, claim the first key.

Approval creates the agency and its first account (a supervisor) and mails a one-time claim
secret to the contact (the applicant) at the address on the registration; the contact trades
it for the first API key, which no administrator ever sees. Nothing secret is returned to the
anonymous submitter, who could have named someone else's address. A wrong secret is refused
before the registration's state is revealed (``governance.identity.claims``). The workflow is
the one account requests follow (``governance.identity.applications``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from governance.core.errors import Conflict
from governance.core.orm import value_of
from governance.core.work import Work
from governance.identity import applications
from governance.identity.agencies import AgencyDetails, AgencyKind, create_agency
from governance.identity.applications import ApplicationInfo, Flow, Grant, Submitted
from governance.identity.claims import ClaimPolicy
from governance.identity.contact import Person
from governance.identity.credentials import IssuedCredential
from governance.identity.models import Registration
from governance.identity.permissions import Permission, Role
from governance.identity.principals import Principal, applicant_actor, require_scope
from governance.identity.vocabulary import ApplicationStatus
from ledger.entry import EntryType

__all__ = [
    "REGISTRATIONS",
    "RegistrationInfo",
    "approve_registration",
    "claim_registration",
    "get_registration",
    "reject_registration",
    "resend_claim",
    "submit_registration",
]


@dataclass(frozen=True, slots=True)
class RegistrationInfo(ApplicationInfo):
    """A registration as a platform admin reviews it."""

    agency: AgencyDetails
    contact: Person
    intended_use: str
    submitted_at: datetime
    agency_id: UUID | None


def _info(row: Registration) -> RegistrationInfo:
    return value_of(
        RegistrationInfo,
        row,
        status=ApplicationStatus(row.status),
        agency=AgencyDetails(
            name=row.agency_name,
            kind=AgencyKind(row.agency_kind),
            country=row.country,
            jurisdiction=row.jurisdiction,
        ),
        contact=applications.applicant(row),
    )


REGISTRATIONS = Flow(
    Registration,
    _info,
    what="registration",
    noun="registration",
    rejected=EntryType.REGISTRATION_REJECT,
    claimed=EntryType.REGISTRATION_CLAIM,
    read=Permission.REGISTRATION_REVIEW,
    received=Registration.submitted_at,
)


def _name_key(name: str) -> str:
    return " ".join(name.casefold().split())


def _duplicate() -> Conflict:
    return Conflict(
        "A registration for this agency and email is already waiting for review.",
        code="duplicate-registration",
    )


def submit_registration(
    work: Work, *, agency: AgencyDetails, contact: Person, intended_use: str
) -> Submitted:
    """Record a pending registration and ``registration:submit``.

    Raises Conflict when the same agency name and email already wait for review.
    """
    key = _name_key(agency.name)
    duplicate = work.session.scalar(
        select(Registration.id).where(
            Registration.status == ApplicationStatus.PENDING.value,
            Registration.agency_name_key == key,
            Registration.email == contact.email,
        )
    )
    if duplicate is not None:
        raise _duplicate()
    row = applications.pending_row(
        REGISTRATIONS,
        contact,
        agency_name=agency.name,
        agency_name_key=key,
        agency_kind=agency.kind.value,
        country=agency.country,
        jurisdiction=agency.jurisdiction,
        intended_use=intended_use,
        submitted_at=work.now,
    )
    try:
        with work.session.begin_nested():
            work.session.add(row)
    except IntegrityError as exc:  # a concurrent twin won the partial unique index
        raise _duplicate() from exc
    work.record(
        EntryType.REGISTRATION_SUBMIT,
        actor=applicant_actor("applicant", row.id),
        payload={
            "registration": str(row.id),
            "agency_kind": agency.kind.value,
            "country": agency.country,
        },
    )
    return Submitted(id=row.id, status=ApplicationStatus.PENDING)


def _reviewed(
    work: Work, principal: Principal, registration_id: UUID, *, lock: bool = False
) -> Registration:
    require_scope(principal, Permission.REGISTRATION_REVIEW)
    return applications.load(work, REGISTRATIONS, registration_id, lock=lock)


def get_registration(
    work: Work, registration_id: UUID, *, principal: Principal
) -> RegistrationInfo:
    """One registration.

    Raises PermissionDenied, NotFound.
    """
    return _info(_reviewed(work, principal, registration_id))


def _agency_grant(work: Work, row: Registration) -> Grant:
    agency = create_agency(work.session, details=_info(row).agency, now=work.now)
    row.agency_id = agency.id
    return Grant(
        role=Role.SUPERVISOR,
        agency_id=agency.id,
        headline=(
            f"The registration of {row.agency_name} was approved; you hold its first account "
            "(supervisor)."
        ),
        entry_type=EntryType.REGISTRATION_APPROVE,
        payload={"agency": str(agency.id), "role": Role.SUPERVISOR.value},
    )


def approve_registration(
    work: Work, registration_id: UUID, *, principal: Principal, reason: str, claims: ClaimPolicy
) -> RegistrationInfo:
    """Approve a pending registration: create the agency and its first supervisor account,
    and mail the claim secret to the contact.

    Raises PermissionDenied, NotFound, Conflict (already decided).
    """
    row = _reviewed(work, principal, registration_id, lock=True)
    applications.approve(
        work, row, REGISTRATIONS, _agency_grant, principal=principal, reason=reason, policy=claims
    )
    return _info(row)


def reject_registration(
    work: Work, registration_id: UUID, *, principal: Principal, reason: str
) -> RegistrationInfo:
    """Reject a pending registration; rejection is final.

    Raises PermissionDenied, NotFound, Conflict (already decided).
    """
    row = _reviewed(work, principal, registration_id, lock=True)
    applications.reject(work, row, REGISTRATIONS, principal=principal, reason=reason, payload={})
    return _info(row)


def claim_registration(
    work: Work, registration_id: UUID, *, claim_secret: str, claims: ClaimPolicy
) -> IssuedCredential:
    """Trade the claim secret of an approved registration for the first API key, once.

    Raises WrongClaim (unknown registration or wrong secret, alike), Conflict (expired, not
    approved yet, rejected, or already claimed).
    """
    return applications.claim(
        work, REGISTRATIONS, registration_id, claim_secret=claim_secret, policy=claims
    )


def resend_claim(
    work: Work, registration_id: UUID, *, principal: Principal, claims: ClaimPolicy
) -> RegistrationInfo:
    """Mail a new claim secret to the contact of an approved, unclaimed registration (the old
    one stops working), after an expiry or a lost message, and record ``claim:reissue``.

    Raises PermissionDenied, NotFound, Conflict (not approved, or already claimed).
    """
    row = _reviewed(work, principal, registration_id, lock=True)
    applications.resend(work, row, REGISTRATIONS, principal=principal, policy=claims)
    return _info(row)
