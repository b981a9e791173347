"""Agencies: created by an approved registration, read within scope, suspended and reinstated.

Suspending an agency stops every credential of every account in it on the next request
(``credentials.authenticate`` checks the agency's status each time).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from uuid import UUID

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from governance.core import recording
from governance.core.errors import Conflict, NotFound
from governance.core.recording import SigningKeys
from governance.identity.accounts import Page
from governance.identity.models import Agency
from governance.identity.permissions import Permission, Scope
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
    "AgencyDetails",
    "AgencyInfo",
    "AgencyKind",
    "create_agency",
    "get_agency",
    "list_agencies",
    "reinstate_agency",
    "suspend_agency",
]


class AgencyKind(StrEnum):
    POLICE = "police"
    PROSECUTION = "prosecution"
    BORDER = "border"
    OTHER = "other"


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
        status="active",
        created_at=now,
        status_changed_at=now,
    )
    session.add(row)
    session.flush()
    return row


def _load(session: Session, actor: Principal, agency_id: UUID, permission: Permission) -> Agency:
    row = session.get(Agency, agency_id)
    if row is None:
        raise NotFound("No such agency.")
    visible(actor, permission, agency_id=row.id, what="agency")
    return row


def get_agency(session: Session, *, actor: Principal, agency_id: UUID) -> AgencyInfo:
    """One agency: any for admins and oversight, one's own for agency members.

    Raises PermissionDenied, NotFound (also for another agency).
    """
    return _info(_load(session, actor, agency_id, Permission.AGENCY_READ))


def list_agencies(
    session: Session,
    *,
    actor: Principal,
    limit: int,
    offset: int,
    status: str | None = None,
) -> Page[AgencyInfo]:
    """Agencies within the caller's reach, oldest first.

    Raises PermissionDenied.
    """
    scope = require_scope(actor, Permission.AGENCY_READ)
    query = select(Agency)
    if scope is not Scope.ANY:
        query = query.where(Agency.id == actor.agency_id)
    if status is not None:
        query = query.where(Agency.status == status)
    total = int(session.scalar(select(func.count()).select_from(query.subquery())) or 0)
    rows = session.scalars(query.order_by(Agency.created_at, Agency.id).limit(limit).offset(offset))
    return Page([_info(r) for r in rows], total, limit, offset)


def _set_status(
    session: Session,
    *,
    actor: Principal,
    agency_id: UUID,
    status: str,
    reason: str,
    keys: SigningKeys,
    now: datetime,
    proposal: UUID | None = None,
) -> AgencyInfo:
    row = _load(session, actor, agency_id, Permission.AGENCY_SUSPEND)
    if status == "suspended" and proposal is None:
        raise TwoAdministratorsRequired("Suspending an agency")
    if row.status == status:
        raise Conflict(f"The agency is already {status}.", code=f"already-{status}")
    row.status = status
    row.status_reason = reason
    row.status_changed_at = now
    recording.record(
        session,
        keys=keys,
        entry_type=(
            EntryType.AGENCY_SUSPEND if status == "suspended" else EntryType.AGENCY_REINSTATE
        ),
        actor=actor_of(actor),
        payload={
            "agency": str(row.id),
            "reason_sha256": reason_digest(reason),
            **({"proposal": str(proposal)} if proposal else {}),
        },
        now=now,
    )
    return _info(row)


def suspend_agency(
    session: Session,
    *,
    actor: Principal,
    agency_id: UUID,
    reason: str,
    keys: SigningKeys,
    now: datetime,
    proposal: UUID | None = None,
) -> AgencyInfo:
    """Suspend an agency: every credential of its accounts stops on its next request. It
    silences the agency's oversight of itself too, so only a confirmed ``proposal`` does it.

    Raises PermissionDenied, NotFound, Conflict (already suspended),
    TwoAdministratorsRequired (without a confirmed proposal).
    """
    return _set_status(
        session,
        actor=actor,
        agency_id=agency_id,
        status="suspended",
        reason=reason,
        keys=keys,
        now=now,
        proposal=proposal,
    )


def reinstate_agency(
    session: Session,
    *,
    actor: Principal,
    agency_id: UUID,
    reason: str,
    keys: SigningKeys,
    now: datetime,
) -> AgencyInfo:
    """Reinstate a suspended agency.

    Raises PermissionDenied, NotFound, Conflict (not suspended).
    """
    return _set_status(
        session,
        actor=actor,
        agency_id=agency_id,
        status="active",
        reason=reason,
        keys=keys,
        now=now,
    )
