"""SQLAlchemy models of the governance core. The ledger's tables live in ``ledger.storage``.

Statuses and roles are short strings guarded by CHECK constraints (portable across SQLite and
PostgreSQL); secrets are stored only as SHA-256 digests; every timestamp is aware UTC.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

from sqlalchemy import (
    CheckConstraint,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
    Uuid,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = [
    "Account",
    "AccountRequest",
    "Agency",
    "Base",
    "Credential",
    "LegalBasis",
    "MailMessage",
    "Proposal",
    "Registration",
    "UtcDateTime",
]

# Deterministic constraint names, so migrations name what they create on every database.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class UtcDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC timestamp on every database (SQLite drops the offset otherwise)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are refused: pass an aware UTC datetime")
        return value.astimezone(UTC)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


_ROLES = "('admin', 'oversight', 'supervisor', 'investigator', 'curator')"
_DECISIONS = "('pending', 'approved', 'rejected', 'claimed')"
_KINDS = "('police', 'prosecution', 'border', 'other')"


class Agency(Base):
    """An approved agency. Suspension stops every credential of its accounts at once."""

    __tablename__ = "agencies"
    __table_args__ = (
        CheckConstraint(f"kind IN {_KINDS}", name="kind"),
        CheckConstraint("status IN ('active', 'suspended')", name="status"),
    )

    id: Mapped[UUID] = mapped_column(Uuid, primary_key=True, default=uuid4)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(16))
    country: Mapped[str] = mapped_column(String(2))
    jurisdiction: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16), default="active")
    status_reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    status_changed_at: Mapped[datetime] = mapped_column(UtcDateTime)


class Account(Base):
    """A person's account. Agency roles need an agency; platform roles must have none.

    ``person_key`` is the holder's normalised e-mail and ``scope_key`` the agency id (or
    ``platform``): one person holds at most one active account per agency, and one on the
    platform, even when two approvals race.
    """

    __tablename__ = "accounts"
    __table_args__ = (
        CheckConstraint(f"role IN {_ROLES}", name="role"),
        CheckConstraint("status IN ('active', 'suspended')", name="status"),
        CheckConstraint(
            "(role IN ('supervisor', 'investigator') AND agency_id IS NOT NULL) OR "
            "(role IN ('admin', 'oversight', 'curator') AND agency_id IS NULL)",
            name="agency_matches_role",
        ),
        Index(
            "uq_accounts_active_person",
            "scope_key",
            "person_key",
            unique=True,
            sqlite_where=text("status = 'active'"),
            postgresql_where=text("status = 'active'"),
        ),
    )

    id: Mapped[UUID] = mapped_column(Uuid, primary_key=True, default=uuid4)
    role: Mapped[str] = mapped_column(String(16))
    agency_id: Mapped[UUID | None] = mapped_column(ForeignKey("agencies.id"), index=True)
    status: Mapped[str] = mapped_column(String(16), default="active")
    status_reason: Mapped[str | None] = mapped_column(Text)
    name: Mapped[str] = mapped_column(String(300))
    email: Mapped[str] = mapped_column(String(254))
    phone: Mapped[str | None] = mapped_column(String(20))
    job_title: Mapped[str | None] = mapped_column(String(200))
    person_key: Mapped[str] = mapped_column(String(254))
    scope_key: Mapped[str] = mapped_column(String(36))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    status_changed_at: Mapped[datetime] = mapped_column(UtcDateTime)


class Registration(Base):
    """An agency's application to use the service, with its contact person."""

    __tablename__ = "registrations"
    __table_args__ = (
        CheckConstraint(f"status IN {_DECISIONS}", name="status"),
        CheckConstraint(f"agency_kind IN {_KINDS}", name="agency_kind"),
        CheckConstraint(
            "(status = 'pending') = (decided_at IS NULL)", name="decided_iff_not_pending"
        ),
        # One pending application per agency name and contact email.
        Index(
            "uq_registrations_pending",
            "agency_name_key",
            "email",
            unique=True,
            sqlite_where=text("status = 'pending'"),
            postgresql_where=text("status = 'pending'"),
        ),
    )

    id: Mapped[UUID] = mapped_column(Uuid, primary_key=True, default=uuid4)
    status: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    agency_name: Mapped[str] = mapped_column(String(200))
    agency_name_key: Mapped[str] = mapped_column(String(200))
    agency_kind: Mapped[str] = mapped_column(String(16))
    country: Mapped[str] = mapped_column(String(2))
    jurisdiction: Mapped[str] = mapped_column(String(200))
    first_name: Mapped[str] = mapped_column(String(100))
    last_name: Mapped[str] = mapped_column(String(100))
    phone: Mapped[str] = mapped_column(String(20))
    email: Mapped[str] = mapped_column(String(254))
    job_title: Mapped[str] = mapped_column(String(200))
    intended_use: Mapped[str] = mapped_column(Text)
    # The claim secret is made on approval and mailed to the person named here; only its
    # digest is kept, with whom it was issued to and until when it may be claimed. Until then
    # the digest is of a discarded random secret, and ``claim_expires_at`` is NULL.
    claim_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    claim_issued_to: Mapped[str | None] = mapped_column(String(254))
    claim_expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    submitted_at: Mapped[datetime] = mapped_column(UtcDateTime)
    decided_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    decided_by: Mapped[UUID | None] = mapped_column(ForeignKey("accounts.id"))
    decision_reason: Mapped[str | None] = mapped_column(Text)
    agency_id: Mapped[UUID | None] = mapped_column(ForeignKey("agencies.id"))
    account_id: Mapped[UUID | None] = mapped_column(ForeignKey("accounts.id"))
    claimed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class AccountRequest(Base):
    """A request for one more account: by a supervisor for its agency, or by an admin for staff.

    Curator requests (no agency) are born approved; oversight requests wait, like agency
    ones, for a second administrator. The claim secret is mailed to the person on approval.
    """

    __tablename__ = "account_requests"
    __table_args__ = (
        CheckConstraint(f"role IN {_ROLES}", name="role"),
        CheckConstraint(f"status IN {_DECISIONS}", name="status"),
        CheckConstraint(
            "(status = 'pending') = (decided_at IS NULL)", name="decided_iff_not_pending"
        ),
    )

    id: Mapped[UUID] = mapped_column(Uuid, primary_key=True, default=uuid4)
    status: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    agency_id: Mapped[UUID | None] = mapped_column(ForeignKey("agencies.id"), index=True)
    requested_by: Mapped[UUID] = mapped_column(ForeignKey("accounts.id"))
    role: Mapped[str] = mapped_column(String(16))
    first_name: Mapped[str] = mapped_column(String(100))
    last_name: Mapped[str] = mapped_column(String(100))
    phone: Mapped[str] = mapped_column(String(20))
    email: Mapped[str] = mapped_column(String(254))
    job_title: Mapped[str] = mapped_column(String(200))
    # The claim secret is made on approval and mailed to the person named here; only its
    # digest is kept, with whom it was issued to and until when it may be claimed. Until then
    # the digest is of a discarded random secret, and ``claim_expires_at`` is NULL.
    claim_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    claim_issued_to: Mapped[str | None] = mapped_column(String(254))
    claim_expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    requested_at: Mapped[datetime] = mapped_column(UtcDateTime)
    decided_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    decided_by: Mapped[UUID | None] = mapped_column(ForeignKey("accounts.id"))
    decision_reason: Mapped[str | None] = mapped_column(Text)
    account_id: Mapped[UUID | None] = mapped_column(ForeignKey("accounts.id"))
    claimed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class Credential(Base):
    """An API key ``fw_<lookup_id>_<secret>``; only the SHA-256 of the secret is kept."""

    __tablename__ = "credentials"
    __table_args__ = (CheckConstraint("expires_at > created_at", name="expires_after_created"),)

    id: Mapped[UUID] = mapped_column(Uuid, primary_key=True, default=uuid4)
    lookup_id: Mapped[str] = mapped_column(String(16), unique=True)
    account_id: Mapped[UUID] = mapped_column(ForeignKey("accounts.id"), index=True)
    secret_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    label: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime)
    last_used_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    revoked_by: Mapped[UUID | None] = mapped_column(ForeignKey("accounts.id"))


