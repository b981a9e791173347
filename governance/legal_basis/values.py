"""The values of legal bases that cross package boundaries: states, kinds, drafts, views, uses.

The API builds drafts from requests and renders ``BasisInfo``; the search service records a
``BasisUse`` with every search.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING
from uuid import UUID

from governance.core.orm import value_of
from governance.legal_basis.offences import OffenceCatalogue

if TYPE_CHECKING:  # the table's constraints are derived from the enums below
    from governance.legal_basis.models import LegalBasis

__all__ = [
    "JUSTIFICATION_MIN_CHARS",
    "Authorisation",
    "AuthorisationKind",
    "BasisDraft",
    "BasisInfo",
    "BasisPolicy",
    "BasisStatus",
    "BasisUse",
    "Decision",
    "LapseCause",
    "Ratification",
    "RatificationInfo",
    "RatificationOutcome",
    "Transition",
    "Verdict",
    "basis_info",
]

# A justification shorter than this cannot say why a face search is necessary and proportionate.
JUSTIFICATION_MIN_CHARS = 50


class BasisStatus(StrEnum):
    """Where a legal basis stands. Only ``approved`` ones can be used.

    ``exhausted`` is what an approved basis with no searches left shows; it is never stored
    (the row stays ``approved``, so a revocation or an expiry still applies to it).
    """

    PENDING = "pending"
    APPROVED = "approved"
    EXHAUSTED = "exhausted"
    REJECTED = "rejected"
    REVOKED = "revoked"
    EXPIRED = "expired"
    LAPSED = "lapsed"


class AuthorisationKind(StrEnum):
    """Who authorised the searches: a court, an administrative authority, or urgency."""

    JUDICIAL = "judicial"
    ADMINISTRATIVE = "administrative"
    URGENT = "urgent"


class RatificationOutcome(StrEnum):
    """What the authority said of an urgent basis afterwards."""

    GRANTED = "granted"
    REFUSED = "refused"


class LapseCause(StrEnum):
    """Why an urgent basis lapsed."""

    DEADLINE = "deadline"
    REFUSED = "refused"


class Verdict(StrEnum):
    """A supervisor's decision on a basis: approve or reject a pending one, revoke a live one."""

    APPROVE = "approve"
    REJECT = "reject"
    REVOKE = "revoke"


@dataclass(frozen=True, slots=True)
class BasisPolicy:
    """The deployment's rules for legal bases (built from the settings by the caller)."""

    offences: OffenceCatalogue
    max_searches: int = 50
    max_validity: timedelta = timedelta(days=180)
    ratification_window: timedelta = timedelta(hours=48)


@dataclass(frozen=True, slots=True)
class Authorisation:
    """The authorisation relied on; an urgent one has no reference or authority until ratified."""

    kind: AuthorisationKind
    reference: str | None
    authority: str | None
    issued_at: datetime
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class BasisDraft:
    """What an investigator or supervisor records."""

    case_number: str
    offence_category: str
    legal_provision: str
    authorisation: Authorisation
    justification: str
    max_searches: int


@dataclass(frozen=True, slots=True)
class Ratification:
    """A ratification decision: granted with the authorisation's details, or refused."""

    outcome: RatificationOutcome
    reference: str | None = None
    authority: str | None = None
    issued_at: datetime | None = None
    expires_at: datetime | None = None
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class Decision:
    """An approval, rejection or revocation: when, by whom, why."""

    at: datetime
    by: UUID | None
    reason: str | None


@dataclass(frozen=True, slots=True)
class RatificationInfo:
    """The ratification an urgent basis needs: its deadline and, once recorded, the outcome."""

    deadline: datetime
    outcome: RatificationOutcome | None
    recorded_at: datetime | None
    recorded_by: UUID | None
    reason: str | None


@dataclass(frozen=True, slots=True)
class BasisInfo(BasisDraft):
    """A legal basis as its agency and oversight read it: what was recorded (the draft's
    fields), and where it stands."""

    id: UUID
    agency_id: UUID
    status: BasisStatus
    usable: bool
    searches_used: int
    searches_left: int
    expires_at: datetime
    ratification_deadline: datetime | None
    created_at: datetime
    created_by: UUID
    decision: Decision | None
    ratification: RatificationInfo | None
    revocation: Decision | None
    expired_at: datetime | None
    lapsed_at: datetime | None
    lapse_cause: LapseCause | None
    results_deleted: int | None


@dataclass(frozen=True, slots=True)
class BasisUse:
    """What one search consumed, for its ledger entry: the basis and the quota after it."""

    basis_id: UUID
    agency_id: UUID
    case_number: str
    offence_category: str
    authorisation_kind: AuthorisationKind
    authorisation_reference: str | None
    searches_used: int
    searches_left: int


@dataclass(frozen=True, slots=True)
class Transition:
    """A deadline applied by a settle or a sweep: the basis and the state it entered."""

    basis_id: UUID
    agency_id: UUID
    case_number: str
    status: BasisStatus
    results_deleted: int | None


def basis_info(row: LegalBasis, now: datetime) -> BasisInfo:
    """The view of ``row`` (already settled at ``now``)."""
    status = BasisStatus(row.status)
    left = row.max_searches - row.searches_used
    if status is BasisStatus.APPROVED and left <= 0:
        status = BasisStatus.EXHAUSTED
    ratification = None
    if row.ratification_deadline is not None:
        ratification = RatificationInfo(
            deadline=row.ratification_deadline,
            outcome=RatificationOutcome(row.ratification_outcome)
            if row.ratification_outcome
            else None,
            recorded_at=row.ratified_at,
            recorded_by=row.ratified_by,
            reason=row.ratification_reason,
        )
    return value_of(
        BasisInfo,
        row,
        status=status,
        usable=status is BasisStatus.APPROVED and left > 0 and row.expires_at > now,
        authorisation=Authorisation(
            kind=AuthorisationKind(row.authorisation_kind),
            reference=row.authorisation_reference,
            authority=row.authorising_authority,
            issued_at=row.authorisation_issued_at,
            expires_at=row.expires_at,
        ),
        searches_left=left,
        decision=Decision(row.decided_at, row.decided_by, row.decision_reason)
        if row.decided_at
        else None,
        ratification=ratification,
        revocation=Decision(row.revoked_at, row.revoked_by, row.revocation_reason)
        if row.revoked_at
        else None,
        lapse_cause=LapseCause(row.lapse_cause) if row.lapse_cause else None,
    )
