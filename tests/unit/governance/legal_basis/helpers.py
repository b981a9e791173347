"""Helpers of the legal-basis unit tests: the people of the rolled-back session's agency, valid
drafts, and (``world``) a fresh migrated database on SQLite and, when FACEWARDEN_TEST_DATABASE_URL
names a server, on PostgreSQL, for the tests of real concurrent transactions.
"""

from __future__ import annotations

import dataclasses
import os
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar
from uuid import UUID

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from governance.core.db import make_engine, make_session_factory, unit_of_work
from governance.core.migrate import upgrade
from governance.core.recording import SigningKeys
from governance.core.work import Hooks, LapseHook, Units, Work
from governance.identity.accounts import create_account
from governance.identity.agencies import AgencyDetails, AgencyKind, create_agency
from governance.identity.permissions import Role
from governance.identity.principals import Principal
from governance.legal_basis.decisions import decide_basis
from governance.legal_basis.models import LegalBasis
from governance.legal_basis.offences import parse_offence_categories
from governance.legal_basis.services import create_basis
from governance.legal_basis.values import (
    Authorisation,
    AuthorisationKind,
    BasisDraft,
    BasisPolicy,
    Verdict,
)
from ledger.entry import parse_entry
from ledger.keys import generate_key
from ledger.storage import entries
from tests.conftest import create_test_database, drop_test_database
from tests.factories import NOW

__all__ = [
    "POLICY",
    "People",
    "World",
    "counting_hook",
    "draft",
    "recorded_about",
    "together",
    "world",
]

PG_ENV = "FACEWARDEN_TEST_DATABASE_URL"
POLICY = BasisPolicy(offences=parse_offence_categories("annex_ii"))
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class People:
    """Agency A's investigator and two supervisors, agency B's supervisor, oversight staff."""

    investigator: Principal
    supervisor: Principal
    supervisor2: Principal
    stranger: Principal
    oversight: Principal


@dataclass(frozen=True, slots=True)
class World:
    """A database of its own: its sessions and keys, and agency A's and B's people."""

    sessions: sessionmaker[Session]
    keys: SigningKeys
    investigator: Principal
    supervisor: Principal
    stranger: Principal  # an investigator of another agency

    def run(
        self, act: Callable[[Work], T], *, at: datetime = NOW, hooks: tuple[LapseHook, ...] = ()
    ) -> T:
        """``act`` in one unit of work at ``at``, with the lapse ``hooks``."""
        units = Units(self.sessions, self.keys, at, Hooks(on_lapse=list(hooks)))
        with units() as work:
            return act(work)

    def approved(self, basis: BasisDraft) -> UUID:
        """Record ``basis`` as the investigator and approve it as the supervisor."""

        def run(work: Work) -> UUID:
            made = create_basis(work, principal=self.investigator, draft=basis, policy=POLICY)
            decide_basis(
                work,
                principal=self.supervisor,
                basis_id=made.id,
                verdict=Verdict.APPROVE,
                reason="ok",
            )
            return made.id

        return self.run(run)

    def ledger(self, basis_id: UUID) -> list[tuple[str, dict[str, Any]]]:
        """(type, payload) of every committed ledger entry about ``basis_id``, in order."""
        with self.sessions() as session:
            return recorded_about(session, basis_id)


def recorded_about(session: Session, basis_id: UUID) -> list[tuple[str, dict[str, Any]]]:
    """(type, payload) of every ledger entry ``session`` sees about ``basis_id``, in order."""
    bodies = session.scalars(select(entries.c.body).order_by(entries.c.seq)).all()
    parsed = [parse_entry(bytes(b)) for b in bodies]
    return [
        (str(e.type), dict(e.payload))
        for e in parsed
        if e.payload.get("legal_basis") == str(basis_id)
    ]


def counting_hook(calls: list[tuple[UUID, str]], deleted: int | None = None) -> LapseHook:
    """A lapse hook that notes the basis and the status it saw (it runs after the lapse, in
    its transaction) and 'deletes' ``deleted`` results, or as many as the basis had searches."""

    def delete_results(work: Work, basis_id: UUID) -> int:
        row = work.session.get(LegalBasis, basis_id)
        assert row is not None
        calls.append((basis_id, row.status))
        return row.searches_used if deleted is None else deleted

    return delete_results


def draft(kind: AuthorisationKind = AuthorisationKind.JUDICIAL, **changes: Any) -> BasisDraft:
    """A valid draft at ``NOW`` (urgent ones name no reference or authority)."""
    named = kind is not AuthorisationKind.URGENT
    made = BasisDraft(
        case_number="PJ-2026-7",
        offence_category="terrorism",
        legal_provision="Art. 706-73 CPP",
        authorisation=Authorisation(
            kind,
            "JLD-7" if named else None,
            "TJ Paris" if named else None,
            NOW - timedelta(hours=1),
            changes.pop("expires_at", NOW + timedelta(days=3)),
        ),
        justification="A planned attack is under investigation; the suspect must be identified.",
        max_searches=changes.pop("max_searches", 5),
    )
    return dataclasses.replace(made, **changes)


def together(count: int, act: Callable[[], T]) -> list[T | Exception]:
    """Run ``act`` in ``count`` threads released at the same instant."""
    barrier = threading.Barrier(count)
    results: list[T | Exception] = []
    lock = threading.Lock()

    def run() -> None:
        barrier.wait()
        try:
            outcome: T | Exception = act()
        except Exception as exc:
            outcome = exc
        with lock:
            results.append(outcome)

    threads = [threading.Thread(target=run) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return results


def _principal(session: Session, role: Role, agency_id: UUID) -> Principal:
    account = create_account(
        session,
        role=role,
        agency_id=agency_id,
        name=f"{role.value} {uuid.uuid4().hex[:6]}",
        email=f"{uuid.uuid4().hex[:8]}@police.example",
        phone=None,
        job_title=None,
        now=NOW,
    )
    return Principal(account.id, role, agency_id, uuid.uuid4())


def _people(sessions: sessionmaker[Session]) -> tuple[Principal, Principal, Principal]:
    with unit_of_work(sessions) as session:
        agencies = [
            create_agency(
                session,
                details=AgencyDetails(f"Agency {n}", AgencyKind.POLICE, "FR", "Lyon"),
                now=NOW,
            ).id
            for n in (1, 2)
        ]
        return (
            _principal(session, Role.INVESTIGATOR, agencies[0]),
            _principal(session, Role.SUPERVISOR, agencies[0]),
            _principal(session, Role.INVESTIGATOR, agencies[1]),
        )


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def world(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[World]:
    server = os.environ.get(PG_ENV)
    if request.param == "postgresql" and not server:
        pytest.skip(f"set {PG_ENV} to a PostgreSQL URL to run the PostgreSQL legal-basis tests")
    url, admin = create_test_database(server if request.param == "postgresql" else None, tmp_path)
    engine = make_engine(url)
    upgrade(engine)
    key_path = tmp_path / "keys" / "ledger.pem"
    key_path.parent.mkdir()
    generate_key(key_path, name="test.facewarden.local/ledger", passphrase=None)
    sessions = make_session_factory(engine)
    keys = SigningKeys(key_path, name="test.facewarden.local/ledger")
    try:
        yield World(sessions, keys, *_people(sessions))
    finally:
        engine.dispose()
        drop_test_database(admin, url)
