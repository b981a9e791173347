"""The server honours its OpenAPI document: schemathesis, every check, every role, with links.

A bounded profile runs in the suite (``FACEWARDEN_TEST_CONTRACT_PROFILE=deep`` or bench/contract.py
runs the deep one). The app has a database and data directory of its own, since fuzzing
suspends, revokes and decides whatever the links lead it to. Every check is on; none is
disabled.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask

from api.app import create_app
from api.bootstrap import initialize
from api.settings import Settings
from tests.api.helpers import Agent, make_account, make_admin, make_agency, make_staff
from tests.conftest import (
    _postgres_server_url,
    create_test_database,
    drop_test_database,
    ensure_starter_pack,
    models_dir_for_tests,
)
from tests.contract.fuzz import BOUNDED, DEEP, LIGHT, Outcome, run

pytestmark = [pytest.mark.slow, pytest.mark.models]

ROLES = ("admin", "oversight", "curator", "supervisor", "investigator", "anonymous")
PROFILE = {"deep": DEEP, "light": LIGHT}.get(
    os.environ.get("FACEWARDEN_TEST_CONTRACT_PROFILE", ""), BOUNDED
)
OUTCOMES: dict[str, Outcome] = {}


@pytest.fixture(scope="module")
def contract_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flask]:
    url, admin = create_test_database(
        _postgres_server_url(), tmp_path_factory.mktemp("contract-db")
    )
    settings = Settings.from_mapping(
        {
            "data_dir": str(tmp_path_factory.mktemp("contract-var")),
            "database_url": url,
            "ledger_origin": "contract.facewarden.local/ledger",
            "models_dir": str(models_dir_for_tests()),
            "search_rate_limit": "100000 per minute",
            "account_rate_limit": "100000 per minute",
            "registration_rate_limit": "100000 per minute",
            "log_level": "warning",
        }
    )
    ensure_starter_pack(settings.models_dir)
    initialize(settings, tls=False, progress=lambda _msg: None)
    app = create_app(settings)
    yield app
    drop_test_database(admin, url)


@pytest.fixture(scope="module")
def agents(contract_app: Flask) -> dict[str, Agent | None]:
    client = contract_app.test_client()
    admin = make_admin(contract_app)
    supervisor = make_agency(client, admin)
    return {
        "admin": admin,
        "oversight": make_staff(client, admin, "oversight"),
        "curator": make_staff(client, admin, "curator"),
        "supervisor": supervisor,
        "investigator": make_account(client, admin, supervisor, "investigator"),
        "anonymous": None,
    }


@pytest.fixture(scope="module")
def faces(shared_dir: Path) -> list[Path]:
    return sorted((shared_dir / "faces" / "dev").glob("*.jpg"))[:24]


@pytest.mark.parametrize("role", ROLES)
def test_server_honours_the_document(
    contract_app: Flask, agents: dict[str, Agent | None], faces: list[Path], role: str
) -> None:
    agent = agents[role]
    outcome = run(contract_app, role, agent.token if agent else None, PROFILE, faces)
    OUTCOMES[role] = outcome
    print(f"\n{PROFILE.name} {role}: {outcome.cases} cases {outcome.cases_by_phase}")
    assert outcome.errors == [], "\n".join(outcome.errors)
    assert outcome.failures == [], "\n".join(outcome.failures)


def test_bounded_profile_runs_enough_cases() -> None:
    if len(OUTCOMES) < len(ROLES):
        pytest.skip("the per-role runs did not all run")
    total = sum(o.cases for o in OUTCOMES.values())
    assert total >= {DEEP.name: 20_000, BOUNDED.name: 2_000, LIGHT.name: 1_000}[PROFILE.name], total
