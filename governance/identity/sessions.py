"""Console sessions: server-side rows behind a ``__Host-`` cookie, 30 minutes idle, 12 hours
at most.

A session is a credential of kind ``session`` (``fws_<id>_<secret>``), so it is checked as an
API key is, on every request against its account and agency: a suspension refuses the very
next request, and it also ends the account's sessions for good (a reinstatement does not
bring them back). Signing out revokes the session; signing in is recorded in the ledger.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select, update

from governance.core.work import Work
from governance.identity.credentials import authenticate_bearer
from governance.identity.models import Account, Credential, CredentialKind, Passkey
from governance.identity.principals import Principal, actor_of
from governance.identity.tokens import digest, new_session_token, parse_session_token
from ledger.entry import EntryType, format_ts

__all__ = [
    "IDLE_TIMEOUT",
    "SESSION_LIFETIME",
    "StartedSession",
    "authenticate_session",
    "end_session",
    "start_session",
]

IDLE_TIMEOUT = timedelta(minutes=30)
SESSION_LIFETIME = timedelta(hours=12)
_SESSION = CredentialKind.SESSION


@dataclass(frozen=True, slots=True)
class StartedSession:
    """A new session: ``token`` goes in the cookie, and nowhere else."""

    token: str
    principal: Principal


def start_session(work: Work, *, passkey: Passkey) -> StartedSession:
    """Open a session for the account of ``passkey``, which just verified, and record
    ``session:start``.

    Raises SuspendedCaller when the account or its agency is suspended.
    """
    # The account row locked: a suspension running now either ends this session too, or waits
    # for it and then ends it (it revokes the account's sessions as it commits).
    work.session.execute(
        select(Account.id).where(Account.id == passkey.account_id).with_for_update()
    )
    token = new_session_token()
    row = Credential(
        kind=_SESSION.value,
        lookup_id=token.lookup_id,
        account_id=passkey.account_id,
        secret_hash=digest(token.secret),
        label="console session",
        passkey_id=passkey.id,
        created_at=work.now,
        expires_at=work.now + SESSION_LIFETIME,
    )
    work.session.add(row)
    work.session.flush()
    principal = authenticate_bearer(
        work, lookup_id=token.lookup_id, secret=token.secret, kind=_SESSION
    )
    work.record(
        EntryType.SESSION_START,
        actor=actor_of(principal),
        payload={
            "account": str(principal.account_id),
            "session": str(row.id),
            "passkey": str(passkey.id),
            # A session is the credential of the searches it runs: the offline audit checks
            # them against it, as it checks an API key's against its credential:issue.
            "expires_at": format_ts(row.expires_at),
        },
    )
    return StartedSession(token=token.token, principal=principal)


def authenticate_session(work: Work, *, token: str) -> Principal:
    """The principal of a live session.

    Raises UnknownCredential, Unauthenticated (signed out, idle, past 12 hours), SuspendedCaller.
    """
    parsed = parse_session_token(token)
    return authenticate_bearer(
        work,
        lookup_id=parsed.lookup_id if parsed else None,
        secret=parsed.secret if parsed else token,
        kind=_SESSION,
        idle=IDLE_TIMEOUT,
    )


def end_session(work: Work, *, principal: Principal) -> None:
    """Sign out: the caller's session stops working at once."""
    work.session.execute(
        update(Credential)
        .where(
            Credential.id == principal.credential_id,
            Credential.kind == _SESSION.value,
            Credential.revoked_at.is_(None),
        )
        .values(revoked_at=work.now, revoked_by=principal.account_id)
        .execution_options(synchronize_session=False)
    )
