"""The person behind an account: one person, one active account per agency (and platform).

A person is identified by the e-mail address the account's claim secret was delivered to,
normalised and case-folded. The ledger never holds the address: it holds the keyed reference
``SigningKeys.keyed("person", key)``, so an offline audit can tell two people from one without
learning who either is. Four-eyes and two-reviewer rules compare persons, not accounts.
"""

from __future__ import annotations

from uuid import UUID

from sqlalchemy import select
from sqlalchemy.orm import Session

from governance.core.errors import Conflict
from governance.core.recording import SigningKeys
from governance.identity.models import Account

__all__ = [
    "PLATFORM",
    "PersonHasAccount",
    "person_key",
    "person_of",
    "person_ref",
    "persons_of",
    "refuse_second_account",
    "same_person",
    "scope_key",
]

PLATFORM = "platform"  # the scope of admin, oversight and curator accounts


class PersonHasAccount(Conflict):
    """The person already holds an active account in this agency (one person, one account)."""

    code = "person-has-account"


def person_key(email: str) -> str:
    """The identity of the person at an (already validated) e-mail address."""
    return email.strip().casefold()


def scope_key(agency_id: UUID | None) -> str:
    """Where the one-account rule applies: an agency, or the platform."""
    return str(agency_id) if agency_id is not None else PLATFORM


def person_ref(keys: SigningKeys, key: str) -> str:
    """The ledger's keyed reference of a person (hex). Raises LedgerUnavailable."""
    return keys.keyed("person", key)


def refuse_second_account(session: Session, *, agency_id: UUID | None, email: str) -> None:
    """Refuse a new account for a person who already holds an active one in the scope.

    The unique index ``uq_accounts_active_person`` enforces the same under races; this check
    gives the early, readable answer. Raises PersonHasAccount.
    """
    twin = session.scalar(
        select(Account.id).where(
            Account.scope_key == scope_key(agency_id),
            Account.person_key == person_key(email),
            Account.status == "active",
        )
    )
    if twin is not None:
        raise PersonHasAccount(
            f"This person already holds an active account "
            f"{'in this agency' if agency_id else 'on the platform'} ({twin}): one person "
            "holds at most one active account per agency."
        )


def person_of(session: Session, account_id: UUID) -> str | None:
    """The person key of an account, None for an unknown account."""
    return session.scalar(select(Account.person_key).where(Account.id == account_id))


def persons_of(session: Session, account_ids: set[UUID]) -> dict[UUID, str]:
    """The person keys of several accounts at once."""
    if not account_ids:
        return {}
    rows = session.execute(
        select(Account.id, Account.person_key).where(Account.id.in_(account_ids))
    )
    return {r.id: r.person_key for r in rows}


def same_person(session: Session, first: UUID, second: UUID) -> bool:
    """Whether two accounts are held by one person (an account is its own person)."""
    if first == second:
        return True
    persons = persons_of(session, {first, second})
    return first in persons and persons.get(first) == persons.get(second)
