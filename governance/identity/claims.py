"""Claim secrets: made on approval, mailed to the person named on the request, claimed once.

An approved registration, account request or staff account gets a one-time claim secret that
is sent to the e-mail address on the request and to nobody else (never in an API response), and
that expires after the claim TTL. The person trades it for the account's first API key. An
unknown claim id and a wrong secret get the same answer, so ids cannot be probed.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from datetime import timedelta
from uuid import UUID

from governance.core import mail
from governance.core.errors import Conflict, PermissionDenied
from governance.core.work import Work
from governance.identity.credentials import IssuedCredential, issue_credential
from governance.identity.models import ApplicationColumns
from governance.identity.persons import person_key, person_ref
from governance.identity.principals import applicant_actor
from governance.identity.tokens import digest, matches, new_claim_secret
from governance.identity.vocabulary import ApplicationStatus
from ledger.entry import EntryType, format_ts

__all__ = [
    "ClaimPolicy",
    "WrongClaim",
    "check_claim",
    "issue_claim",
    "mark_claimed",
    "redeem_claim",
    "reissue_claim",
    "sealed_claim_hash",
    "wrong_claim",
]

_PATHS = {"registration": "registrations", "account_request": "account-requests"}


class WrongClaim(PermissionDenied):
    """The claim id or its secret is wrong."""

    code = "wrong-claim-secret"


@dataclass(frozen=True, slots=True)
class ClaimPolicy:
    """How long a claim secret and the first key live, and the service's public address
    (for the claim link in the message).
    """

    ttl: timedelta
    credential_ttl: timedelta
    public_url: str


def sealed_claim_hash() -> bytes:
    """The digest stored before approval: of a random secret nobody was ever given."""
    return digest(new_claim_secret())


def wrong_claim(claim_secret: str) -> WrongClaim:
    """The one answer to an unknown claim id and to a wrong secret (after the same hashing)."""
    matches(claim_secret, None)  # spend the time a real comparison takes
    return WrongClaim("The claim id or the claim secret is wrong.")


def _letter(row: ApplicationColumns, what: str, headline: str, *, url: str, secret: str) -> str:
    expires = format_ts(row.claim_expires_at) if row.claim_expires_at else ""
    claim = f"{url.rstrip('/')}/v1/{_PATHS[what]}/{row.id}/claim"
    console = f"{url.rstrip('/')}/console/claim/{_PATHS[what]}/{row.id}"
    paragraphs = [
        f"Hello {row.first_name} {row.last_name},",
        headline,
        "To sign in to the console, open the console link below on your device before "
        f"{expires} (UTC), type in the one-time claim secret, and create the passkey you will "
        "sign in with.",
        "For an integration, you may instead send the claim secret to the claim address, "
        "which answers with the account's first API key. The secret works for one of the two.",
    ]
    closing = (
        "The answer holds your API key, shown once: keep it in a file only you can read. The "
        "secret works once, and it was sent to you alone. If you did not expect this message, "
        "do not use it and tell the service's administrators."
    )
    return (
        "\n\n".join(textwrap.fill(p, width=72) for p in paragraphs)
        + f"\n\nConsole link: {console}\nClaim address: {claim}\nClaim secret: {secret}\n\n"
        + "For example:\n\n"
        + "  curl -s -H 'Content-Type: application/json' \\\n"
        + f'       -d \'{{"claim_secret": "{secret}"}}\' \\\n'
        + f"       {claim}\n\n"
        + textwrap.fill(closing, width=72)
        + "\n"
    )


def issue_claim(
    work: Work, row: ApplicationColumns, *, what: str, headline: str, policy: ClaimPolicy
) -> str:
    """Make the claim secret of an approved ``row`` and queue it to the person's address.

    Returns the keyed person reference for the caller's ledger entry. Raises LedgerUnavailable.
    """
    secret = new_claim_secret()
    row.claim_hash = digest(secret)
    row.claim_issued_to = person_key(row.email)
    row.claim_expires_at = work.now + policy.ttl
    body = _letter(row, what, headline, url=policy.public_url, secret=secret)
    mail.queue(
        work.session,
        recipient=row.email,
        subject="Your FaceWarden account: claim it",
        body=body,
        now=work.now,
    )
    return person_ref(work.keys, row.claim_issued_to)


def check_claim(
    work: Work, *, row: ApplicationColumns | None, what: str, claim_secret: str
) -> ApplicationColumns:
    """The approved, unclaimed, unexpired ``row`` whose claim secret is ``claim_secret``.

    Raises WrongClaim (unknown id or wrong secret, alike, checked in constant time before
    anything else is revealed), Conflict (expired, not approved yet, rejected, already claimed).
    """
    if row is None or not matches(claim_secret, row.claim_hash):
        raise wrong_claim(claim_secret)
    label = what.replace("_", " ")
    if row.status == ApplicationStatus.CLAIMED:
        raise Conflict(f"This {label} was already claimed.", code="already-claimed")
    if row.status != ApplicationStatus.APPROVED or row.account_id is None:
        raise Conflict(
            f"This {label} is {row.status}; only an approved one can be claimed.",
            code="not-approved",
        )
    if row.claim_expires_at is None or work.now >= row.claim_expires_at:
        raise Conflict(
            f"This claim secret expired; ask an administrator to send a new one "
            f"(POST /v1/{_PATHS[what]}/{row.id}/resend).",
            code="claim-expired",
        )
    return row


def redeem_claim(
    work: Work,
    *,
    row: ApplicationColumns | None,
    what: str,
    claim_secret: str,
    entry_type: EntryType,
    policy: ClaimPolicy,
) -> IssuedCredential:
    """Trade the claim secret of an approved registration or account request for the first
    key of its account, once, and record the claim with the person it was issued to (``what``
    names the object in messages and in the entry's payload).

    Raises WrongClaim, Conflict, as ``check_claim`` does.
    """
    row = check_claim(work, row=row, what=what, claim_secret=claim_secret)
    assert row.account_id is not None  # approved
    issued = issue_credential(
        work,
        account_id=row.account_id,
        ttl=policy.credential_ttl,
        actor=applicant_actor("claimant", row.id),
        label="first key",
    )
    mark_claimed(
        work, row, what=what, entry_type=entry_type, by=("credential", issued.credential.id)
    )
    return issued


def mark_claimed(
    work: Work,
    row: ApplicationColumns,
    *,
    what: str,
    entry_type: EntryType,
    by: tuple[str, UUID],
) -> None:
    """Close a checked claim (``check_claim``) and record it, with what it was traded for:
    ``by`` is ``("credential", id)`` (the first API key) or ``("passkey", id)`` (the console).
    """
    row.status = ApplicationStatus.CLAIMED.value
    row.claimed_at = work.now
    work.record(
        entry_type,
        actor=applicant_actor("claimant", row.id),
        payload={
            "registration" if what == "registration" else "request": str(row.id),
            "account": str(row.account_id),
            by[0]: str(by[1]),
            "person": person_ref(work.keys, row.claim_issued_to or person_key(row.email)),
        },
    )


def reissue_claim(work: Work, row: ApplicationColumns, *, what: str, policy: ClaimPolicy) -> str:
    """Replace the claim secret of an approved, unclaimed ``row`` and mail the new one.

    Returns the keyed person reference. Raises Conflict (not approved, or already claimed).
    """
    if row.status != ApplicationStatus.APPROVED:
        raise Conflict(
            f"Only an approved, unclaimed {what.replace('_', ' ')} gets a new claim secret "
            f"(this one is {row.status}).",
            code="not-approved" if row.status != ApplicationStatus.CLAIMED else "already-claimed",
        )
    return issue_claim(
        work,
        row,
        what=what,
        headline="A new claim secret was issued for your account; any earlier one no longer works.",
        policy=policy,
    )
