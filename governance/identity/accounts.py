"""Accounts: read them within one's scope, suspend and reinstate them.

Accounts are created by approvals (``governance.identity.applications``) and by
``admin.create_admin``, all through ``create_account``; they are suspended and reinstated
through ``governance.identity.standing`` with ``ACCOUNTS``, and ``credentials.authenticate``
checks the standing on every request.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Unpack
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from governance.core.errors import Conflict, NotFound
from governance.core.listing import Page, Window, filtered_by, paginate
from governance.core.orm import value_of
from governance.core.work import Work
from governance.identity.models import Account
from governance.identity.permissions import AGENCY_ROLES, Permission, Role
from governance.identity.persons import (
    PersonHasAccount,
    person_key,
    refuse_second_account,
    scope_key,
)
from governance.identity.principals import (
    Principal,
    TwoAdministratorsRequired,
    reachable,
    visible,
)
from governance.identity.standing import StandingInfo, Standings
from governance.identity.vocabulary import Standing
from ledger.entry import EntryType

__all__ = [
    "ACCOUNTS",
    "AccountInfo",
    "Page",
    "account_info",
    "create_account",
    "get_account",
    "list_accounts",
    "reach_account",
]


@dataclass(frozen=True, slots=True)
class AccountInfo(StandingInfo):
    """An account as the API shows it."""

    role: Role
    agency_id: UUID | None
    email: str
    phone: str | None
    job_title: str | None


def account_info(row: Account) -> AccountInfo:
    """The value of an account row."""
    return value_of(AccountInfo, row, role=Role(row.role))


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
        status=Standing.ACTIVE.value,
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


def reach_account(
    work: Work, principal: Principal, account_id: UUID, permission: Permission
) -> Account:
    """The account ``account_id``, if it is within the principal's reach for ``permission``.

    Raises PermissionDenied, NotFound (also for another agency's account).
    """
    row = work.session.get(Account, account_id)
    if row is None:
        raise NotFound("No such account.")
    visible(principal, permission, agency_id=row.agency_id, account_id=row.id, what="account")
    return row


def get_account(work: Work, *, principal: Principal, account_id: UUID) -> AccountInfo:
    """One account within the caller's reach.

    Raises PermissionDenied, NotFound (also for another agency's account).
    """
    return account_info(reach_account(work, principal, account_id, Permission.ACCOUNT_READ))


def list_accounts(
    work: Work,
    *,
    principal: Principal,
    agency_id: UUID | None = None,
    role: Role | None = None,
    status: str | None = None,
    **window: Unpack[Window],
) -> Page[AccountInfo]:
    """Accounts within the caller's reach, oldest first, optionally filtered.

    Raises PermissionDenied.
    """
    query = reachable(
        select(Account),
        principal,
        Permission.ACCOUNT_READ,
        agency=Account.agency_id,
        account=Account.id,
    )
    query = filtered_by(query, Account.agency_id, agency_id)
    query = filtered_by(query, Account.role, None if role is None else role.value)
    query = filtered_by(query, Account.status, status).order_by(Account.created_at, Account.id)
    return paginate(work.session, query, account_info, **window)


def _refuse(
    work: Work, row: Account, principal: Principal, standing: Standing, proposal: UUID | None
) -> None:
    suspending = standing is Standing.SUSPENDED
    if suspending and row.role == Role.OVERSIGHT.value and proposal is None:
        raise TwoAdministratorsRequired("Suspending an oversight account")
    if row.id == principal.account_id:
        raise Conflict("You cannot change the status of your own account.", code="own-account")
    if not suspending and row.status != standing.value:
        refuse_second_account(work.session, agency_id=row.agency_id, email=row.email)


def _suspendable(work: Work, principal: Principal, account_id: UUID) -> Account:
    return reach_account(work, principal, account_id, Permission.ACCOUNT_SUSPEND)


def _payload(row: Account) -> dict[str, str | None]:
    return {"account": str(row.id), "agency": str(row.agency_id) if row.agency_id else None}


# Suspending an account stops its keys on their next request; an oversight account is suspended
# only by a confirmed proposal (``governance.identity.proposals``), and nobody changes the
# standing of their own account.
ACCOUNTS = Standings(
    what="account",
    suspended=EntryType.ACCOUNT_SUSPEND,
    reinstated=EntryType.ACCOUNT_REINSTATE,
    load=_suspendable,
    refuse=_refuse,
    payload=_payload,
    info=account_info,
)
