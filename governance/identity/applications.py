"""The application workflow shared by agency registrations and account requests.

An application is pending until an administrator decides it (approved or rejected, final);
approval opens the account and mails the person a one-time claim secret, which the person
trades for the account's first key (claimed). Each kind adds its own checks around these steps
(``registrations``, ``account_requests``) and names itself through its ``Flow``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar, Unpack
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.orm import InstrumentedAttribute

from governance.core.errors import Conflict, NotFound
from governance.core.listing import Page, Window, filtered_by, paginate
from governance.core.orm import value_of
from governance.core.work import Work
from governance.identity.accounts import create_account
from governance.identity.claims import (
    ClaimPolicy,
    issue_claim,
    redeem_claim,
    reissue_claim,
    sealed_claim_hash,
)
from governance.identity.contact import Person
from governance.identity.credentials import IssuedCredential
from governance.identity.models import Account, AccountRequest, Registration
from governance.identity.permissions import Permission, Role
from governance.identity.principals import Principal, actor_of, reachable, reason_digest
from governance.identity.vocabulary import ApplicationStatus
from ledger.entry import EntryType, format_ts

__all__ = [
    "ApplicationInfo",
    "Flow",
    "Grant",
    "Submitted",
    "applicant",
    "approve",
    "claim",
    "decide",
    "list_applications",
    "load",
    "pending_row",
    "reject",
    "resend",
]

Row = TypeVar("Row", Registration, AccountRequest)
Info = TypeVar("Info")


@dataclass(frozen=True, slots=True)
class Flow(Generic[Row, Info]):
    """One kind of application: its table and its value, its names (``what`` in letters and
    claim messages; ``noun`` in decision messages and as the key of ledger payloads), the
    entries its rejection and its claim record, the permission that lists it and when it was
    received.
    """

    model: type[Row]
    info: Callable[[Row], Info]
    what: str
    noun: str
    rejected: EntryType
    claimed: EntryType
    read: Permission
    received: InstrumentedAttribute[datetime]

    @property
    def label(self) -> str:
        """How messages name it."""
        return self.what.replace("_", " ")


@dataclass(frozen=True, slots=True)
class ApplicationInfo:
    """What every application shows: where it stands, who decided it, and what it opened."""

    id: UUID
    status: ApplicationStatus
    decided_at: datetime | None
    decided_by: UUID | None
    decision_reason: str | None
    account_id: UUID | None
    claimed_at: datetime | None


@dataclass(frozen=True, slots=True)
class Submitted:
    """A submission's receipt: its id and status (the claim secret goes by mail, on approval)."""

    id: UUID
    status: ApplicationStatus


def pending_row(flow: Flow[Row, Info], person: Person, **columns: Any) -> Row:
    """A new pending application naming ``person``, its claim sealed until approval."""
    return flow.model(
        status=ApplicationStatus.PENDING.value,
        **dataclasses.asdict(person),
        claim_hash=sealed_claim_hash(),
        **columns,
    )


def applicant(row: Registration | AccountRequest) -> Person:
    """The person an application names."""
    return value_of(Person, row)


def list_applications(
    work: Work,
    flow: Flow[Row, Info],
    *,
    principal: Principal,
    status: ApplicationStatus | None = None,
    **window: Unpack[Window],
) -> Page[Info]:
    """Applications of ``flow``'s kind within the caller's reach (another agency's stay
    unseen), oldest first, optionally by status.

    Raises PermissionDenied.
    """
    query = reachable(select(flow.model), principal, flow.read, agency=flow.model.agency_id)
    query = filtered_by(query, flow.model.status, None if status is None else status.value)
    query = query.order_by(flow.received, flow.model.id)
    return paginate(work.session, query, flow.info, **window)


def load(work: Work, flow: Flow[Row, Info], row_id: UUID, *, lock: bool = False) -> Row:
    """The application ``row_id`` (row-locked on PostgreSQL when ``lock``, so two concurrent
    decisions or claims cannot both pass their checks; SQLite units of work already hold the
    database write lock).

    Raises NotFound.
    """
    row = work.session.get(flow.model, row_id, with_for_update=lock)
    if row is None:
        raise NotFound(f"No such {flow.label}.")
    return row


