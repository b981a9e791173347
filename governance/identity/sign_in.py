"""Signing in to the console: claim an account with a passkey, sign in with one, add another,
or enrol the first with an API key the person holds.

A claim through the console trades the e-mailed claim secret for the account's first passkey
(not an API key: a person creates keys for integrations later) and opens a session, in one
unit of work: the claim, the passkey and the session commit together, or none does.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from sqlalchemy import func, select

from governance.core.errors import Conflict
from governance.core.work import Work
from governance.identity.account_requests import ACCOUNT_REQUESTS
from governance.identity.applications import Flow
from governance.identity.claims import check_claim, mark_claimed
from governance.identity.credentials import authenticate
from governance.identity.models import Account, Passkey
from governance.identity.passkeys import (
    Ceremony,
    PasskeyPolicy,
    add_passkey,
    begin_enrolment,
    begin_sign_in,
    verify_sign_in,
)
from governance.identity.principals import Principal, actor_of, applicant_actor
from governance.identity.registrations import REGISTRATIONS
from governance.identity.sessions import StartedSession, start_session

__all__ = [
    "CLAIM_KINDS",
    "begin_another_passkey",
    "begin_claim",
    "begin_sign_in",
    "begin_with_api_key",
    "finish_another_passkey",
    "finish_claim",
    "finish_with_api_key",
    "sign_in",
]

# What a claim link names: the registration of an agency, or an account request (staff too).
CLAIM_KINDS: dict[str, Flow[Any, Any]] = {
    "registration": REGISTRATIONS,
    "account_request": ACCOUNT_REQUESTS,
}


def _flow(kind: str) -> Flow[Any, Any]:
    return CLAIM_KINDS[kind]


def begin_claim(
    work: Work, policy: PasskeyPolicy, *, kind: str, claim_id: UUID, claim_secret: str
) -> Ceremony:
    """Check the claim secret (without spending it) and begin the first passkey's enrolment.

    Raises WrongClaim (unknown id or wrong secret, alike), Conflict (expired, not approved,
    already claimed).
    """
    flow = _flow(kind)
    row = check_claim(
        work, row=work.session.get(flow.model, claim_id), what=flow.what, claim_secret=claim_secret
    )
    assert row.account_id is not None  # approved
    return begin_enrolment(
        work,
        policy,
        account_id=row.account_id,
        user_name=row.email,
        display_name=f"{row.first_name} {row.last_name}",
        claim=(kind, claim_id),
    )


def finish_claim(
    work: Work,
    policy: PasskeyPolicy,
    *,
    kind: str,
    claim_id: UUID,
    claim_secret: str,
    ceremony_id: UUID,
    response: str,
    label: str,
) -> StartedSession:
    """Spend the claim secret on the passkey the browser made, and sign the person in:
    ``registration:claim`` or ``account:claim`` (naming the passkey), ``passkey:enrol`` and
    ``session:start``.

    Raises WrongClaim, Conflict, PasskeyRejected, InvalidInput.
    """
    flow = _flow(kind)
    row = check_claim(
        work,
        row=work.session.get(flow.model, claim_id, with_for_update=True),
        what=flow.what,
        claim_secret=claim_secret,
    )
    passkey = add_passkey(
        work,
        policy,
        ceremony_id=ceremony_id,
        response=response,
        label=label,
        actor=applicant_actor("claimant", row.id),
        claim=(kind, claim_id),
    )
    mark_claimed(work, row, what=flow.what, entry_type=flow.claimed, by=("passkey", passkey.id))
    return start_session(work, passkey=passkey)


def sign_in(
    work: Work, policy: PasskeyPolicy, *, ceremony_id: UUID, response: str
) -> StartedSession:
    """Open a session for the passkey that answered the sign-in ceremony.

    Raises PasskeyRejected, InvalidInput, SuspendedCaller (account or agency suspended).
    """
    passkey = verify_sign_in(work, policy, ceremony_id=ceremony_id, response=response)
    return start_session(work, passkey=passkey)


def begin_another_passkey(work: Work, policy: PasskeyPolicy, *, principal: Principal) -> Ceremony:
    """Begin enrolling one more passkey for the signed-in person (a second device)."""
    account = work.session.get_one(Account, principal.account_id)
    return begin_enrolment(
        work,
        policy,
        account_id=account.id,
        user_name=account.email,
        display_name=account.name,
    )


def begin_with_api_key(work: Work, policy: PasskeyPolicy, *, api_key: str) -> Ceremony:
    """Begin enrolling a passkey for the account of ``api_key``: how a person who holds a key
    (an administrator made by ``facewarden admin create``, an account claimed through the API)
    comes to the console. The key proves no more than it already could through the API.

    Only the account's first passkey is enrolled so: once it holds one, another is added by
    its holder, signed in with that one. A copied integration key cannot plant a passkey that
    would outlive the key.

    Raises UnknownCredential, Unauthenticated, SuspendedCaller (as ``authenticate`` does),
    Conflict (the account already holds a passkey).
    """
    principal = authenticate(work, token=api_key)
    _refuse_if_held(work, principal)
    return begin_another_passkey(work, policy, principal=principal)


def _refuse_if_held(work: Work, principal: Principal) -> None:
    held = work.session.scalar(
        select(func.count())
        .select_from(Passkey)
        .where(Passkey.account_id == principal.account_id, Passkey.revoked_at.is_(None))
    )
    if held:
        raise Conflict(
            "This account already holds a passkey: sign in with it, then add another on the "
            "Passkeys page. An API key enrols only an account's first passkey.",
            code="passkey-enrolled",
        )


def finish_with_api_key(
    work: Work,
    policy: PasskeyPolicy,
    *,
    api_key: str,
    ceremony_id: UUID,
    response: str,
    label: str,
) -> StartedSession:
    """Keep the passkey made for the account of ``api_key`` and sign its holder in.

    Raises UnknownCredential, Unauthenticated, SuspendedCaller, PasskeyRejected, InvalidInput,
    Conflict.
    """
    principal = authenticate(work, token=api_key)
    _refuse_if_held(work, principal)
    passkey = finish_another_passkey(
        work,
        policy,
        principal=principal,
        ceremony_id=ceremony_id,
        response=response,
        label=label,
    )
    return start_session(work, passkey=passkey)


def finish_another_passkey(
    work: Work,
    policy: PasskeyPolicy,
    *,
    principal: Principal,
    ceremony_id: UUID,
    response: str,
    label: str,
) -> Passkey:
    """Keep the passkey the browser made for the signed-in person; record ``passkey:enrol``.

    Raises PasskeyRejected (also when the ceremony was begun for another account),
    InvalidInput, Conflict.
    """
    return add_passkey(
        work,
        policy,
        ceremony_id=ceremony_id,
        response=response,
        label=label,
        actor=actor_of(principal),
        account_id=principal.account_id,
    )
