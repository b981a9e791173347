"""Passkeys (WebAuthn): enrolled when an account is claimed or later, used to sign in.

Every ceremony is a server-side row holding its random challenge, answered at most once
within ``CEREMONY_TTL``; the relying party id and origin come from the service's public
address (``PasskeyPolicy``), so an assertion made for another site never verifies here. User
verification is required, and a passkey is discoverable, so signing in asks for no name. Only
the credential id and public key are stored; the ledger gets ids and digests, never a key.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import webauthn
from sqlalchemy import delete, func, select, update
from webauthn.helpers import base64url_to_bytes, bytes_to_base64url
from webauthn.helpers.exceptions import WebAuthnException
from webauthn.helpers.structs import (
    AuthenticatorSelectionCriteria,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from governance.core.errors import Conflict, InvalidInput, NotFound, Unauthenticated
from governance.core.orm import value_of
from governance.core.work import Work
from governance.identity.models import Credential, Passkey, WebAuthnCeremony
from governance.identity.principals import Principal, actor_of
from ledger.entry import Actor, EntryType

__all__ = [
    "CEREMONY_TTL",
    "Ceremony",
    "PasskeyInfo",
    "PasskeyPolicy",
    "PasskeyRejected",
    "add_passkey",
    "begin_enrolment",
    "begin_sign_in",
    "encode_id",
    "list_passkeys",
    "revoke_passkey",
    "verify_sign_in",
]

CEREMONY_TTL = timedelta(minutes=5)
_CHALLENGE_BYTES = 32
_TIMEOUT_MS = int(CEREMONY_TTL.total_seconds() * 1000)


@dataclass(frozen=True, slots=True)
class PasskeyPolicy:
    """The relying party: ``rp_id`` is the public address's host, ``origin`` its origin."""

    rp_id: str
    rp_name: str
    origin: str


@dataclass(frozen=True, slots=True)
class Ceremony:
    """A challenge for the browser: ``options`` is the JSON for ``navigator.credentials``."""

    id: UUID
    options: str


@dataclass(frozen=True, slots=True)
class PasskeyInfo:
    """One passkey of an account, as its holder sees it."""

    id: UUID
    label: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class PasskeyRejected(Unauthenticated):
    """The browser's answer to a ceremony does not verify (or the ceremony is spent)."""

    code = "passkey-rejected"


def _rejected(why: str) -> PasskeyRejected:
    return PasskeyRejected(f"The passkey was not accepted: {why}. Try again.")


def _ceremony(work: Work, purpose: str, **bound: Any) -> tuple[UUID, bytes]:
    # Ceremonies past their time are of no use to anyone: each new one sweeps them, so the
    # table holds at most the last few minutes' (sign-in options need no account).
    work.session.execute(
        delete(WebAuthnCeremony)
        .where(WebAuthnCeremony.expires_at < work.now)
        .execution_options(synchronize_session=False)
    )
    challenge = secrets.token_bytes(_CHALLENGE_BYTES)
    row = WebAuthnCeremony(
        purpose=purpose,
        challenge=challenge,
        created_at=work.now,
        expires_at=work.now + CEREMONY_TTL,
        **bound,
    )
    work.session.add(row)
    work.session.flush()
    return row.id, challenge


def _spend(work: Work, ceremony_id: UUID, purpose: str) -> WebAuthnCeremony:
    """The unspent, unexpired ceremony, now spent (in this unit of work: a failure after this
    rolls the spending back with everything else).

    Raises PasskeyRejected.
    """
    row = work.session.get(WebAuthnCeremony, ceremony_id, with_for_update=True)
    if row is None or row.purpose != purpose or row.used_at is not None:
        raise _rejected("this sign-in attempt is unknown or was already used")
    if work.now >= row.expires_at:
        raise _rejected("it took longer than 5 minutes")
    row.used_at = work.now
    return row


