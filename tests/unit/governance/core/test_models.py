"""The migrated schema is exactly the models' schema, on SQLite and on PostgreSQL."""

from __future__ import annotations

import importlib
import pkgutil
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from uuid import uuid4

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask import Flask
from sqlalchemy import inspect
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

import governance
from governance.core.db import make_engine
from governance.core.migrate import alembic_config, current_revision, upgrade
from governance.core.orm import Base
from governance.identity.models import Account, Agency
from ledger.storage import metadata as ledger_metadata
from tests.api.helpers import runtime_of

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def _import_every_model_module() -> None:
    # Each domain adds its tables to Base from its own ``models`` module; load them all so a
    # table the migrations create but no model declares shows up as a difference.
    for module in pkgutil.walk_packages(governance.__path__, "governance."):
        if module.name.endswith(".models"):
            importlib.import_module(module.name)


def _head_revision() -> str:
    """The newest revision of the migration scripts, read from the scripts themselves."""
    head = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
    assert head is not None
    return head


def test_migrations_match_the_models(app: Flask) -> None:
    _import_every_model_module()
    engine = runtime_of(app).engine
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        # Alembic accepts a sequence of MetaData here (as env.py passes), its stub says one.
        diff = compare_metadata(context, [ledger_metadata, Base.metadata])  # type: ignore[arg-type]
    assert diff == []
    assert current_revision(engine) == _head_revision()


def test_0002_downgrades_and_upgrades_again(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'm.db'}")
    upgrade(engine, "0002_accounts")
    tables = {"agencies", "accounts", "registrations", "account_requests", "credentials"}
    assert tables <= set(inspect(engine).get_table_names())
    config = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "0001_ledger")
    assert not tables & set(inspect(engine).get_table_names())
    upgrade(engine, "0002_accounts")
    assert tables <= set(inspect(engine).get_table_names())
    engine.dispose()


def _agency() -> Agency:
    return Agency(
        name="Agence",
        kind="police",
        country="FR",
        jurisdiction="Lyon",
        status="active",
        created_at=NOW,
        status_changed_at=NOW,
    )


def test_timestamps_come_back_aware_utc(session: Session) -> None:
    agency = _agency()
    agency.created_at = NOW.astimezone(timezone(timedelta(hours=2)))
    session.add(agency)
    session.flush()
    session.expire_all()
    loaded = session.get(Agency, agency.id)
    assert loaded is not None and loaded.created_at == NOW and loaded.created_at.tzinfo == UTC


def test_naive_timestamps_are_refused(session: Session) -> None:
    agency = _agency()
    agency.created_at = NOW.replace(tzinfo=None)
    session.add(agency)
    with pytest.raises(Exception, match="naive"):
        session.flush()


@pytest.mark.parametrize(
    ("role", "with_agency"),
    [
        ("supervisor", False),
        ("investigator", False),
        ("admin", True),
        ("curator", True),
        ("king", False),
    ],
)
def test_the_database_refuses_roles_that_do_not_fit_the_agency(
    session: Session, role: str, with_agency: bool
) -> None:
    agency = _agency()
    session.add(agency)
    session.flush()
    session.add(
        Account(
            id=uuid4(),
            role=role,
            agency_id=agency.id if with_agency else None,
            status="active",
            name="X",
            email="x@example.org",
            person_key="x@example.org",
            scope_key=str(agency.id) if with_agency else "platform",
            created_at=NOW,
            status_changed_at=NOW,
        )
    )
    with pytest.raises(IntegrityError):
        session.flush()


def _person_account(agency: Agency, status: str, email: str = "p@example.org") -> Account:
    return Account(
        id=uuid4(),
        role="investigator",
        agency_id=agency.id,
        status=status,
        name="P",
        email=email,
        person_key=email.casefold(),
        scope_key=str(agency.id),
        created_at=NOW,
        status_changed_at=NOW,
    )


def test_the_database_keeps_one_active_account_per_person_and_agency(session: Session) -> None:
    # What two racing approvals would do after both passed the service's check.
    agency, other = _agency(), _agency()
    session.add_all([agency, other])
    session.flush()
    session.add_all(
        [
            _person_account(agency, "active"),
            _person_account(agency, "suspended"),
            _person_account(other, "active"),
        ]
    )
    session.flush()  # a suspended twin and another agency's account are allowed
    session.add(_person_account(agency, "active"))
    with pytest.raises(IntegrityError):
        session.flush()
