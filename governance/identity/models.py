"""The identity domain's tables: agencies, accounts, applications, credentials and proposals.

Agencies and accounts share their standing columns (``StandingColumns``); registrations, account
requests and proposals their decision columns (``DecisionColumns``); registrations and account
requests, the person and claim columns of an application (``ApplicationColumns``). Every CHECK
on a closed set is derived from its StrEnum (``governance.identity.vocabulary``).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from uuid import UUID, uuid4

from sqlalchemy import (
    BigInteger,
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

from governance.core.orm import Base, UtcDateTime, check_one_of, one_of
from governance.identity.permissions import PLATFORM_ROLES, Role
from governance.identity.vocabulary import (
    AgencyKind,
    ApplicationStatus,
    ProposalStatus,
    ProposedAct,
    Standing,
)

__all__ = [
    "Account",
    "AccountRequest",
    "Agency",
    "ApplicationColumns",
    "Credential",
    "CredentialKind",
    "DecisionColumns",
    "Passkey",
    "Proposal",
    "Registration",
    "StandingColumns",
    "WebAuthnCeremony",
]

_PENDING = ApplicationStatus.PENDING.value


class StandingColumns:
    """Whether an agency or an account may act, since when and why."""

    status: Mapped[str] = mapped_column(String(16), default=Standing.ACTIVE.value)
    status_reason: Mapped[str | None] = mapped_column(Text)
    status_changed_at: Mapped[datetime] = mapped_column(UtcDateTime)


class DecisionColumns:
    """What waits for a decision: its status, and who decided it, when and why."""

    id: Mapped[UUID] = mapped_column(Uuid, primary_key=True, default=uuid4)
    status: Mapped[str] = mapped_column(String(16), default=_PENDING, index=True)
    decided_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    decided_by: Mapped[UUID | None] = mapped_column(ForeignKey("accounts.id"))
    decision_reason: Mapped[str | None] = mapped_column(Text)

    def decide(self, status: StrEnum, *, by: UUID, reason: str, at: datetime) -> None:
        """Record the decision (the caller checked the row was pending)."""
        self.status = status.value
        self.decided_by = by
        self.decided_at = at
        self.decision_reason = reason


def _decision_checks(statuses: type[StrEnum]) -> tuple[CheckConstraint, CheckConstraint]:
    return (
        check_one_of("status", statuses),
        CheckConstraint(
            f"(status = '{_PENDING}') = (decided_at IS NULL)", name="decided_iff_not_pending"
        ),
    )


class ApplicationColumns(DecisionColumns):
    """An application for an account: the person it names, the claim secret's digest, and the
    account it made once approved and when the person claimed it.
    """

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
    account_id: Mapped[UUID | None] = mapped_column(ForeignKey("accounts.id"))
    claimed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class Agency(StandingColumns, Base):
    """An approved agency. Suspension stops every credential of its accounts at once."""

    __tablename__ = "agencies"
    __table_args__ = (
        check_one_of("kind", AgencyKind),
        check_one_of("status", Standing),
    )

    id: Mapped[UUID] = mapped_column(Uuid, primary_key=True, default=uuid4)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(16))
    country: Mapped[str] = mapped_column(String(2))
    jurisdiction: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


_AGENCY_ROLES = (Role.SUPERVISOR, Role.INVESTIGATOR)
# In the enum's order, so the CHECK's text is stable.
_PLATFORM_ROLES = tuple(role for role in Role if role in PLATFORM_ROLES)


class Account(StandingColumns, Base):
    """A person's account. Agency roles need an agency; platform roles must have none.

    ``person_key`` is the holder's normalised e-mail and ``scope_key`` the agency id (or
    ``platform``): one person holds at most one active account per agency, and one on the
    platform, even when two approvals race.
    """

    __tablename__ = "accounts"
    __table_args__ = (
        check_one_of("role", Role),
        check_one_of("status", Standing),
        CheckConstraint(
            f"({one_of('role', _AGENCY_ROLES)} AND agency_id IS NOT NULL) OR "
            f"({one_of('role', _PLATFORM_ROLES)} AND agency_id IS NULL)",
            name="agency_matches_role",
        ),
        Index(
            "uq_accounts_active_person",
            "scope_key",
            "person_key",
            unique=True,
            sqlite_where=text(f"status = '{Standing.ACTIVE.value}'"),
            postgresql_where=text(f"status = '{Standing.ACTIVE.value}'"),
        ),
    )

    id: Mapped[UUID] = mapped_column(Uuid, primary_key=True, default=uuid4)
    role: Mapped[str] = mapped_column(String(16))
    agency_id: Mapped[UUID | None] = mapped_column(ForeignKey("agencies.id"), index=True)
    name: Mapped[str] = mapped_column(String(300))
    email: Mapped[str] = mapped_column(String(254))
    phone: Mapped[str | None] = mapped_column(String(20))
    job_title: Mapped[str | None] = mapped_column(String(200))
    person_key: Mapped[str] = mapped_column(String(254))
    scope_key: Mapped[str] = mapped_column(String(36))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


def _pending_unique(name: str, *columns: str) -> Index:
    where = text(f"status = '{_PENDING}'")
    return Index(name, *columns, unique=True, sqlite_where=where, postgresql_where=where)


class Registration(ApplicationColumns, Base):
    """An agency's application to use the service, with its contact person."""

    __tablename__ = "registrations"
    __table_args__ = (
        *_decision_checks(ApplicationStatus),
        check_one_of("agency_kind", AgencyKind),
        # One pending application per agency name and contact email.
        _pending_unique("uq_registrations_pending", "agency_name_key", "email"),
    )

    agency_name: Mapped[str] = mapped_column(String(200))
    agency_name_key: Mapped[str] = mapped_column(String(200))
    agency_kind: Mapped[str] = mapped_column(String(16))
    country: Mapped[str] = mapped_column(String(2))
    jurisdiction: Mapped[str] = mapped_column(String(200))
    intended_use: Mapped[str] = mapped_column(Text)
    submitted_at: Mapped[datetime] = mapped_column(UtcDateTime)
    agency_id: Mapped[UUID | None] = mapped_column(ForeignKey("agencies.id"))


