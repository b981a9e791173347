"""Legal-basis services below HTTP: the quota under 20 concurrent searches, concurrent sweeps,
the deadline paths HTTP cannot reach quickly, the database's own invariants, the allowlist.

The concurrency tests run on SQLite and, when FACEWARDEN_TEST_DATABASE_URL names a server, on
PostgreSQL, each on a fresh migrated database.
"""

from __future__ import annotations

import dataclasses
import os
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar
from uuid import UUID

import pytest
from alembic import command
from flask import Flask
from sqlalchemy import inspect, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from api.app import create_app
from api.settings import ConfigError, Settings
from governance.core.db import make_engine, make_session_factory, unit_of_work
from governance.core.migrate import alembic_config, upgrade
from governance.core.recording import SigningKeys
from governance.core.work import Hooks, Units, Work
from governance.identity.accounts import create_account
from governance.identity.agencies import AgencyDetails, AgencyKind, create_agency
from governance.identity.permissions import Role
from governance.identity.principals import Principal
from governance.legal_basis.deadlines import settle_basis, sweep
from governance.legal_basis.decisions import decide_basis
from governance.legal_basis.models import LegalBasis
from governance.legal_basis.offences import ANNEX_II, parse_offence_categories
from governance.legal_basis.rules import BasisUnusable
from governance.legal_basis.services import consume_search, create_basis
from governance.legal_basis.values import (
    Authorisation,
    AuthorisationKind,
    BasisDraft,
    BasisPolicy,
    BasisStatus,
    BasisUse,
    Verdict,
)
from ledger.entry import parse_entry
from ledger.keys import generate_key
from ledger.storage import entries
from tests.conftest import create_test_database, drop_test_database

PG_ENV = "FACEWARDEN_TEST_DATABASE_URL"
NOW = datetime.now(UTC).replace(microsecond=0)
POLICY = BasisPolicy(offences=parse_offence_categories("annex_ii"))
T = TypeVar("T")


# --- the allowlist ---------------------------------------------------------------------------


def test_annex_ii_has_its_sixteen_offences_with_unique_slugs() -> None:
    assert len(ANNEX_II) == 16
    assert len({c.slug for c in ANNEX_II}) == 16
    assert [c.slug for c in parse_offence_categories("annex_ii")] == [c.slug for c in ANNEX_II]


