"""Deadlines: expiry, the lapse of an urgent basis (its hooks run and their count is recorded),
settling one basis, the sweep in batches, and concurrent sweeps recording one transition.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any
from uuid import UUID

import pytest

from governance.core.recording import SYSTEM
from governance.core.work import Hooks, Units, Work
from governance.legal_basis.deadlines import (
    apply_lapse,
    effective_status,
    settle_basis,
    sweep_batch,
    sweep_due,
)
from governance.legal_basis.decisions import decide_basis
from governance.legal_basis.models import LegalBasis
from governance.legal_basis.values import AuthorisationKind, BasisStatus, LapseCause, Verdict
from tests.factories import NOW
from tests.unit.governance.legal_basis.helpers import World, counting_hook, draft, together

Recorded = Callable[..., list[tuple[str, dict[str, Any]]]]
Lapses = tuple[Work, list[tuple[UUID, str]]]
Make = Callable[..., LegalBasis]


@pytest.mark.parametrize(
    ("changes", "at", "status"),
    [
        ({}, NOW, BasisStatus.PENDING),
        ({"expires_at": NOW}, NOW, BasisStatus.EXPIRED),
        ({"status": "revoked", "expires_at": NOW}, NOW, BasisStatus.REVOKED),
        ({"urgent": True}, NOW + timedelta(hours=48), BasisStatus.LAPSED),
        ({"urgent": True, "ratification_outcome": "granted"}, NOW + timedelta(hours=48), None),
        ({"urgent": True, "status": "revoked"}, NOW + timedelta(hours=48), BasisStatus.LAPSED),
        ({"urgent": True, "status": "lapsed"}, NOW + timedelta(hours=48), None),
    ],
)
def test_the_effective_status_applies_what_is_due(
    make_basis: Make, changes: dict[str, Any], at: Any, status: BasisStatus | None
) -> None:
    row = make_basis(**changes)
    assert effective_status(row, at) is (status or BasisStatus(row.status))


def test_settling_expires_a_basis_once(work: Work, make_basis: Make, recorded: Recorded) -> None:
    row = make_basis(approved=True, expires_at=NOW, searches_used=3)
    transition = settle_basis(work, basis_id=row.id)
    assert transition is not None
    assert (transition.basis_id, transition.status) == (row.id, BasisStatus.EXPIRED)
    assert settle_basis(work, basis_id=row.id) is None
    [(kind, payload)] = recorded(row.id)
    assert (kind, payload["searches_used"]) == ("legal_basis:expire", 3)


def test_settling_what_is_not_due_records_nothing(
    work: Work, make_basis: Make, recorded: Recorded
) -> None:
    row = make_basis(approved=True)
    assert settle_basis(work, basis_id=row.id) is None
    assert settle_basis(work, basis_id=UUID(int=0)) is None
    assert recorded(row.id) == []


def test_a_lapse_runs_the_registered_hooks_and_records_their_count(
    lapse_calls: Lapses, make_basis: Make, recorded: Recorded
) -> None:
    work, calls = lapse_calls
    row = make_basis(urgent=True, approved=True, ratification_deadline=NOW, searches_used=4)
    transition = settle_basis(work, basis_id=row.id)
    assert transition is not None
    assert (transition.status, transition.results_deleted) == (BasisStatus.LAPSED, 4)
    assert calls == [(row.id, "lapsed")]  # after the lapse, in its transaction
    assert (row.lapse_cause, row.results_deleted) == ("deadline", 4)
    kind, payload = recorded(row.id)[-1]
    assert kind == "legal_basis:lapse"
    assert (payload["cause"], payload["results_deleted"]) == ("deadline", 4)


def test_a_lapse_is_applied_once(lapse_calls: Lapses, make_basis: Make) -> None:
    work, calls = lapse_calls
    row = make_basis(urgent=True, approved=True)
    assert apply_lapse(work, row, cause=LapseCause.REFUSED, actor=SYSTEM) is True
    assert apply_lapse(work, row, cause=LapseCause.REFUSED, actor=SYSTEM) is False
    assert len(calls) == 1


def test_a_deadline_lapse_waits_for_the_deadline(lapse_calls: Lapses, make_basis: Make) -> None:
    work, calls = lapse_calls
    row = make_basis(urgent=True, approved=True)  # due in 48 hours
    assert apply_lapse(work, row, cause=LapseCause.DEADLINE, actor=SYSTEM) is False
    assert (row.status, calls) == ("approved", [])


def test_the_sweep_settles_only_the_agency_asked(work: Work, people: Any, make_basis: Make) -> None:
    due = make_basis(approved=True, expires_at=NOW)
    assert due.id not in {
        t.basis_id for t in sweep_batch(work, agency_id=people.stranger.agency_id)
    }
    swept = sweep_batch(work, agency_id=people.investigator.agency_id)
    assert [(t.basis_id, t.status) for t in swept] == [(due.id, BasisStatus.EXPIRED)]


def test_the_sweep_runs_in_batches_of_their_own(world: World) -> None:
    ids = [world.approved(draft(expires_at=NOW + timedelta(days=1))) for _ in range(3)]
    units = Units(world.sessions, world.keys, NOW + timedelta(days=1), Hooks())
    assert sorted(t.basis_id for t in sweep_due(units, batches=1)) == sorted(ids)
    assert sweep_due(units) == []


def test_concurrent_sweeps_record_one_expiry(world: World) -> None:
    basis_id = world.approved(draft(expires_at=NOW + timedelta(days=1)))
    later = NOW + timedelta(days=1, seconds=1)

    results = together(6, lambda: world.run(lambda w: list(sweep_batch(w)), at=later))
    assert not [r for r in results if isinstance(r, Exception)], results
    transitions = [t for r in results if isinstance(r, list) for t in r]
    assert [(t.basis_id, t.status) for t in transitions] == [(basis_id, BasisStatus.EXPIRED)]
    assert [t for t, _ in world.ledger(basis_id)].count("legal_basis:expire") == 1


def test_an_unratified_urgent_basis_lapses_even_after_it_expired(world: World) -> None:
    basis_id = world.approved(draft(AuthorisationKind.URGENT, expires_at=NOW + timedelta(hours=24)))
    calls: list[tuple[UUID, str]] = []

    def settle(hours: int) -> Any:
        return world.run(
            lambda w: settle_basis(w, basis_id=basis_id),
            at=NOW + timedelta(hours=hours),
            hooks=(counting_hook(calls, deleted=1),),
        )

    expired = settle(25)
    assert expired.status is BasisStatus.EXPIRED and not calls
    assert settle(47) is None
    lapsed = settle(48)
    assert (lapsed.status, lapsed.results_deleted) == (BasisStatus.LAPSED, 1)
    assert calls == [(basis_id, "lapsed")]
    assert [t for t, _ in world.ledger(basis_id)] == [
        "legal_basis:create",
        "legal_basis:approve",
        "legal_basis:expire",
        "legal_basis:lapse",
    ]


def test_revoking_an_urgent_basis_does_not_excuse_its_ratification(world: World) -> None:
    basis_id = world.approved(draft(AuthorisationKind.URGENT))
    world.run(
        lambda w: decide_basis(
            w, principal=world.supervisor, basis_id=basis_id, verdict=Verdict.REVOKE, reason="stop"
        )
    )
    lapsed = world.run(
        lambda w: settle_basis(w, basis_id=basis_id), at=NOW + timedelta(hours=48, seconds=1)
    )
    assert lapsed is not None and lapsed.status is BasisStatus.LAPSED