def _credential_json(response: str) -> dict[str, Any]:
    try:
        parsed = json.loads(response)
    except ValueError as exc:
        raise InvalidInput("The browser's answer is not JSON.", code="invalid-passkey") from exc
    if not isinstance(parsed, dict):
        raise InvalidInput("The browser's answer is not a JSON object.", code="invalid-passkey")
    return parsed


def begin_enrolment(
    work: Work,
    policy: PasskeyPolicy,
    *,
    account_id: UUID,
    user_name: str,
    display_name: str,
    claim: tuple[str, UUID] | None = None,
) -> Ceremony:
    """A challenge to create a passkey for ``account_id`` (``claim``: the application being
    claimed, which the enrolment must finish with). The account's passkeys are excluded, so
    an authenticator that holds one already says so.
    """
    claim_kind, claim_id = claim if claim else (None, None)
    ceremony_id, challenge = _ceremony(
        work, "enrol", account_id=account_id, claim_kind=claim_kind, claim_id=claim_id
    )
    held = work.session.scalars(
        select(Passkey.credential_id).where(
            Passkey.account_id == account_id, Passkey.revoked_at.is_(None)
        )
    )
    options = webauthn.generate_registration_options(
        rp_id=policy.rp_id,
        rp_name=policy.rp_name,
        user_id=account_id.bytes,
        user_name=user_name,
        user_display_name=display_name,
        challenge=challenge,
        timeout=_TIMEOUT_MS,
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.REQUIRED,
            user_verification=UserVerificationRequirement.REQUIRED,
        ),
        exclude_credentials=[PublicKeyCredentialDescriptor(id=c) for c in held],
    )
    return Ceremony(id=ceremony_id, options=webauthn.options_to_json(options))


def add_passkey(
    work: Work,
    policy: PasskeyPolicy,
    *,
    ceremony_id: UUID,
    response: str,
    label: str,
    actor: Actor,
    claim: tuple[str, UUID] | None = None,
    account_id: UUID | None = None,
) -> Passkey:
    """Verify the browser's answer to an enrolment ceremony, keep the new passkey and record
    ``passkey:enrol``. ``claim`` must be the application the ceremony was begun for, or
    ``account_id`` the account (a signed-in person adding one).

    Raises PasskeyRejected, InvalidInput (not JSON), Conflict (a passkey already enrolled).
    """
    ceremony = _spend(work, ceremony_id, "enrol")
    claim_kind, claim_id = claim if claim else (None, None)
    if (ceremony.claim_kind, ceremony.claim_id) != (claim_kind, claim_id) or (
        account_id is not None and ceremony.account_id != account_id
    ):
        raise _rejected("it was begun for another account")
    assert ceremony.account_id is not None  # enrolments are always for an account
    try:
        verified = webauthn.verify_registration_response(
            credential=_credential_json(response),
            expected_challenge=ceremony.challenge,
            expected_rp_id=policy.rp_id,
            expected_origin=policy.origin,
            require_user_verification=True,
        )
    except WebAuthnException as exc:
        raise _rejected(str(exc).rstrip(".")) from exc
    known = work.session.scalar(
        select(Passkey.id).where(Passkey.credential_id == verified.credential_id)
    )
    if known is not None:
        raise Conflict("This passkey is already enrolled.", code="passkey-enrolled")
    row = Passkey(
        account_id=ceremony.account_id,
        credential_id=verified.credential_id,
        public_key=verified.credential_public_key,
        sign_count=verified.sign_count,
        label=label.strip()[:100] or "passkey",
        created_at=work.now,
    )
    work.session.add(row)
    work.session.flush()
    work.record(
        EntryType.PASSKEY_ENROL,
        actor=actor,
        payload={
            "account": str(row.account_id),
            "passkey": str(row.id),
            "credential_sha256": hashlib.sha256(row.credential_id).hexdigest(),
        },
    )
    return row


