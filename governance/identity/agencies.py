"""Agencies: created by an approved registration, read within scope, suspended and reinstated.

Suspending an agency stops every credential of every account in it on the next request
(``credentials.authenticate`` checks the agency's status each time).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.orm import Session

from governance.core.errors import NotFound
from governance.core.work import Work
from governance.identity.accounts import Page, paginate
from governance.identity.models import Agency
from governance.identity.permissions import Permission, Scope
from governance.identity.principals import (
    Principal,
    TwoAdministratorsRequired,
    require_scope,
    visible,
)
from governance.identity.standing import Entries, change_standing
from governance.identity.vocabulary import AgencyKind, Standing
from ledger.entry import EntryType

__all__ = [
    "AgencyDetails",
    "AgencyInfo",
    "AgencyKind",
    "create_agency",
    "get_agency",
    "list_agencies",
    "reinstate_agency",
    "suspend_agency",
]

_ENTRIES = Entries("agency", EntryType.AGENCY_SUSPEND, EntryType.AGENCY_REINSTATE)


@dataclass(frozen=True, slots=True)
class AgencyDetails:
    """What an applicant says about its agency (already cleaned)."""

    name: str
    kind: AgencyKind
    country: str
    jurisdiction: str


@dataclass(frozen=True, slots=True)
class AgencyInfo:
    """An agency as the API shows it."""

    id: UUID
    name: str
    kind: AgencyKind
    country: str
    jurisdiction: str
    status: str
    status_reason: str | None
    created_at: datetime
    status_changed_at: datetime


def _info(row: Agency) -> AgencyInfo:
    return AgencyInfo(
        id=row.id,
        name=row.name,
        kind=AgencyKind(row.kind),
        country=row.country,
        jurisdiction=row.jurisdiction,
        status=row.status,
        status_reason=row.status_reason,
        created_at=row.created_at,
        status_changed_at=row.status_changed_at,
    )


def create_agency(session: Session, *, details: AgencyDetails, now: datetime) -> Agency:
    """Insert an active agency (the approval that creates it records the act)."""
    row = Agency(
        name=details.name,
        kind=details.kind.value,
        country=details.country,
        jurisdiction=details.jurisdiction,
        status=Standing.ACTIVE.value,
        created_at=now,
        status_changed_at=now,
    )
    session.add(row)
    session.flush()
    return row


def _load(work: Work, principal: Principal, agency_id: UUID, permission: Permission) -> Agency:
    row = work.session.get(Agency, agency_id)
    if row is None:
        raise NotFound("No such agency.")
    visible(principal, permission, agency_id=row.id, what="agency")
    return row


def get_agency(work: Work, *, principal: Principal, agency_id: UUID) -> AgencyInfo:
    """One agency: any for admins and oversight, one's own for agency members.

    Raises PermissionDenied, NotFound (also for another agency).
    """
    return _info(_load(work, principal, agency_id, Permission.AGENCY_READ))


def list_agencies(
    work: Work,
    *,
    principal: Principal,
    limit: int,
    offset: int,
    status: str | None = None,
) -> Page[AgencyInfo]:
    """Agencies within the caller's reach, oldest first.

    Raises PermissionDenied.
    """
    scope = require_scope(principal, Permission.AGENCY_READ)
    query = select(Agency)
    if scope is not Scope.ANY:
        query = query.where(Agency.id == principal.agency_id)
    if status is not None:
        query = query.where(Agency.status == status)
    return paginate(
        work.session,
        query,
        order=(Agency.created_at, Agency.id),
        limit=limit,
        offset=offset,
        info=_info,
    )


def _set_standing(
    work: Work,
    *,
    principal: Principal,
    agency_id: UUID,
    standing: Standing,
    reason: str,
    proposal: UUID | None = None,
) -> AgencyInfo:
    row = _load(work, principal, agency_id, Permission.AGENCY_SUSPEND)
    if standing is Standing.SUSPENDED and proposal is None:
        raise TwoAdministratorsRequired("Suspending an agency")
    change_standing(
        work,
        row,
        principal=principal,
        standing=standing,
        reason=reason,
        entries=_ENTRIES,
        payload={"agency": str(row.id)},
        proposal=proposal,
    )
    return _info(row)


def suspend_agency(
    work: Work, *, principal: Principal, agency_id: UUID, reason: str, proposal: UUID | None
) -> AgencyInfo:
    """Suspend an agency: every credential of its accounts stops on its next request. It
    silences the agency's oversight of itself too, so only a confirmed ``proposal`` does it.

    Raises PermissionDenied, NotFound, Conflict (already suspended),
    TwoAdministratorsRequired (without a confirmed proposal).
    """
    return _set_standing(
        work,
        principal=principal,
        agency_id=agency_id,
        standing=Standing.SUSPENDED,
        reason=reason,
        proposal=proposal,
    )


def reinstate_agency(
    work: Work, *, principal: Principal, agency_id: UUID, reason: str
) -> AgencyInfo:
    """Reinstate a suspended agency.

    Raises PermissionDenied, NotFound, Conflict (not suspended).
    """
    return _set_standing(
        work, principal=principal, agency_id=agency_id, standing=Standing.ACTIVE, reason=reason
    )
