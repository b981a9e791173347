"""Suspend and reinstate, written once for agencies and accounts alike.

A suspended agency or account keeps its rows; ``credentials.authenticate`` refuses its keys on
the next request. Each kind (``agencies.AGENCIES``, ``accounts.ACCOUNTS``) adds its own refusals
before the change (an agency is suspended only by a confirmed proposal; nobody changes their own
account) and names itself in the entry.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar
from uuid import UUID

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from governance.core.errors import Conflict
from governance.core.work import Work
from governance.identity.models import Account, Agency, Credential, CredentialKind
from governance.identity.persons import PersonHasAccount
from governance.identity.principals import Principal, actor_of, reason_digest
from governance.identity.vocabulary import Standing
from ledger.entry import EntryType

__all__ = ["StandingInfo", "Standings", "reinstate", "suspend"]

Row = TypeVar("Row", Agency, Account)
Info = TypeVar("Info")


@dataclass(frozen=True, slots=True)
class StandingInfo:
    """What an agency and an account both show: who it is, and whether it may act."""

    id: UUID
    name: str
    status: str
    status_reason: str | None
    created_at: datetime
    status_changed_at: datetime


@dataclass(frozen=True, slots=True)
class Standings(Generic[Row, Info]):
    """How one kind of object is suspended and reinstated: how it is named and recorded, how
    it is found within the principal's reach, what it refuses first, and its value.
    """

    what: str
    suspended: EntryType
    reinstated: EntryType
    load: Callable[[Work, Principal, UUID], Row]
    refuse: Callable[[Work, Row, Principal, Standing, UUID | None], None]
    payload: Callable[[Row], Mapping[str, Any]]
    info: Callable[[Row], Info]


def suspend(
    work: Work,
    kind: Standings[Row, Info],
    *,
    principal: Principal,
    target_id: UUID,
    reason: str,
    proposal: UUID | None = None,
) -> Info:
    """Suspend an agency or an account: its keys stop working on their next request.

    Raises PermissionDenied, NotFound, Conflict (already suspended), and what the kind refuses
    (TwoAdministratorsRequired without a confirmed ``proposal``; one's own account).
    """
    return _change(work, kind, principal, target_id, Standing.SUSPENDED, reason, proposal)


def reinstate(
    work: Work, kind: Standings[Row, Info], *, principal: Principal, target_id: UUID, reason: str
) -> Info:
    """Reinstate a suspended agency or account.

    Raises PermissionDenied, NotFound, Conflict (not suspended), and what the kind refuses
    (one's own account; PersonHasAccount when the person holds another active account).
    """
    return _change(work, kind, principal, target_id, Standing.ACTIVE, reason, None)


def _change(
    work: Work,
    kind: Standings[Row, Info],
    principal: Principal,
    target_id: UUID,
    standing: Standing,
    reason: str,
    proposal: UUID | None,
) -> Info:
    row = kind.load(work, principal, target_id)
    kind.refuse(work, row, principal, standing, proposal)
    if row.status == standing.value:
        raise Conflict(f"The {kind.what} is already {standing}.", code=f"already-{standing}")
    try:
        with work.session.begin_nested():
            row.status = standing.value
            row.status_reason = reason
            row.status_changed_at = work.now
    except IntegrityError as exc:  # the person's other account was approved meanwhile
        raise PersonHasAccount(
            "This person holds another active account in this agency; suspend it first."
        ) from exc
    if standing is Standing.SUSPENDED:  # its console sessions end for good
        _end_sessions(work, row, by=principal.account_id)
    work.record(
        kind.suspended if standing is Standing.SUSPENDED else kind.reinstated,
        actor=actor_of(principal),
        payload={
            **kind.payload(row),
            "reason_sha256": reason_digest(reason),
            **({"proposal": str(proposal)} if proposal else {}),
        },
    )
    return kind.info(row)


def _end_sessions(work: Work, row: Agency | Account, *, by: UUID) -> None:
    """Revoke the console sessions of a suspended account, or of every account of a suspended
    agency: a reinstatement must not bring them back."""
    accounts = (
        select(Account.id).where(Account.agency_id == row.id)
        if isinstance(row, Agency)
        else select(Account.id).where(Account.id == row.id)
    )
    work.session.execute(
        update(Credential)
        .where(
            Credential.account_id.in_(accounts),
            Credential.kind == CredentialKind.SESSION.value,
            Credential.revoked_at.is_(None),
        )
        .values(revoked_at=work.now, revoked_by=by)
        .execution_options(synchronize_session=False)
    )
