"""Accounts: read them within one's scope, suspend and reinstate them.

Accounts are created by approvals (``registrations``, ``account_requests``) and by
``admin.create_admin``, all through ``create_account``; suspension is checked by
``credentials.authenticate`` on every request.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Generic, TypeVar
from uuid import UUID

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from governance.core import recording
from governance.core.errors import Conflict, NotFound
from governance.core.recording import SigningKeys
from governance.identity.models import Account
from governance.identity.permissions import AGENCY_ROLES, Permission, Role, Scope
from governance.identity.persons import (
    PersonHasAccount,
    person_key,
    refuse_second_account,
    scope_key,
)
from governance.identity.principals import (
    Principal,
    TwoAdministratorsRequired,
    actor_of,
    reason_digest,
    require_scope,
    visible,
)
from ledger.entry import EntryType

__all__ = [
    "AccountInfo",
    "Page",
    "account_info",
    "create_account",
    "get_account",
    "list_accounts",
    "reinstate_account",
    "suspend_account",
]

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of a listing, with the total count of matching objects."""

    items: list[T]
    total: int
    limit: int
    offset: int


@dataclass(frozen=True, slots=True)
class AccountInfo:
    """An account as the API shows it."""

    id: UUID
    role: Role
    agency_id: UUID | None
    status: str
    status_reason: str | None
    name: str
    email: str
    phone: str | None
    job_title: str | None
    created_at: datetime
    status_changed_at: datetime


def account_info(row: Account) -> AccountInfo:
    """The value of an account row."""
    return AccountInfo(
        id=row.id,
        role=Role(row.role),
        agency_id=row.agency_id,
        status=row.status,
        status_reason=row.status_reason,
        name=row.name,
        email=row.email,
        phone=row.phone,
        job_title=row.job_title,
        created_at=row.created_at,
        status_changed_at=row.status_changed_at,
    )


def create_account(
    session: Session,
    *,
    role: Role,
    agency_id: UUID | None,
    name: str,
    email: str,
    phone: str | None,
    job_title: str | None,
    now: datetime,
) -> Account:
    """Insert an active account (callers record the act that created it).

    Raises PersonHasAccount when the person already holds an active account in the agency (or
    on the platform), also when a concurrent approval won the race; ValueError when the role
    and the agency do not go together.
    """
    if (role in AGENCY_ROLES) != (agency_id is not None):
        raise ValueError(f"role {role} {'needs' if role in AGENCY_ROLES else 'excludes'} an agency")
    refuse_second_account(session, agency_id=agency_id, email=email)
    row = Account(
        role=role.value,
        agency_id=agency_id,
        status="active",
        name=name,
        email=email,
        phone=phone,
        job_title=job_title,
        person_key=person_key(email),
        scope_key=scope_key(agency_id),
        created_at=now,
        status_changed_at=now,
    )
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError as exc:  # a concurrent twin won uq_accounts_active_person
        raise PersonHasAccount(
            "This person already holds an active account in this agency: one person holds at "
            "most one active account per agency."
        ) from exc
    return row


def _load(session: Session, actor: Principal, account_id: UUID, permission: Permission) -> Account:
    row = session.get(Account, account_id)
    if row is None:
        raise NotFound("No such account.")
    visible(actor, permission, agency_id=row.agency_id, account_id=row.id, what="account")
    return row


def get_account(session: Session, *, actor: Principal, account_id: UUID) -> AccountInfo:
    """One account within the caller's reach.

    Raises PermissionDenied, NotFound (also for another agency's account).
    """
    return account_info(_load(session, actor, account_id, Permission.ACCOUNT_READ))


def list_accounts(
    session: Session,
    *,
    actor: Principal,
    limit: int,
    offset: int,
    agency_id: UUID | None = None,
    role: Role | None = None,
    status: str | None = None,
) -> Page[AccountInfo]:
    """Accounts within the caller's reach, oldest first, optionally filtered.

    Raises PermissionDenied.
    """
    scope = require_scope(actor, Permission.ACCOUNT_READ)
    query = select(Account)
    if scope is Scope.AGENCY:
        query = query.where(Account.agency_id == actor.agency_id)
    elif scope is Scope.SELF:
        query = query.where(Account.id == actor.account_id)
    if agency_id is not None:
        query = query.where(Account.agency_id == agency_id)
    if role is not None:
        query = query.where(Account.role == role.value)
    if status is not None:
        query = query.where(Account.status == status)
    total = int(session.scalar(select(func.count()).select_from(query.subquery())) or 0)
    rows = session.scalars(
        query.order_by(Account.created_at, Account.id).limit(limit).offset(offset)
    )
    return Page([account_info(r) for r in rows], total, limit, offset)


def _set_status(
    session: Session,
    *,
    actor: Principal,
    account_id: UUID,
    status: str,
    reason: str,
    keys: SigningKeys,
    now: datetime,
    proposal: UUID | None = None,
) -> AccountInfo:
    row = _load(session, actor, account_id, Permission.ACCOUNT_SUSPEND)
    if status == "suspended" and row.role == Role.OVERSIGHT.value and proposal is None:
        raise TwoAdministratorsRequired("Suspending an oversight account")
    if row.id == actor.account_id:
        raise Conflict("You cannot change the status of your own account.", code="own-account")
    if row.status == status:
        raise Conflict(f"The account is already {status}.", code=f"already-{status}")
    if status == "active":
        refuse_second_account(session, agency_id=row.agency_id, email=row.email)
    try:
        with session.begin_nested():
            row.status = status
            row.status_reason = reason
            row.status_changed_at = now
    except IntegrityError as exc:  # the person's other account was approved meanwhile
        raise PersonHasAccount(
            "This person holds another active account in this agency; suspend it first."
        ) from exc
    recording.record(
        session,
        keys=keys,
        entry_type=(
            EntryType.ACCOUNT_SUSPEND if status == "suspended" else EntryType.ACCOUNT_REINSTATE
        ),
        actor=actor_of(actor),
        payload={
            "account": str(row.id),
            "agency": str(row.agency_id) if row.agency_id else None,
            "reason_sha256": reason_digest(reason),
            **({"proposal": str(proposal)} if proposal else {}),
        },
        now=now,
    )
    return account_info(row)


def suspend_account(
    session: Session,
    *,
    actor: Principal,
    account_id: UUID,
    reason: str,
    keys: SigningKeys,
    now: datetime,
    proposal: UUID | None = None,
) -> AccountInfo:
    """Suspend an account: its credentials stop working on their next request. An oversight
    account is suspended only by a confirmed ``proposal`` (``governance.identity.proposals``).

    Raises PermissionDenied, NotFound, Conflict (already suspended, or one's own account),
    TwoAdministratorsRequired (an oversight account, without a confirmed proposal).
    """
    return _set_status(
        session,
        actor=actor,
        account_id=account_id,
        status="suspended",
        reason=reason,
        keys=keys,
        now=now,
        proposal=proposal,
    )


def reinstate_account(
    session: Session,
    *,
    actor: Principal,
    account_id: UUID,
    reason: str,
    keys: SigningKeys,
    now: datetime,
) -> AccountInfo:
    """Reinstate a suspended account.

    Raises PermissionDenied, NotFound, Conflict (not suspended, or one's own account).
    """
    return _set_status(
        session,
        actor=actor,
        account_id=account_id,
        status="active",
        reason=reason,
        keys=keys,
        now=now,
    )
