"""API credentials: issue, authenticate, list, revoke.

A key is ``fw_<lookup_id>_<secret>`` (see ``governance.identity.tokens``). ``authenticate`` runs on
every request and re-reads the credential, its account and its agency each time, so a revocation or
a suspension takes effect on the very next request; nothing is cached.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.orm import Session

from governance.core.errors import Conflict, NotFound, PermissionDenied, Unauthenticated
from governance.core.orm import table_of, value_of
from governance.core.work import Work
from governance.identity.accounts import reach_account
from governance.identity.models import Account, Agency, Credential, CredentialKind
from governance.identity.permissions import Permission, Role
from governance.identity.principals import Principal, TwoAdministratorsRequired, actor_of, visible
from governance.identity.tokens import digest, matches, new_api_key, parse_api_key
from ledger.entry import Actor, EntryType, format_ts

LAST_USED_PRECISION = timedelta(minutes=1)
_CREDENTIALS = table_of(Credential)
_ACCOUNTS = table_of(Account)
_AGENCIES = table_of(Agency)
# One Core query for the key, its account and agency: it runs on every request, so it is built
# once (building a statement costs more than SQLite takes to run it).
_KEY_LOOKUP = (
    select(
        _CREDENTIALS.c.id,
        _CREDENTIALS.c.secret_hash,
        _CREDENTIALS.c.expires_at,
        _CREDENTIALS.c.revoked_at,
        _CREDENTIALS.c.last_used_at,
        _ACCOUNTS.c.id.label("account_id"),
        _ACCOUNTS.c.role,
        _ACCOUNTS.c.agency_id,
        _ACCOUNTS.c.status,
        _AGENCIES.c.status.label("agency_status"),
    )
    .join(_ACCOUNTS, _ACCOUNTS.c.id == _CREDENTIALS.c.account_id)
    .outerjoin(_AGENCIES, _AGENCIES.c.id == _ACCOUNTS.c.agency_id)
    .where(_CREDENTIALS.c.lookup_id == bindparam("lookup_id"))
    .where(_CREDENTIALS.c.kind == bindparam("kind"))
)
_API_KEY = CredentialKind.API_KEY.value

__all__ = [
    "LAST_USED_PRECISION",
    "MAX_ACTIVE_CREDENTIALS",
    "CredentialInfo",
    "IssuedCredential",
    "SuspendedCaller",
    "UnknownCredential",
    "authenticate",
    "authenticate_bearer",
    "create_credential",
    "get_credential",
    "issue_credential",
    "list_credentials",
    "revoke_credential",
]

# Enough to rotate without downtime; a leak cannot be hidden behind many keys.
MAX_ACTIVE_CREDENTIALS = 5


@dataclass(frozen=True, slots=True)
class CredentialInfo:
    """A credential as its holder may see it: never the secret, never its hash."""

    id: UUID
    account_id: UUID
    lookup_id: str
    label: str | None
    status: str  # active | revoked | expired
    created_at: datetime
    expires_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


@dataclass(frozen=True, slots=True)
class IssuedCredential:
    """A new credential and its key, shown this once."""

    credential: CredentialInfo
    api_key: str


def _info(row: Credential, now: datetime) -> CredentialInfo:
    if row.revoked_at is not None:
        status = "revoked"
    elif row.expires_at <= now:
        status = "expired"
    else:
        status = "active"
    return value_of(CredentialInfo, row, status=status)


def _active_count(session: Session, account_id: UUID, now: datetime) -> int:
    return int(
        session.scalar(
            select(func.count())
            .select_from(Credential)
            .where(
                Credential.account_id == account_id,
                Credential.kind == _API_KEY,
                Credential.revoked_at.is_(None),
                Credential.expires_at > now,
            )
        )
        or 0
    )


def issue_credential(
    work: Work, *, account_id: UUID, ttl: timedelta, actor: Actor, label: str | None = None
) -> IssuedCredential:
    """Create a credential for ``account_id`` and record ``credential:issue``.

    Raises Conflict when the account already holds the maximum of active credentials,
    ledger errors when the entry cannot be appended (the caller's transaction then rolls back).
    """
    session, now = work.session, work.now
    if _active_count(session, account_id, now) >= MAX_ACTIVE_CREDENTIALS:
        raise Conflict(
            f"An account may hold at most {MAX_ACTIVE_CREDENTIALS} active credentials; revoke "
            "one first.",
            code="too-many-credentials",
        )
    key = new_api_key()
    row = Credential(
        lookup_id=key.lookup_id,
        account_id=account_id,
        secret_hash=digest(key.secret),
        label=label,
        created_at=now,
        expires_at=now + ttl,
    )
    session.add(row)
    session.flush()
    work.record(
        EntryType.CREDENTIAL_ISSUE,
        actor=actor,
        payload={
            "credential": str(row.id),
            "account": str(account_id),
            "expires_at": format_ts(row.expires_at),
        },
    )
    return IssuedCredential(credential=_info(row, now), api_key=key.token)


class UnknownCredential(Unauthenticated):
    """No valid credential was presented.

    Raised when no credential has the key's lookup id, or the text is not shaped like a key, so
    the API can count such guesses per client address and a wrong secret per lookup id. It
    answers exactly as a wrong secret does (same code, title and detail).
    """


class SuspendedCaller(PermissionDenied):
    """A valid key whose account or agency is suspended; ``principal`` says whose it is."""

    def __init__(self, detail: str, *, code: str, principal: Principal) -> None:
        super().__init__(detail, code=code)
        self.principal = principal


def authenticate(work: Work, *, token: str) -> Principal:
    """Check an API key and its account and agency; record when it was last used (to the
    minute: ``LAST_USED_PRECISION``).

    Raises UnknownCredential (an Unauthenticated) for a malformed key or one whose lookup id
    no credential has, Unauthenticated for a wrong secret or a revoked or expired key, and
    SuspendedCaller (a PermissionDenied) when the key is good but its account or agency is
    suspended.
    """
    key = parse_api_key(token)
    return authenticate_bearer(
        work,
        lookup_id=key.lookup_id if key else None,
        secret=key.secret if key else token,
        kind=CredentialKind.API_KEY,
    )


_WORDS = {
    CredentialKind.API_KEY: {
        "invalid": "The API key is not valid.",
        "revoked": "The API key has been revoked.",
        "expired": "The API key has expired; create a new one before the next expires.",
    },
    CredentialKind.SESSION: {
        "invalid": "You are not signed in, or your session was ended: sign in again.",
        "revoked": "This session was ended (signed out, or ended by an administrator).",
        "expired": "Sessions last at most 12 hours: sign in again.",
        "idle": "This session ended after 30 minutes without activity: sign in again.",
    },
}


def authenticate_bearer(
    work: Work,
    *,
    lookup_id: str | None,
    secret: str,
    kind: CredentialKind,
    idle: timedelta | None = None,
) -> Principal:
    """Check the bearer secret of a credential of ``kind`` found by ``lookup_id`` (None: a
    text not shaped like one), its account and its agency; move its last use on (to the
    minute). ``idle``: refuse one unused for that long (a console session).

    Raises UnknownCredential, Unauthenticated, SuspendedCaller, as ``authenticate`` does.
    """
    session, now, words = work.session, work.now, _WORDS[kind]
    row = None
    if lookup_id is not None:
        row = session.execute(_KEY_LOOKUP, {"lookup_id": lookup_id, "kind": kind.value}).first()
    # Compare even when nothing was found, so a miss costs the same time as a wrong secret.
    if not matches(secret, row.secret_hash if row else None) or row is None:
        unknown = UnknownCredential if row is None else Unauthenticated
        raise unknown(words["invalid"], code="invalid-credential")
    if row.revoked_at is not None:
        raise Unauthenticated(words["revoked"], code="credential-revoked")
    if row.expires_at <= now:
        raise Unauthenticated(words["expired"], code="credential-expired")
    if idle is not None and now - (row.last_used_at or now) >= idle:
        raise Unauthenticated(words["idle"], code="session-idle")
    principal = Principal(
        account_id=row.account_id,
        role=Role(row.role),
        agency_id=row.agency_id,
        credential_id=row.id,
    )
    if row.status != "active":
        raise SuspendedCaller(
            "This account is suspended.", code="account-suspended", principal=principal
        )
    if row.agency_id is not None and row.agency_status != "active":
        raise SuspendedCaller(
            "This account's agency is suspended.", code="agency-suspended", principal=principal
        )
    # Minute precision is enough to tell a live key from a forgotten one, and spares most
    # requests a durable write (on SQLite, an fsync) just to move this timestamp.
    if row.last_used_at is None or now - row.last_used_at >= LAST_USED_PRECISION:
        session.execute(
            update(_CREDENTIALS).where(_CREDENTIALS.c.id == row.id).values(last_used_at=now)
        )
    return principal


def create_credential(
    work: Work, *, principal: Principal, ttl: timedelta, label: str | None = None
) -> IssuedCredential:
    """Issue the caller another credential of its own (to rotate keys without downtime).

    Raises PermissionDenied, Conflict (too many active credentials).
    """
    visible(
        principal,
        Permission.CREDENTIAL_ISSUE,
        agency_id=principal.agency_id,
        account_id=principal.account_id,
        what="account",
    )
    return issue_credential(
        work, account_id=principal.account_id, ttl=ttl, actor=actor_of(principal), label=label
    )


def _load(
    work: Work, principal: Principal, credential_id: UUID, permission: Permission
) -> tuple[Credential, Account]:
    # One statement whether the credential exists or not, is the caller's agency's or not, so
    # the time taken tells no more than the 404 does.
    found = work.session.execute(
        select(Credential, Account)
        .join(Account, Account.id == Credential.account_id)
        .where(Credential.id == credential_id, Credential.kind == _API_KEY)
    ).first()
    if found is None:
        raise NotFound("No such credential.")
    row, account = found
    visible(
        principal,
        permission,
        agency_id=account.agency_id,
        account_id=account.id,
        what="credential",
    )
    return row, account


def list_credentials(
    work: Work, *, principal: Principal, account_id: UUID | None = None
) -> list[CredentialInfo]:
    """The credentials of ``account_id`` (default: the caller's own), newest first.

    Raises PermissionDenied, NotFound (an account outside the caller's reach).
    """
    target = account_id or principal.account_id
    reach_account(work, principal, target, Permission.CREDENTIAL_READ)
    rows = work.session.scalars(
        select(Credential)
        .where(Credential.account_id == target, Credential.kind == _API_KEY)
        .order_by(Credential.created_at.desc(), Credential.id)
    )
    return [_info(row, work.now) for row in rows]


def get_credential(work: Work, *, principal: Principal, credential_id: UUID) -> CredentialInfo:
    """One credential, without its secret.

    Raises PermissionDenied, NotFound.
    """
    row, _ = _load(work, principal, credential_id, Permission.CREDENTIAL_READ)
    return _info(row, work.now)


def revoke_credential(
    work: Work, *, principal: Principal, credential_id: UUID, proposal: UUID | None = None
) -> CredentialInfo:
    """Revoke a credential at once and record ``credential:revoke``. Another person's revoking
    an oversight account's credential takes a confirmed ``proposal`` (two administrators).

    Raises PermissionDenied, NotFound, Conflict (already revoked), TwoAdministratorsRequired.
    """
    row, account = _load(work, principal, credential_id, Permission.CREDENTIAL_REVOKE)
    own = account.id == principal.account_id
    if account.role == Role.OVERSIGHT.value and not own and not proposal:
        raise TwoAdministratorsRequired("Revoking an oversight account's credential")
    if row.revoked_at is not None:
        raise Conflict("This credential is already revoked.", code="already-revoked")
    row.revoked_at = work.now
    row.revoked_by = principal.account_id
    work.record(
        EntryType.CREDENTIAL_REVOKE,
        actor=actor_of(principal),
        payload={
            "credential": str(row.id),
            "account": str(account.id),
            **({"proposal": str(proposal)} if proposal else {}),
        },
    )
    return _info(row, work.now)