def decide(
    work: Work,
    row: Registration | AccountRequest,
    flow: Flow[Any, Any],
    *,
    principal: Principal,
    reason: str,
    status: ApplicationStatus,
) -> None:
    """Decide a pending application.

    Raises Conflict (already decided).
    """
    if row.status != ApplicationStatus.PENDING:
        raise Conflict(
            f"This {flow.noun} was already decided ({row.status}).", code="already-decided"
        )
    row.decide(status, by=principal.account_id, reason=reason, at=work.now)


@dataclass(frozen=True, slots=True)
class Grant:
    """What an approval opens (an account of ``role``, in ``agency_id``), the letter's headline,
    and what it records (``entry_type``, with ``payload`` beside the common fields).
    """

    role: Role
    agency_id: UUID | None
    headline: str
    entry_type: EntryType
    payload: Mapping[str, Any]


def approve(
    work: Work,
    row: Row,
    flow: Flow[Row, Info],
    grant: Callable[[Work, Row], Grant],
    *,
    principal: Principal,
    reason: str,
    policy: ClaimPolicy,
) -> Account:
    """Approve a pending application: open the account ``grant`` names (it is asked once the
    decision is taken), mail the claim secret to the person and record the approval with the
    person, the claim's expiry and the reason's digest.

    Raises Conflict (already decided, or what ``grant`` raises), PersonHasAccount,
    LedgerUnavailable.
    """
    decide(work, row, flow, principal=principal, reason=reason, status=ApplicationStatus.APPROVED)
    granted = grant(work, row)
    account = create_account(
        work.session,
        role=granted.role,
        agency_id=granted.agency_id,
        name=applicant(row).full_name,
        email=row.email,
        phone=row.phone,
        job_title=row.job_title,
        now=work.now,
    )
    row.account_id = account.id
    person = issue_claim(work, row, what=flow.what, headline=granted.headline, policy=policy)
    extra = {**granted.payload, "reason_sha256": reason_digest(reason)}
    _record_claim(work, granted.entry_type, row, flow, principal, person, policy, extra)
    return account


def reject(
    work: Work,
    row: Row,
    flow: Flow[Row, Info],
    *,
    principal: Principal,
    reason: str,
    payload: Mapping[str, Any],
) -> None:
    """Reject a pending application (final) and record it with ``payload`` and the reason's
    digest.

    Raises Conflict (already decided).
    """
    decide(work, row, flow, principal=principal, reason=reason, status=ApplicationStatus.REJECTED)
    work.record(
        flow.rejected,
        actor=actor_of(principal),
        payload={flow.noun: str(row.id), **payload, "reason_sha256": reason_digest(reason)},
    )


def claim(
    work: Work, flow: Flow[Row, Info], row_id: UUID, *, claim_secret: str, policy: ClaimPolicy
) -> IssuedCredential:
    """Trade the claim secret of an approved application for its account's first key, once.

    Raises WrongClaim (unknown id or wrong secret, alike), Conflict (expired, not approved yet,
    rejected, or already claimed).
    """
    row = work.session.get(flow.model, row_id, with_for_update=True)
    return redeem_claim(
        work,
        row=row,
        what=flow.what,
        claim_secret=claim_secret,
        entry_type=flow.claimed,
        policy=policy,
    )


def resend(
    work: Work, row: Row, flow: Flow[Row, Info], *, principal: Principal, policy: ClaimPolicy
) -> None:
    """Mail a new claim secret to the person of an approved, unclaimed application (the old one
    stops working) and record ``claim:reissue``.

    Raises Conflict (not approved, or already claimed).
    """
    person = reissue_claim(work, row, what=flow.what, policy=policy)
    _record_claim(work, EntryType.CLAIM_REISSUE, row, flow, principal, person, policy, {})


def _record_claim(
    work: Work,
    entry_type: EntryType,
    row: Row,
    flow: Flow[Row, Info],
    principal: Principal,
    person: str,
    policy: ClaimPolicy,
    extra: Mapping[str, Any],
) -> None:
    """Record the claim secret just mailed to ``person``: for which application and account,
    until when it may be claimed, and what else ``extra`` says.
    """
    work.record(
        entry_type,
        actor=actor_of(principal),
        payload={
            flow.noun: str(row.id),
            "account": str(row.account_id),
            "person": person,
            "claim_expires_at": format_ts(work.now + policy.ttl),
            **extra,
        },
    )
