"""The legal-basis table: case, offence, authorisation, quota and decisions."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID, uuid4

from sqlalchemy import (
    CheckConstraint,
    ForeignKey,
    Integer,
    String,
    Text,
    Uuid,
)
from sqlalchemy.orm import Mapped, mapped_column

from governance.core.orm import Base, UtcDateTime, check_one_of, one_of
from governance.legal_basis.values import (
    AuthorisationKind,
    BasisStatus,
    LapseCause,
    RatificationOutcome,
)

__all__ = ["LegalBasis"]

# ``exhausted`` is what an approved basis with no searches left shows; it is never stored.
_STORED = [s for s in BasisStatus if s is not BasisStatus.EXHAUSTED]
_DECIDED = f"('{BasisStatus.APPROVED}', '{BasisStatus.REJECTED}')"
_URGENT = f"authorisation_kind = '{AuthorisationKind.URGENT}'"


class LegalBasis(Base):
    """The recorded legal basis a search runs under: case, offence, authorisation, quota.

    The database holds the four-eyes rule and the quota too: the decider is never the author,
    and ``searches_used`` never passes ``max_searches``. An urgent basis carries its
    ratification deadline; the others carry their authorisation's reference and authority.
    """

    __tablename__ = "legal_bases"
    __table_args__ = (
        check_one_of("status", _STORED),
        check_one_of("authorisation_kind", AuthorisationKind),
        CheckConstraint(
            "max_searches > 0 AND searches_used >= 0 AND searches_used <= max_searches",
            name="quota",
        ),
        CheckConstraint("expires_at > authorisation_issued_at", name="expires_after_issued"),
        CheckConstraint(
            f"{_URGENT} OR (authorisation_reference IS NOT NULL "
            "AND authorising_authority IS NOT NULL)",
            name="authorisation_named",
        ),
        CheckConstraint(
            f"({_URGENT}) = (ratification_deadline IS NOT NULL)", name="deadline_iff_urgent"
        ),
        CheckConstraint(
            "ratification_outcome IS NULL OR "
            + one_of("ratification_outcome", RatificationOutcome),
            name="ratification_outcome",
        ),
        CheckConstraint(
            "lapse_cause IS NULL OR " + one_of("lapse_cause", LapseCause), name="lapse_cause"
        ),
        CheckConstraint("decided_by IS NULL OR decided_by <> created_by", name="four_eyes"),
        CheckConstraint(f"status NOT IN {_DECIDED} OR decided_at IS NOT NULL", name="decided"),
    )

    id: Mapped[UUID] = mapped_column(Uuid, primary_key=True, default=uuid4)
    agency_id: Mapped[UUID] = mapped_column(ForeignKey("agencies.id"), index=True)
    created_by: Mapped[UUID] = mapped_column(ForeignKey("accounts.id"))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    status: Mapped[str] = mapped_column(String(16), default=BasisStatus.PENDING.value, index=True)
    case_number: Mapped[str] = mapped_column(String(64))
    offence_category: Mapped[str] = mapped_column(String(64))
    legal_provision: Mapped[str] = mapped_column(String(500))
    authorisation_kind: Mapped[str] = mapped_column(String(16))
    authorisation_reference: Mapped[str | None] = mapped_column(String(200))
    authorising_authority: Mapped[str | None] = mapped_column(String(200))
    authorisation_issued_at: Mapped[datetime] = mapped_column(UtcDateTime)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime)
    justification: Mapped[str] = mapped_column(Text)
    max_searches: Mapped[int] = mapped_column(Integer)
    searches_used: Mapped[int] = mapped_column(Integer, default=0)
    decided_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    decided_by: Mapped[UUID | None] = mapped_column(ForeignKey("accounts.id"))
    decision_reason: Mapped[str | None] = mapped_column(Text)
    ratification_deadline: Mapped[datetime | None] = mapped_column(UtcDateTime)
    ratification_outcome: Mapped[str | None] = mapped_column(String(16))
    ratified_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    ratified_by: Mapped[UUID | None] = mapped_column(ForeignKey("accounts.id"))
    ratification_reason: Mapped[str | None] = mapped_column(Text)
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    revoked_by: Mapped[UUID | None] = mapped_column(ForeignKey("accounts.id"))
    revocation_reason: Mapped[str | None] = mapped_column(Text)
    expired_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    lapsed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    lapse_cause: Mapped[str | None] = mapped_column(String(16))
    results_deleted: Mapped[int | None] = mapped_column(Integer)