class AccountRequest(ApplicationColumns, Base):
    """A request for one more account: by a supervisor for its agency, or by an admin for staff.

    Curator requests (no agency) are born approved; oversight requests wait, like agency
    ones, for a second administrator. The claim secret is mailed to the person on approval.
    """

    __tablename__ = "account_requests"
    __table_args__ = (
        check_one_of("role", Role),
        *_decision_checks(ApplicationStatus),
    )

    agency_id: Mapped[UUID | None] = mapped_column(ForeignKey("agencies.id"), index=True)
    requested_by: Mapped[UUID] = mapped_column(ForeignKey("accounts.id"))
    role: Mapped[str] = mapped_column(String(16))
    requested_at: Mapped[datetime] = mapped_column(UtcDateTime)


class CredentialKind(StrEnum):
    """What a bearer secret is: an integration's API key, or a person's console session."""

    API_KEY = "api_key"
    SESSION = "session"


class Credential(Base):
    """A bearer secret ``<prefix>_<lookup_id>_<secret>``; only the SHA-256 of the secret is kept.

    An API key (``fw_``) or a console session (``fws_``, in a cookie): a session is a
    credential, so everything keyed by the caller's credential (rate limits, refusal counts)
    treats both alike. A session's ``expires_at`` is its absolute end and ``last_used_at`` its
    last request, for the idle timeout; signing out revokes it.
    """

    __tablename__ = "credentials"
    __table_args__ = (
        CheckConstraint("expires_at > created_at", name="expires_after_created"),
        check_one_of("kind", CredentialKind),
    )

    id: Mapped[UUID] = mapped_column(Uuid, primary_key=True, default=uuid4)
    kind: Mapped[str] = mapped_column(
        String(16), default=CredentialKind.API_KEY.value, server_default=CredentialKind.API_KEY
    )
    lookup_id: Mapped[str] = mapped_column(String(16), unique=True)
    account_id: Mapped[UUID] = mapped_column(ForeignKey("accounts.id"), index=True)
    secret_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    label: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime)
    last_used_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    revoked_by: Mapped[UUID | None] = mapped_column(ForeignKey("accounts.id"))
    # A session's passkey: revoking the passkey ends the sessions it opened.
    passkey_id: Mapped[UUID | None] = mapped_column(ForeignKey("passkeys.id"))


class Proposal(DecisionColumns, Base):
    """An act that would silence oversight, proposed by one administrator and pending until a
    different person confirms (or rejects) it: the four-eyes rule of legal bases, for admins.
    """

    __tablename__ = "proposals"
    __table_args__ = (
        check_one_of("action", ProposedAct),
        *_decision_checks(ProposalStatus),
        CheckConstraint("decided_by IS NULL OR decided_by <> proposed_by", name="four_eyes"),
        # One pending proposal per act and target.
        _pending_unique("uq_proposals_pending", "action", "target_id"),
    )

    action: Mapped[str] = mapped_column(String(32))
    target_id: Mapped[UUID] = mapped_column(Uuid)
    reason: Mapped[str] = mapped_column(Text)
    proposed_by: Mapped[UUID] = mapped_column(ForeignKey("accounts.id"))
    proposed_at: Mapped[datetime] = mapped_column(UtcDateTime)


class Passkey(Base):
    """A person's WebAuthn credential: its id and COSE public key, never a secret.

    ``sign_count`` is the authenticator's last signature counter (0 for those that keep none);
    a lower one than recorded is refused as a cloned authenticator.
    """

    __tablename__ = "passkeys"

    id: Mapped[UUID] = mapped_column(Uuid, primary_key=True, default=uuid4)
    account_id: Mapped[UUID] = mapped_column(ForeignKey("accounts.id"), index=True)
    credential_id: Mapped[bytes] = mapped_column(LargeBinary(1023), unique=True)
    public_key: Mapped[bytes] = mapped_column(LargeBinary(1023))
    sign_count: Mapped[int] = mapped_column(BigInteger, default=0)
    label: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    last_used_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class WebAuthnCeremony(Base):
    """A challenge handed to a browser, answered at most once before ``expires_at``.

    ``purpose`` is ``sign_in`` (any passkey may answer) or ``enrol``: for the account of
    ``account_id``, or, when claiming, for the application ``claim_id`` of ``claim_kind``.
    """

    __tablename__ = "webauthn_ceremonies"
    __table_args__ = (check_one_of("purpose", ("sign_in", "enrol")),)

    id: Mapped[UUID] = mapped_column(Uuid, primary_key=True, default=uuid4)
    purpose: Mapped[str] = mapped_column(String(16))
    challenge: Mapped[bytes] = mapped_column(LargeBinary(64))
    account_id: Mapped[UUID | None] = mapped_column(ForeignKey("accounts.id"))
    claim_kind: Mapped[str | None] = mapped_column(String(32))
    claim_id: Mapped[UUID | None] = mapped_column(Uuid)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    used_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