def begin_sign_in(work: Work, policy: PasskeyPolicy) -> Ceremony:
    """A challenge any enrolled passkey may answer (discoverable: no name is asked)."""
    ceremony_id, challenge = _ceremony(work, "sign_in")
    options = webauthn.generate_authentication_options(
        rp_id=policy.rp_id,
        challenge=challenge,
        timeout=_TIMEOUT_MS,
        user_verification=UserVerificationRequirement.REQUIRED,
    )
    return Ceremony(id=ceremony_id, options=webauthn.options_to_json(options))


def verify_sign_in(
    work: Work, policy: PasskeyPolicy, *, ceremony_id: UUID, response: str
) -> Passkey:
    """The active passkey that answered a sign-in ceremony, its counter moved on.

    Raises PasskeyRejected (unknown, revoked or cloned passkey; a bad signature; a spent or
    expired ceremony), InvalidInput (not JSON). The account's standing is the session's to
    check (``sessions.start_session``).
    """
    ceremony = _spend(work, ceremony_id, "sign_in")
    credential = _credential_json(response)
    try:
        raw_id = base64url_to_bytes(str(credential.get("rawId") or credential.get("id") or ""))
    except ValueError as exc:
        raise _rejected("the answer names no passkey") from exc
    row = work.session.scalar(
        select(Passkey).where(Passkey.credential_id == raw_id).with_for_update()
    )
    if row is None or row.revoked_at is not None:
        raise _rejected("this passkey is not enrolled here, or it was revoked")
    try:
        verified = webauthn.verify_authentication_response(
            credential=credential,
            expected_challenge=ceremony.challenge,
            expected_rp_id=policy.rp_id,
            expected_origin=policy.origin,
            credential_public_key=row.public_key,
            credential_current_sign_count=row.sign_count,
            require_user_verification=True,
        )
    except WebAuthnException as exc:
        raise _rejected(str(exc).rstrip(".")) from exc
    row.sign_count = verified.new_sign_count
    row.last_used_at = work.now
    return row


def list_passkeys(work: Work, *, principal: Principal) -> list[PasskeyInfo]:
    """The caller's own passkeys, newest first, revoked ones included."""
    rows = work.session.scalars(
        select(Passkey)
        .where(Passkey.account_id == principal.account_id)
        .order_by(Passkey.created_at.desc(), Passkey.id)
    )
    return [value_of(PasskeyInfo, row) for row in rows]


def revoke_passkey(work: Work, *, principal: Principal, passkey_id: UUID) -> PasskeyInfo:
    """Revoke one of the caller's own passkeys, end the sessions it opened, and record
    ``passkey:revoke``.

    Raises NotFound (not the caller's), Conflict (already revoked, or the last active one:
    without a passkey nobody could sign in to the account again).
    """
    row = work.session.get(Passkey, passkey_id, with_for_update=True)
    if row is None or row.account_id != principal.account_id:
        raise NotFound("No such passkey.")
    if row.revoked_at is not None:
        raise Conflict("This passkey is already revoked.", code="already-revoked")
    active = work.session.scalar(
        select(func.count())
        .select_from(Passkey)
        .where(Passkey.account_id == principal.account_id, Passkey.revoked_at.is_(None))
    )
    if (active or 0) <= 1:
        raise Conflict(
            "This is the account's only passkey: add another before you revoke it.",
            code="last-passkey",
        )
    row.revoked_at = work.now
    # The sessions it opened end with it (a lost phone's browser, say).
    work.session.execute(
        update(Credential)
        .where(Credential.passkey_id == row.id, Credential.revoked_at.is_(None))
        .values(revoked_at=work.now, revoked_by=principal.account_id)
        .execution_options(synchronize_session=False)
    )
    work.record(
        EntryType.PASSKEY_REVOKE,
        actor=actor_of(principal),
        payload={"account": str(row.account_id), "passkey": str(row.id)},
    )
    return value_of(PasskeyInfo, row)


def encode_id(credential_id: bytes) -> str:
    """A passkey's credential id as the browser names it (base64url)."""
    return bytes_to_base64url(credential_id)
