"""Deadlines of legal bases over HTTP, driven by the app's clock: expiry, the throttled sweep
before requests, urgent bases ratified in time, lapsing at the deadline or on refusal, and the
``facewarden governance sweep`` command.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import pytest
from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient

from api.cli import cli
from api.context import utcnow
from api.settings import Settings
from governance.legal_basis.offences import parse_offence_categories
from governance.legal_basis.services import create_basis
from governance.legal_basis.values import (
    Authorisation,
    AuthorisationKind,
    BasisDraft,
    BasisPolicy,
    BasisUse,
)
from tests.api.bases import (
    JUSTIFICATION,
    Team,
    act,
    approved,
    create,
    field_errors,
    iso,
    make_team,
    now_of,
    ok,
    payloads,
    principal_of,
    read,
    refused,
    shift_clock,
    types,
    use,
    wire_counting_hook,
)
from tests.api.helpers import problem, runtime_of


@pytest.fixture(scope="module")
def team(app: Flask) -> Team:
    return make_team(app)


@pytest.fixture
def clock(app: Flask) -> Iterator[list[timedelta]]:
    yield from shift_clock(app)


@pytest.fixture
def hook_calls(app: Flask, monkeypatch: pytest.MonkeyPatch) -> list[tuple[UUID, str]]:
    return wire_counting_hook(app, monkeypatch)


def test_expiry(client: FlaskClient, app: Flask, team: Team, clock: list[timedelta]) -> None:
    basis = approved(client, app, team)
    waiting = create(client, app, team.inv)
    clock.append(timedelta(days=3, seconds=1))
    assert use(app, team.inv, basis) == "/problems/legal-basis-expired"  # even before settling
    shown = read(client, team.inv, basis)
    assert (shown["status"], shown["usable"]) == ("expired", False)
    assert shown["expired_at"] is not None
    read(client, team.sup, basis)
    assert types(app, basis["id"]).count("legal_basis:expire") == 1
    refused(act(client, team.sup, waiting, "approve"), "expired")
    # The refusal rolled back, but the expiry it found was recorded in a unit of work before it.
    assert types(app, waiting["id"]) == ["legal_basis:create", "legal_basis:expire"]
    refused(act(client, team.sup, basis, "revoke"), "expired")


def test_a_throttled_sweep_runs_before_requests(
    client: FlaskClient, app: Flask, team: Team, clock: list[timedelta], settings: Settings
) -> None:
    assert settings.legal_basis_sweep_seconds == 60
    now = now_of(app)
    early = approved(client, app, team, authorisation={"expires_at": iso(now + timedelta(days=1))})
    late_expiry = iso(now + timedelta(days=1, seconds=30))
    late = approved(client, app, team, authorisation={"expires_at": late_expiry})
    me = "/v1/accounts/me"
    clock.append(timedelta(days=1, seconds=1))
    client.get(me, headers=team.admin.headers)  # nobody reads either basis
    assert types(app, early["id"])[-1] == "legal_basis:expire"
    clock.append(timedelta(days=1, seconds=31))
    client.get(me, headers=team.admin.headers)  # 30 s after the last sweep: throttled
    assert types(app, late["id"])[-1] == "legal_basis:approve"
    clock.append(timedelta(days=1, seconds=62))
    client.get(me, headers=team.admin.headers)
    assert types(app, late["id"])[-1] == "legal_basis:expire"


def _urgent(client: FlaskClient, app: Flask, team: Team) -> dict[str, Any]:
    basis = create(client, app, team.inv, kind="urgent")
    assert basis["authorisation"]["reference"] is None
    assert basis["ratification"]["outcome"] is None
    created = datetime.fromisoformat(basis["created_at"])
    assert datetime.fromisoformat(basis["ratification_deadline"]) == created + timedelta(hours=48)
    return ok(act(client, team.sup, basis, "approve"))


def _granted(app: Flask) -> dict[str, Any]:
    now = now_of(app)
    return {
        "outcome": "granted",
        "reference": "JLD-2026-1190",
        "authority": "Juge des libertés, TJ Lyon",
        "issued_at": iso(now - timedelta(hours=2)),
        "expires_at": iso(now + timedelta(days=30)),
    }


def test_urgent_basis_ratified_in_time(
    client: FlaskClient, app: Flask, team: Team, clock: list[timedelta], hook_calls: list[Any]
) -> None:
    basis = _urgent(client, app, team)
    assert basis["usable"] is True
    spent = use(app, team.inv, basis)
    assert isinstance(spent, BasisUse) and spent.authorisation_reference is None
    assert spent.authorisation_kind is AuthorisationKind.URGENT
    clock.append(timedelta(hours=47))
    grant = _granted(app)
    by_author = act(client, team.inv, basis, "ratification", **grant)
    assert problem(by_author, 403)["type"] == "/problems/forbidden"
    incomplete = act(client, team.sup, basis, "ratification", outcome="granted")
    assert set(field_errors(incomplete)) == {"reference", "authority", "issued_at", "expires_at"}
    too_early = {**grant, "issued_at": iso(now_of(app) - timedelta(days=3))}
    assert "issued_at" in field_errors(act(client, team.sup, basis, "ratification", **too_early))
    ratified = ok(act(client, team.sup, basis, "ratification", **grant))
    assert ratified["ratification"]["outcome"] == "granted"
    assert ratified["authorisation"]["reference"] == "JLD-2026-1190"
    assert ratified["expires_at"] == ratified["authorisation"]["expires_at"]
    again = act(client, team.sup2, basis, "ratification", **grant)
    assert problem(again, 409)["type"] == "/problems/already-ratified"
    clock.append(timedelta(hours=49))
    shown = read(client, team.inv, basis)
    assert (shown["status"], shown["usable"]) == ("approved", True)
    after = use(app, team.inv, basis)
    assert isinstance(after, BasisUse) and after.authorisation_reference == "JLD-2026-1190"
    assert not hook_calls
    ledger = payloads(app, basis["id"])
    assert [t for t, _, _ in ledger] == [
        "legal_basis:create",
        "legal_basis:approve",
        "legal_basis:ratify",
    ]
    assert ledger[2][1]["outcome"] == "granted"
    assert ledger[2][1]["authorisation_reference"] == "JLD-2026-1190"


def test_urgent_basis_lapses_at_its_deadline(
    client: FlaskClient, app: Flask, team: Team, clock: list[timedelta], hook_calls: list[Any]
) -> None:
    basis = _urgent(client, app, team)
    for _ in range(2):
        assert isinstance(use(app, team.inv, basis), BasisUse)
    clock.append(timedelta(hours=48, seconds=1))
    assert use(app, team.inv, basis) == "/problems/legal-basis-lapsed"
    refused(act(client, team.sup, basis, "ratification", **_granted(app)), "lapsed")
    shown = read(client, team.inv, basis)
    assert (shown["status"], shown["lapse_cause"], shown["results_deleted"]) == (
        "lapsed",
        "deadline",
        2,
    )
    assert hook_calls == [(UUID(basis["id"]), "lapsed")]
    refused(act(client, team.sup, basis, "revoke"), "lapsed")
    kind, lapse, _ = payloads(app, basis["id"])[-1]
    assert kind == "legal_basis:lapse"
    assert (lapse["cause"], lapse["results_deleted"], lapse["searches_used"]) == ("deadline", 2, 2)


def test_unratified_pending_urgent_basis_lapses(
    client: FlaskClient, app: Flask, team: Team, clock: list[timedelta], hook_calls: list[Any]
) -> None:
    basis = create(client, app, team.inv, kind="urgent")
    clock.append(timedelta(hours=49))
    refused(act(client, team.sup, basis, "approve"), "lapsed")
    assert types(app, basis["id"]) == ["legal_basis:create", "legal_basis:lapse"]
    assert hook_calls == [(UUID(basis["id"]), "lapsed")]


def test_refused_ratification_lapses_the_basis(
    client: FlaskClient, app: Flask, team: Team, hook_calls: list[Any]
) -> None:
    basis = _urgent(client, app, team)
    assert isinstance(use(app, team.inv, basis), BasisUse)
    no_reason = act(client, team.sup2, basis, "ratification", outcome="refused")
    assert set(field_errors(no_reason)) == {"reason"}
    lapsed = ok(
        act(client, team.sup2, basis, "ratification", outcome="refused", reason="Not urgent.")
    )
    assert (lapsed["status"], lapsed["lapse_cause"], lapsed["results_deleted"]) == (
        "lapsed",
        "refused",
        1,
    )
    assert lapsed["ratification"]["outcome"] == "refused"
    assert use(app, team.inv, basis) == "/problems/legal-basis-lapsed"
    ledger = payloads(app, basis["id"])
    assert [t for t, _, _ in ledger][-2:] == ["legal_basis:ratify", "legal_basis:lapse"]
    assert ledger[-2][1]["reason_sha256"] == hashlib.sha256(b"Not urgent.").hexdigest()
    assert (ledger[-1][1]["cause"], ledger[-1][1]["results_deleted"]) == ("refused", 1)
    assert hook_calls == [(UUID(basis["id"]), "lapsed")]


def test_only_urgent_bases_are_ratified(client: FlaskClient, app: Flask, team: Team) -> None:
    basis = approved(client, app, team)
    response = act(client, team.sup2, basis, "ratification", **_granted(app))
    assert problem(response, 409)["type"] == "/problems/legal-basis-not-urgent"


def test_cli_sweep_expires_and_reports(app: Flask, team: Team, settings: Settings) -> None:
    rt = runtime_of(app)
    then = utcnow() - timedelta(days=3)

    draft = BasisDraft(
        case_number="PJ-CLI-1",
        offence_category="terrorism",
        legal_provision="Art. 706-73 CPP",
        authorisation=Authorisation(
            AuthorisationKind.JUDICIAL, "JLD-9", "TJ Paris", then, then + timedelta(days=2)
        ),
        justification=JUSTIFICATION,
        max_searches=3,
    )
    with rt.units(then)() as work:
        made = create_basis(
            work,
            principal=principal_of(team.inv),
            draft=draft,
            policy=BasisPolicy(offences=parse_offence_categories("annex_ii")),
        )
    env = {
        "FACEWARDEN_DATA_DIR": str(settings.data_dir),
        "FACEWARDEN_DATABASE_URL": settings.database_url,
        "FACEWARDEN_LEDGER_ORIGIN": settings.ledger_origin,
        "FACEWARDEN_MODELS_DIR": str(settings.models_dir),
    }
    result = CliRunner().invoke(cli, ["governance", "sweep"], env=env)
    assert result.exit_code == 0, result.output
    assert f"expired {made.id} (case PJ-CLI-1)" in result.output
    assert "swept: " in result.output
    assert result.output.strip().splitlines()[-1].startswith("purged: ")
    assert types(app, str(made.id)) == ["legal_basis:create", "legal_basis:expire"]
    second = CliRunner().invoke(cli, ["governance", "sweep"], env=env)
    assert second.exit_code == 0 and str(made.id) not in second.output