@pytest.mark.parametrize(
    ("spec", "slugs"),
    [
        ("terrorism, rape", ["terrorism", "rape"]),
        ("annex_ii,fraud=Serious fraud", [c.slug for c in ANNEX_II] + ["fraud"]),
        ("cybercrime=Attacks on information systems", ["cybercrime"]),
    ],
)
def test_the_allowlist_narrows_or_extends_annex_ii(spec: str, slugs: list[str]) -> None:
    catalogue = parse_offence_categories(spec)
    assert [c.slug for c in catalogue] == slugs
    assert "fraud" not in catalogue or catalogue.label("fraud") == "Serious fraud"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("", "empty"),
        (" , ", "empty"),
        ("shoplifting", "not an Annex II category"),
        ("Terrorism", "not a slug"),
        ("rape,rape", "listed twice"),
        ("annex_ii,terrorism", "listed twice"),
        ("fraud=", "needs a printable label"),
        ("fraud=Bad\x07label", "needs a printable label"),
    ],
)
def test_a_bad_allowlist_is_refused(spec: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_offence_categories(spec)


def test_the_app_refuses_to_start_with_a_bad_allowlist(app: Flask, settings: Settings) -> None:
    del app  # the shared app created the key file and database this one needs
    broken = dataclasses.replace(settings, offence_categories="annex_ii,shoplifting")
    with pytest.raises(ConfigError, match="FACEWARDEN_OFFENCE_CATEGORIES"):
        create_app(broken)


# --- a fresh database on each engine ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class World:
    dialect: str
    factory: sessionmaker[Session]
    keys: SigningKeys
    investigator: Principal
    supervisor: Principal
    stranger: Principal  # an investigator of another agency


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
    factory = make_session_factory(engine)
    with unit_of_work(factory) as session:
        agencies = [
            create_agency(
                session,
                details=AgencyDetails(f"Agency {n}", AgencyKind.POLICE, "FR", "Lyon"),
                now=NOW,
            ).id
            for n in (1, 2)
        ]
        people = (
            _principal(session, Role.INVESTIGATOR, agencies[0]),
            _principal(session, Role.SUPERVISOR, agencies[0]),
            _principal(session, Role.INVESTIGATOR, agencies[1]),
        )
    try:
        yield World(
            request.param,
            factory,
            SigningKeys(key_path, name="test.facewarden.local/ledger"),
            *people,
        )
    finally:
        engine.dispose()
        drop_test_database(admin, url)


def _draft(kind: AuthorisationKind = AuthorisationKind.JUDICIAL, **changes: Any) -> BasisDraft:
    named = kind is not AuthorisationKind.URGENT
    draft = BasisDraft(
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
    return dataclasses.replace(draft, **changes)


def _in(world: World, act: Callable[[Work], T], *, at: datetime = NOW, hooks: Any = ()) -> T:
    units = Units(world.factory, world.keys, at, Hooks(on_lapse=list(hooks)))
    with units() as work:
        return act(work)


def _approved(world: World, draft: BasisDraft) -> UUID:
    def run(work: Work) -> UUID:
        made = create_basis(work, principal=world.investigator, draft=draft, policy=POLICY)
        decide_basis(
            work,
            principal=world.supervisor,
            basis_id=made.id,
            verdict=Verdict.APPROVE,
            reason="ok",
        )
        return made.id

    return _in(world, run)


def _ledger(world: World, basis_id: UUID) -> list[tuple[str, dict[str, Any]]]:
    with world.factory() as session:
        bodies = session.scalars(select(entries.c.body).order_by(entries.c.seq)).all()
    parsed = [parse_entry(bytes(b)) for b in bodies]
    return [
        (str(e.type), dict(e.payload))
        for e in parsed
        if e.payload.get("legal_basis") == str(basis_id)
    ]


def _together(count: int, work: Callable[[], T]) -> list[T | Exception]:
    """Run ``work`` in ``count`` threads released at the same instant."""
    barrier = threading.Barrier(count)
    results: list[T | Exception] = []
    lock = threading.Lock()

    def run() -> None:
        barrier.wait()
        try:
            outcome: T | Exception = work()
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


# --- the quota and the deadlines under concurrency -------------------------------------------


def test_twenty_concurrent_searches_spend_a_quota_of_seven_exactly(world: World) -> None:
    basis_id = _approved(world, _draft(max_searches=7))
    later = NOW + timedelta(minutes=1)

    results = _together(20, lambda: _use(world, world.investigator, basis_id, later))
    used = sorted(r.searches_used for r in results if isinstance(r, BasisUse))
    refusals = [r for r in results if not isinstance(r, BasisUse)]
    assert used == [1, 2, 3, 4, 5, 6, 7]
    assert len(refusals) == 13
    assert all(isinstance(r, BasisUnusable) and r.code == "legal-basis-exhausted" for r in refusals)
    with world.factory() as session:
        row = session.get(LegalBasis, basis_id)
        assert row is not None and row.searches_used == 7


def test_concurrent_sweeps_record_one_expiry(world: World) -> None:
    basis_id = _approved(world, _draft(expires_at=NOW + timedelta(days=1)))
    later = NOW + timedelta(days=1, seconds=1)

    def run_sweep() -> list[Any]:
        return _in(world, lambda w: list(sweep(w)), at=later)

    results = _together(6, run_sweep)
    assert not [r for r in results if isinstance(r, Exception)], results
    transitions = [t for r in results if isinstance(r, list) for t in r]
    assert [(t.basis_id, t.status) for t in transitions] == [(basis_id, BasisStatus.EXPIRED)]
    assert [t for t, _ in _ledger(world, basis_id)].count("legal_basis:expire") == 1


# --- deadline paths --------------------------------------------------------------------------


def _hook(calls: list[tuple[UUID, str]]) -> Callable[[Work, UUID], int]:
    def delete_results(work: Work, basis_id: UUID) -> int:
        row = work.session.get(LegalBasis, basis_id)
        assert row is not None
        calls.append((basis_id, row.status))
        return row.searches_used

    return delete_results


def _use(world: World, who: Principal, basis_id: UUID, when: datetime) -> BasisUse:
    return _in(world, lambda w: consume_search(w, principal=who, basis_id=basis_id), at=when)


def _settle(world: World, basis_id: UUID, when: datetime, hooks: Any = ()) -> Any:
    return _in(world, lambda w: settle_basis(w, basis_id=basis_id), at=when, hooks=hooks)


def test_an_unratified_urgent_basis_lapses_even_after_it_expired(world: World) -> None:
    basis_id = _approved(
        world, _draft(AuthorisationKind.URGENT, expires_at=NOW + timedelta(hours=24))
    )
    _use(world, world.investigator, basis_id, NOW)
    calls: list[tuple[UUID, str]] = []
    hooks = (_hook(calls),)
    expired = _settle(world, basis_id, NOW + timedelta(hours=25), hooks)
    assert expired.status is BasisStatus.EXPIRED and not calls
    assert _settle(world, basis_id, NOW + timedelta(hours=47), hooks) is None
    lapsed = _settle(world, basis_id, NOW + timedelta(hours=48), hooks)
    assert (lapsed.status, lapsed.results_deleted) == (BasisStatus.LAPSED, 1)
    assert calls == [(basis_id, "lapsed")]
    assert [t for t, _ in _ledger(world, basis_id)] == [
        "legal_basis:create",
        "legal_basis:approve",
        "legal_basis:expire",
        "legal_basis:lapse",
    ]


def test_revoking_an_urgent_basis_does_not_excuse_its_ratification(world: World) -> None:
    basis_id = _approved(world, _draft(AuthorisationKind.URGENT))
    _in(
        world,
        lambda w: decide_basis(
            w, principal=world.supervisor, basis_id=basis_id, verdict=Verdict.REVOKE, reason="stop"
        ),
    )
    lapsed = _settle(world, basis_id, NOW + timedelta(hours=48, seconds=1))
    assert lapsed.status is BasisStatus.LAPSED


def test_another_agencys_basis_is_not_found_for_use(world: World) -> None:
    basis_id = _approved(world, _draft())
    with pytest.raises(Exception, match="No such legal basis") as caught:
        _use(world, world.stranger, basis_id, NOW)
    assert getattr(caught.value, "code", None) == "legal-basis-not-found"


# --- the database keeps its own invariants ---------------------------------------------------


def _row(session: Session, **changes: Any) -> LegalBasis:
    agency = create_agency(
        session, details=AgencyDetails("Agency", AgencyKind.POLICE, "FR", "Lyon"), now=NOW
    )
    author = _principal(session, Role.INVESTIGATOR, agency.id)
    values: dict[str, Any] = {
        "agency_id": agency.id,
        "created_by": author.account_id,
        "created_at": NOW,
        "status": "pending",
        "case_number": "C-1",
        "offence_category": "rape",
        "legal_provision": "Art. 1",
        "authorisation_kind": "judicial",
        "authorisation_reference": "R-1",
        "authorising_authority": "TJ",
        "authorisation_issued_at": NOW,
        "expires_at": NOW + timedelta(days=1),
        "justification": "j" * 60,
        "max_searches": 3,
        "searches_used": 0,
    }
    values.update(changes)
    return LegalBasis(**values)


@pytest.mark.parametrize(
    "changes",
    [
        {"searches_used": 4},
        {"max_searches": 0},
        {"status": "dormant"},
        {"authorisation_reference": None},
        {"authorisation_kind": "urgent"},  # urgent without a ratification deadline
        {"expires_at": NOW},
        {"status": "approved"},  # approved without a decision
    ],
)
def test_the_database_refuses_an_inconsistent_basis(session: Session, changes: Any) -> None:
    session.add(_row(session, **changes))
    with pytest.raises(IntegrityError):
        session.flush()


def test_the_database_refuses_self_approval(session: Session) -> None:
    row = _row(session)
    session.add(row)
    session.flush()
    row.status, row.decided_at, row.decided_by = "approved", NOW, row.created_by
    with pytest.raises(IntegrityError):
        session.flush()


def test_0004_downgrades_and_upgrades_again(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'm.db'}")
    upgrade(engine, "0004_legal_bases")
    assert "legal_bases" in inspect(engine).get_table_names()
    config = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "0003_gallery")
    assert "legal_bases" not in inspect(engine).get_table_names()
    upgrade(engine, "0004_legal_bases")
    assert "legal_bases" in inspect(engine).get_table_names()
    engine.dispose()
