"""The legal-basis table keeps its own invariants, and its migration downgrades cleanly."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any, cast

import pytest
from alembic import command
from sqlalchemy import CheckConstraint, Table, inspect
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from governance.core.db import make_engine
from governance.core.migrate import alembic_config, upgrade
from governance.core.orm import one_of
from governance.legal_basis.models import LegalBasis
from governance.legal_basis.values import AuthorisationKind
from tests import factories


@pytest.mark.parametrize(
    "changes",
    [
        {"searches_used": 11},  # past max_searches (10)
        {"max_searches": 0},
        {"status": "dormant"},
        {"status": "exhausted"},  # shown, never stored
        {"authorisation_reference": None},
        {"authorisation_kind": "urgent"},  # urgent without a ratification deadline
        {"ratification_deadline": factories.NOW},  # a deadline on a judicial basis
        {"expires_at": factories.NOW - timedelta(days=1)},  # at issued_at
        {"status": "approved"},  # approved without a decision
        {"lapse_cause": "boredom"},
        {"ratification_outcome": "maybe"},
    ],
)
def test_the_database_refuses_an_inconsistent_basis(session: Session, changes: Any) -> None:
    author = factories.account(session)
    with pytest.raises(IntegrityError):
        factories.legal_basis(session, author, **changes)


def test_the_database_refuses_self_approval(session: Session) -> None:
    row = factories.legal_basis(session, factories.account(session))
    row.status, row.decided_at, row.decided_by = "approved", factories.NOW, row.created_by
    with pytest.raises(IntegrityError):
        session.flush()


def test_the_allowed_values_are_the_enums_in_their_order() -> None:
    checks = {
        c.name: str(c.sqltext)
        for c in cast(Table, LegalBasis.__table__).constraints
        if isinstance(c, CheckConstraint)
    }
    assert checks["ck_legal_bases_status"] == (
        "status IN ('pending', 'approved', 'rejected', 'revoked', 'expired', 'lapsed')"
    )
    assert checks["ck_legal_bases_authorisation_kind"] == (
        "authorisation_kind IN ('judicial', 'administrative', 'urgent')"
    )
    assert checks["ck_legal_bases_lapse_cause"] == (
        "lapse_cause IS NULL OR lapse_cause IN ('deadline', 'refused')"
    )
    assert one_of("kind", ["it's", AuthorisationKind.URGENT]) == "kind IN ('it''s', 'urgent')"


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
