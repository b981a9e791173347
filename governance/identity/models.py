"""The identity domain's tables: agencies, accounts, applications, credentials and proposals."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID, uuid4

from sqlalchemy import (
    CheckConstraint,
    ForeignKey,
    Index,
    LargeBinary,
    String,
    Text,
    Uuid,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from governance.core.orm import Base, UtcDateTime

__all__ = ["Account", "AccountRequest", "Agency", "Credential", "Proposal", "Registration"]

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
