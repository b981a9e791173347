"""A unit of work commits its change and its ledger entry together, or neither; its mail goes
out only once it has committed; the units of one ``Units`` share one ``now``.
"""

from __future__ import annotations

from datetime import timedelta
from uuid import UUID

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from governance.core import mail
from governance.core.mail import MailMessage
from governance.core.recording import SYSTEM, SigningKeys
from governance.core.work import Hooks, Units, Work
from ledger import storage
from ledger.entry import EntryType, format_ts, parse_entry
from tests.factories import NOW


class Boom(Exception):
    """Raised inside a unit of work to make it roll back."""


def _queue(work: Work, to: str) -> UUID:
    return mail.queue(work.session, recipient=to, subject="Hello", body="Hi\n", now=work.now)


def _count_mail(sessions: sessionmaker[Session]) -> int:
    with sessions() as session:
        return session.scalar(select(func.count()).select_from(MailMessage)) or 0


def _tree_size(sessions: sessionmaker[Session]) -> int:
    with sessions() as session:
        return storage.tree_size(session)


def test_a_unit_of_work_commits_its_change_and_entry_then_delivers_the_mail(
    sessions: sessionmaker[Session], keys: SigningKeys
) -> None:
    delivered: list[tuple[list[UUID], int, int]] = []

    def deliver(ids: list[UUID]) -> None:
        # What another connection sees when delivery starts: the committed rows.
        delivered.append((ids, _count_mail(sessions), _tree_size(sessions)))

    units = Units(sessions, keys, NOW, Hooks(), deliver=deliver)
    with units() as work:
        first = _queue(work, "a@example.org")
        second = _queue(work, "b@example.org")
        appended = work.record(EntryType.SEARCH_RUN, actor=SYSTEM, payload={"search": "s-1"})
        assert delivered == []  # nothing goes out before the commit
    assert delivered == [([first, second], 2, 1)]
    assert appended.seq == 0 and parse_entry(appended.entry).ts == format_ts(NOW)


def test_a_unit_of_work_that_raises_rolls_back_and_delivers_nothing(
    sessions: sessionmaker[Session], keys: SigningKeys
) -> None:
    delivered: list[list[UUID]] = []
    units = Units(sessions, keys, NOW, Hooks(), deliver=delivered.append)
    with pytest.raises(Boom), units() as work:
        _queue(work, "a@example.org")
        work.record(EntryType.SEARCH_RUN, actor=SYSTEM, payload={"search": "s-1"})
        raise Boom
    assert delivered == []
    assert _count_mail(sessions) == 0
    assert _tree_size(sessions) == 0


def test_a_unit_of_work_without_mail_or_deliverer_delivers_nothing(
    sessions: sessionmaker[Session], keys: SigningKeys
) -> None:
    delivered: list[list[UUID]] = []
    with Units(sessions, keys, NOW, Hooks(), deliver=delivered.append)() as work:
        work.record(EntryType.SEARCH_RUN, actor=SYSTEM, payload={"search": "s-1"})
    assert delivered == []
    with Units(sessions, keys, NOW, Hooks())() as work:  # no deliverer: the mail stays queued
        queued = _queue(work, "a@example.org")
    with sessions() as session:
        row = session.get(MailMessage, queued)
        assert row is not None and row.sent_at is None


def test_the_units_of_one_units_share_now_keys_and_hooks(
    sessions: sessionmaker[Session], keys: SigningKeys
) -> None:
    hooks = Hooks()
    units = Units(sessions, keys, NOW, hooks)
    with units() as first:
        pass
    with units() as second:
        assert second.session is not first.session
    assert (first.now, second.now) == (NOW, NOW)
    assert first.keys is second.keys is keys
    assert first.hooks is second.hooks is hooks
    later = units.at(NOW + timedelta(minutes=5))
    with later() as third:
        assert third.now == NOW + timedelta(minutes=5)
        assert third.keys is keys and third.hooks is hooks
    assert units.now == NOW  # ``at`` makes new units; it changes none


def test_work_keyed_is_the_keys_digest(work: Work) -> None:
    assert work.keyed("person", "camille@example.org") == work.keys.keyed(
        "person", "camille@example.org"
    )
    assert work.keyed("person", "a") != work.keyed("url", "a")