_BASIS_STATUSES = "('pending', 'approved', 'rejected', 'revoked', 'expired', 'lapsed')"


class LegalBasis(Base):
    """The recorded legal basis a search runs under: case, offence, authorisation, quota.

    The database holds the four-eyes rule and the quota too: the decider is never the author,
    and ``searches_used`` never passes ``max_searches``. An urgent basis carries its
    ratification deadline; the others carry their authorisation's reference and authority.
    """

    __tablename__ = "legal_bases"
    __table_args__ = (
        CheckConstraint(f"status IN {_BASIS_STATUSES}", name="status"),
        CheckConstraint(
            "authorisation_kind IN ('judicial', 'administrative', 'urgent')",
            name="authorisation_kind",
        ),
        CheckConstraint(
            "max_searches > 0 AND searches_used >= 0 AND searches_used <= max_searches",
            name="quota",
        ),
        CheckConstraint("expires_at > authorisation_issued_at", name="expires_after_issued"),
        CheckConstraint(
            "authorisation_kind = 'urgent' OR (authorisation_reference IS NOT NULL "
            "AND authorising_authority IS NOT NULL)",
            name="authorisation_named",
        ),
        CheckConstraint(
            "(authorisation_kind = 'urgent') = (ratification_deadline IS NOT NULL)",
            name="deadline_iff_urgent",
        ),
        CheckConstraint(
            "ratification_outcome IS NULL OR ratification_outcome IN ('granted', 'refused')",
            name="ratification_outcome",
        ),
        CheckConstraint(
            "lapse_cause IS NULL OR lapse_cause IN ('deadline', 'refused')", name="lapse_cause"
        ),
        CheckConstraint("decided_by IS NULL OR decided_by <> created_by", name="four_eyes"),
        CheckConstraint(
            "status NOT IN ('approved', 'rejected') OR decided_at IS NOT NULL", name="decided"
        ),
    )

    id: Mapped[UUID] = mapped_column(Uuid, primary_key=True, default=uuid4)
    agency_id: Mapped[UUID] = mapped_column(ForeignKey("agencies.id"), index=True)
    created_by: Mapped[UUID] = mapped_column(ForeignKey("accounts.id"))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    status: Mapped[str] = mapped_column(String(16), default="pending", index=True)
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


