"""What the identity services under test recorded: ledger entries and queued mail."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from typing import Any
from uuid import uuid4

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from governance.core.mail import MailMessage
from governance.identity.claims import ClaimPolicy
from governance.identity.contact import Person
from ledger.storage import entries

__all__ = ["POLICY", "Ledger", "claim_secret", "claim_secrets", "person"]

POLICY = ClaimPolicy(
    ttl=timedelta(days=7), credential_ttl=timedelta(days=90), public_url="https://fw.example"
)
_SECRET = re.compile(r"Claim secret: (fwc_[a-z2-7]+)")


class Ledger:
    """The entries appended to the test's ledger after it was made."""

    def __init__(self, session: Session) -> None:
        self.session = session
        last = session.scalar(select(func.max(entries.c.seq)))
        self.before = -1 if last is None else int(last)

    def entries(self) -> list[tuple[str, dict[str, Any]]]:
        """(type, payload) of each new entry, in order."""
        rows = self.session.execute(
            select(entries.c.type, entries.c.body)
            .where(entries.c.seq > self.before)
            .order_by(entries.c.seq)
        )
        return [(r.type, json.loads(r.body)["payload"]) for r in rows]

    def types(self) -> list[str]:
        """The type of each new entry, in order."""
        return [t for t, _ in self.entries()]


def claim_secrets(session: Session, email: str) -> set[str]:
    """Every claim secret mailed to ``email``."""
    bodies = session.scalars(select(MailMessage.body).where(MailMessage.recipient == email))
    return {m.group(1) for body in bodies if body and (m := _SECRET.search(body))}


def claim_secret(session: Session, email: str) -> str:
    """The one claim secret mailed to ``email``."""
    (secret,) = claim_secrets(session, email)
    return secret


def person(email: str | None = None) -> Person:
    """A person to name on an application, with a fresh address unless one is given."""
    return Person(
        first_name="Ada",
        last_name="Lovelace",
        phone="+31612345678",
        email=email or f"ada-{uuid4().hex[:8]}@example.org",
        job_title="Analyst",
    )
