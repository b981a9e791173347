"""The application workflow shared by agency registrations and account requests.

An application is pending until an administrator decides it (approved or rejected, final);
approval opens the account and mails the person a one-time claim secret, which the person
trades for the account's first key (claimed). Each kind adds its own checks around these steps
(``registrations``, ``account_requests``) and names itself through its ``Flow``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar
from uuid import UUID

from governance.core.errors import Conflict, NotFound
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
from governance.identity.permissions import Role
from governance.identity.principals import Principal, actor_of, reason_digest
from governance.identity.vocabulary import ApplicationStatus
from ledger.entry import EntryType, format_ts

__all__ = [
    "ACCOUNT_REQUESTS",
    "REGISTRATIONS",
    "Flow",
    "Grant",
    "Submitted",
    "applicant",
    "approve",
    "claim",
    "decide",
    "load",
    "pending_row",
    "reject",
    "resend",
]

Row = TypeVar("Row", Registration, AccountRequest)


@dataclass(frozen=True, slots=True)
class Flow(Generic[Row]):
    """One kind of application: its table, its name in messages, letters and ledger payloads
    (``what``; ``key`` in the payload), and the entry its claim records.
    """

    model: type[Row]
    what: str
    key: str
    claimed: EntryType

    @property
    def label(self) -> str:
        """How messages name it."""
        return self.what.replace("_", " ")


REGISTRATIONS = Flow(Registration, "registration", "registration", EntryType.REGISTRATION_CLAIM)
ACCOUNT_REQUESTS = Flow(AccountRequest, "account_request", "request", EntryType.ACCOUNT_CLAIM)


@dataclass(frozen=True, slots=True)
class Submitted:
    """A submission's receipt: its id and status (the claim secret goes by mail, on approval)."""

    id: UUID
    status: ApplicationStatus


def pending_row(flow: Flow[Row], person: Person, **columns: Any) -> Row:
    """A new pending application naming ``person``, its claim sealed until approval."""
    return flow.model(
        status=ApplicationStatus.PENDING.value,
        first_name=person.first_name,
        last_name=person.last_name,
        phone=person.phone,
        email=person.email,
        job_title=person.job_title,
        claim_hash=sealed_claim_hash(),
        **columns,
    )


def applicant(row: Registration | AccountRequest) -> Person:
    """The person an application names."""
    return Person(
        first_name=row.first_name,
        last_name=row.last_name,
        phone=row.phone,
        email=row.email,
        job_title=row.job_title,
    )


def load(work: Work, flow: Flow[Row], row_id: UUID, *, lock: bool = False) -> Row:
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
    *,
    principal: Principal,
    reason: str,
    status: ApplicationStatus,
    noun: str,
) -> None:
    """Decide a pending application (``noun`` names it in the refusal).

    Raises Conflict (already decided).
    """
    if row.status != ApplicationStatus.PENDING:
        raise Conflict(f"This {noun} was already decided ({row.status}).", code="already-decided")
    row.decide(status, by=principal.account_id, reason=reason, at=work.now)


@dataclass(frozen=True, slots=True)
class Grant:
    """The account an approval opens and the letter that tells the person."""

    role: Role
    agency_id: UUID | None
    headline: str


def approve(
    work: Work,
    row: Row,
    flow: Flow[Row],
    *,
    principal: Principal,
    grant: Grant,
    policy: ClaimPolicy,
    entry_type: EntryType,
    payload: Mapping[str, Any],
) -> Account:
    """Open the account of an application just approved, mail the claim secret to its person
    and record ``entry_type`` with ``payload``, the person, the claim's expiry and the reason.

    Raises PersonHasAccount, LedgerUnavailable.
    """
    account = create_account(
        work.session,
        role=grant.role,
        agency_id=grant.agency_id,
        name=applicant(row).full_name,
        email=row.email,
        phone=row.phone,
        job_title=row.job_title,
        now=work.now,
    )
    row.account_id = account.id
    person = issue_claim(work, row, what=flow.what, headline=grant.headline, policy=policy)
    work.record(
        entry_type,
        actor=actor_of(principal),
        payload={
            flow.key: str(row.id),
            "account": str(account.id),
            **payload,
            "person": person,
            "claim_expires_at": _expiry(work.now, policy),
            "reason_sha256": reason_digest(row.decision_reason or ""),
        },
    )
    return account


def reject(
    work: Work,
    row: Row,
    flow: Flow[Row],
    *,
    principal: Principal,
    entry_type: EntryType,
    payload: Mapping[str, Any],
) -> None:
    """Record the rejection of an application just decided so, with the reason's digest."""
    work.record(
        entry_type,
        actor=actor_of(principal),
        payload={
            flow.key: str(row.id),
            **payload,
            "reason_sha256": reason_digest(row.decision_reason or ""),
        },
    )


def claim(
    work: Work, flow: Flow[Row], row_id: UUID, *, claim_secret: str, policy: ClaimPolicy
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
    work: Work, row: Row, flow: Flow[Row], *, principal: Principal, policy: ClaimPolicy
) -> None:
    """Mail a new claim secret to the person of an approved, unclaimed application (the old one
    stops working) and record ``claim:reissue``.

    Raises Conflict (not approved, or already claimed).
    """
    person = reissue_claim(work, row, what=flow.what, policy=policy)
    work.record(
        EntryType.CLAIM_REISSUE,
        actor=actor_of(principal),
        payload={
            flow.key: str(row.id),
            "account": str(row.account_id),
            "person": person,
            "claim_expires_at": _expiry(work.now, policy),
        },
    )


def _expiry(now: datetime, policy: ClaimPolicy) -> str:
    return format_ts(now + policy.ttl)