_PROPOSED_ACTS = "('account:suspend', 'credential:revoke', 'agency:suspend')"


class Proposal(Base):
    """An act that would silence oversight, proposed by one administrator and pending until a
    different person confirms (or rejects) it: the four-eyes rule of legal bases, for admins.
    """

    __tablename__ = "proposals"
    __table_args__ = (
        CheckConstraint(f"action IN {_PROPOSED_ACTS}", name="action"),
        CheckConstraint("status IN ('pending', 'confirmed', 'rejected')", name="status"),
        CheckConstraint(
            "(status = 'pending') = (decided_at IS NULL)", name="decided_iff_not_pending"
        ),
        CheckConstraint("decided_by IS NULL OR decided_by <> proposed_by", name="four_eyes"),
        # One pending proposal per act and target.
        Index(
            "uq_proposals_pending",
            "action",
            "target_id",
            unique=True,
            sqlite_where=text("status = 'pending'"),
            postgresql_where=text("status = 'pending'"),
        ),
    )

    id: Mapped[UUID] = mapped_column(Uuid, primary_key=True, default=uuid4)
    action: Mapped[str] = mapped_column(String(32))
    target_id: Mapped[UUID] = mapped_column(Uuid)
    status: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    reason: Mapped[str] = mapped_column(Text)
    proposed_by: Mapped[UUID] = mapped_column(ForeignKey("accounts.id"))
    proposed_at: Mapped[datetime] = mapped_column(UtcDateTime)
    decided_by: Mapped[UUID | None] = mapped_column(ForeignKey("accounts.id"))
    decided_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    decision_reason: Mapped[str | None] = mapped_column(Text)


class MailMessage(Base):
    """A message queued in the transaction of the act it announces, delivered after commit.

    The body (it may hold a claim secret) is erased once the message is delivered; a failed
    delivery keeps it, with the attempts and the last error, for the next delivery run.
    """

    __tablename__ = "mail_outbox"

    id: Mapped[UUID] = mapped_column(Uuid, primary_key=True, default=uuid4)
    recipient: Mapped[str] = mapped_column(String(254))
    subject: Mapped[str] = mapped_column(String(200))
    body: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UtcDateTime, index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_attempt_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
