"""Agencies: created by an approved registration, read within scope, suspended and reinstated.

Suspending an agency (``governance.identity.standing`` with ``AGENCIES``) stops every credential
of every account in it on the next request (``credentials.authenticate`` checks the agency's
status each time).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Unpack
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.orm import Session

from governance.core.errors import NotFound
from governance.core.listing import Page, Window, filtered_by, paginate
from governance.core.orm import value_of
from governance.core.work import Work
from governance.identity.models import Agency
from governance.identity.permissions import Permission
from governance.identity.principals import (
    Principal,
    TwoAdministratorsRequired,
    reachable,
    visible,
)
from governance.identity.standing import StandingInfo, Standings
from governance.identity.vocabulary import AgencyKind, Standing
from ledger.entry import EntryType

__all__ = [
    "AGENCIES",
    "AgencyDetails",
    "AgencyInfo",
    "AgencyKind",
    "create_agency",
    "get_agency",
    "list_agencies",
]


@dataclass(frozen=True, slots=True)
class AgencyDetails:
    """What an applicant says about its agency (already cleaned)."""

    name: str
    kind: AgencyKind
    country: str
    jurisdiction: str


@dataclass(frozen=True, slots=True)
class AgencyInfo(StandingInfo):
    """An agency as the API shows it."""

    kind: AgencyKind
    country: str
    jurisdiction: str


def _info(row: Agency) -> AgencyInfo:
    return value_of(AgencyInfo, row, kind=AgencyKind(row.kind))


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
    status: str | None = None,
    **window: Unpack[Window],
) -> Page[AgencyInfo]:
    """Agencies within the caller's reach, oldest first.

    Raises PermissionDenied.
    """
    query = reachable(select(Agency), principal, Permission.AGENCY_READ, agency=Agency.id)
    query = filtered_by(query, Agency.status, status).order_by(Agency.created_at, Agency.id)
    return paginate(work.session, query, _info, **window)


def _refuse(
    work: Work, row: Agency, principal: Principal, standing: Standing, proposal: UUID | None
) -> None:
    if standing is Standing.SUSPENDED and proposal is None:
        raise TwoAdministratorsRequired("Suspending an agency")


def _suspendable(work: Work, principal: Principal, agency_id: UUID) -> Agency:
    return _load(work, principal, agency_id, Permission.AGENCY_SUSPEND)


def _payload(row: Agency) -> dict[str, str]:
    return {"agency": str(row.id)}


# Suspending an agency stops every key of its accounts on its next request. It silences the
# agency's oversight of itself too, so only a confirmed proposal does it.
AGENCIES = Standings(
    what="agency",
    suspended=EntryType.AGENCY_SUSPEND,
    reinstated=EntryType.AGENCY_REINSTATE,
    load=_suspendable,
    refuse=_refuse,
    payload=_payload,
    info=_info,
)
