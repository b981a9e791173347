"""What a gallery service appended to the ledger, read back in the test's transaction."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ledger.storage import entries


def last_seq(session: Session) -> int:
    """The sequence number of the last ledger entry (-1 when empty: the first is 0)."""
    return int(session.scalar(select(func.coalesce(func.max(entries.c.seq), -1))))


def appended(session: Session, since: int) -> list[tuple[str, dict[str, Any]]]:
    """The type and payload of every entry appended after ``since``, in order."""
    rows = session.execute(
        select(entries.c.type, entries.c.body).where(entries.c.seq > since).order_by(entries.c.seq)
    )
    return [(kind, json.loads(body)["payload"]) for kind, body in rows]
