"""Decisions: approve, reject and revoke share one path (four eyes, the states each accepts, what
is recorded); ratification granted or refused; settling first so a transition outlives a refusal.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any
from uuid import UUID

import pytest

from governance.core.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from governance.core.work import Hooks, Units, Work
from governance.legal_basis.decisions import decide_basis, ratify_basis, settle_then_decide
from governance.legal_basis.models import LegalBasis
from governance.legal_basis.rules import BasisUnusable
from governance.legal_basis.services import create_basis
from governance.legal_basis.values import (
    BasisStatus,
    Ratification,
    RatificationOutcome,
    Verdict,
)
from tests.factories import NOW
from tests.unit.governance.legal_basis.helpers import POLICY, People, World, draft

Recorded = Callable[..., list[tuple[str, dict[str, Any]]]]
Make = Callable[..., LegalBasis]
GRANTED = Ratification(
    RatificationOutcome.GRANTED,
    reference="JLD-2026-9",
    authority="Juge des libertés",
    issued_at=NOW,
    expires_at=NOW + timedelta(days=30),
)


@pytest.mark.parametrize(
    ("verdict", "status", "entry"),
    [
        (Verdict.APPROVE, BasisStatus.APPROVED, "legal_basis:approve"),
        (Verdict.REJECT, BasisStatus.REJECTED, "legal_basis:reject"),
        (Verdict.REVOKE, BasisStatus.REVOKED, "legal_basis:revoke"),
    ],
)
def test_a_verdict_on_a_pending_basis_is_recorded(
    work: Work,
    people: People,
    make_basis: Make,
    recorded: Recorded,
    verdict: Verdict,
    status: BasisStatus,
    entry: str,
) -> None:
    row = make_basis()
    shown = decide_basis(
        work, principal=people.supervisor, basis_id=row.id, verdict=verdict, reason="Checked."
    )
    assert shown.status is status
    decision = shown.revocation if verdict is Verdict.REVOKE else shown.decision
    assert decision is not None
    assert (decision.at, decision.by, decision.reason) == (
        NOW,
        people.supervisor.account_id,
        "Checked.",
    )
    [(kind, payload)] = recorded(row.id)
    assert kind == entry
    assert len(payload["reason_sha256"]) == 64 and "reason" not in payload


@pytest.mark.parametrize("verdict", [Verdict.APPROVE, Verdict.REJECT])
def test_the_author_may_not_decide_their_own_basis(
    work: Work, people: People, make_basis: Make, verdict: Verdict
) -> None:
    row = make_basis(by=people.supervisor)
    with pytest.raises(PermissionDenied) as caught:
        decide_basis(
            work, principal=people.supervisor, basis_id=row.id, verdict=verdict, reason="Mine."
        )
    assert caught.value.code == "four-eyes-required"


@pytest.mark.parametrize(
    ("verdict", "changes", "error", "code"),
    [
        (Verdict.APPROVE, {"approved": True}, Conflict, "already-decided"),
        (Verdict.REJECT, {"approved": True}, Conflict, "already-decided"),
        (Verdict.APPROVE, {"expires_at": NOW}, BasisUnusable, "legal-basis-expired"),
        (Verdict.REVOKE, {"status": "revoked"}, BasisUnusable, "legal-basis-revoked"),
        (
            Verdict.REVOKE,
            {"urgent": True, "ratification_deadline": NOW},
            BasisUnusable,
            "legal-basis-lapsed",
        ),
    ],
)
def test_a_verdict_the_state_forbids_is_refused(
    work: Work,
    people: People,
    make_basis: Make,
    verdict: Verdict,
    changes: dict[str, Any],
    error: type[Exception],
    code: str,
) -> None:
    row = make_basis(**changes)
    with pytest.raises(error) as caught:
        decide_basis(
            work, principal=people.supervisor2, basis_id=row.id, verdict=verdict, reason="No."
        )
    assert getattr(caught.value, "code", None) == code


def test_an_approved_basis_may_be_revoked(work: Work, people: People, make_basis: Make) -> None:
    row = make_basis(approved=True)
    shown = decide_basis(
        work, principal=people.supervisor2, basis_id=row.id, verdict=Verdict.REVOKE, reason="Off."
    )
    assert (shown.status, shown.usable) == (BasisStatus.REVOKED, False)


@pytest.mark.parametrize(
    ("who", "error"),
    [("investigator", PermissionDenied), ("stranger", NotFound), ("oversight", PermissionDenied)],
)
def test_only_the_agencys_supervisors_decide(
    work: Work, people: People, make_basis: Make, who: str, error: type[Exception]
) -> None:
    for verdict in Verdict:
        with pytest.raises(error):
            decide_basis(
                work,
                principal=getattr(people, who),
                basis_id=make_basis().id,
                verdict=verdict,
                reason="Not mine to decide.",
            )


# --- ratification ----------------------------------------------------------------------------


def test_a_granted_ratification_names_the_authorisation(
    work: Work, people: People, make_basis: Make, recorded: Recorded
) -> None:
    row = make_basis(urgent=True, approved=True)
    shown = ratify_basis(
        work, principal=people.supervisor2, basis_id=row.id, decision=GRANTED, policy=POLICY
    )
    assert (shown.status, shown.authorisation.reference) == (BasisStatus.APPROVED, "JLD-2026-9")
    assert shown.ratification is not None
    assert shown.ratification.outcome is RatificationOutcome.GRANTED
    assert shown.expires_at == NOW + timedelta(days=30)
    [(kind, payload)] = recorded(row.id)
    assert (kind, payload["outcome"]) == ("legal_basis:ratify", "granted")


def test_a_refused_ratification_lapses_the_basis(
    lapse_calls: tuple[Work, list[Any]], people: People, make_basis: Make, recorded: Recorded
) -> None:
    work, calls = lapse_calls
    row = make_basis(urgent=True, approved=True, searches_used=2)
    refused = Ratification(RatificationOutcome.REFUSED, reason="Not urgent.")
    shown = ratify_basis(
        work, principal=people.supervisor2, basis_id=row.id, decision=refused, policy=POLICY
    )
    assert (shown.status, shown.lapse_cause, shown.results_deleted) == ("lapsed", "refused", 2)
    assert calls == [(row.id, "lapsed")]
    assert [t for t, _ in recorded(row.id)] == ["legal_basis:ratify", "legal_basis:lapse"]


@pytest.mark.parametrize(
    ("changes", "decision", "error", "code"),
    [
        ({}, GRANTED, Conflict, "legal-basis-not-urgent"),
        (
            {"urgent": True, "ratification_outcome": "granted"},
            GRANTED,
            Conflict,
            "already-ratified",
        ),
        (
            {"urgent": True, "ratification_deadline": NOW},
            GRANTED,
            BasisUnusable,
            "legal-basis-lapsed",
        ),
        ({"urgent": True}, Ratification(RatificationOutcome.REFUSED), InvalidInput, None),
        ({"urgent": True}, Ratification(RatificationOutcome.GRANTED), InvalidInput, None),
    ],
)
def test_a_ratification_that_cannot_be_recorded_is_refused(
    work: Work,
    people: People,
    make_basis: Make,
    changes: dict[str, Any],
    decision: Ratification,
    error: type[Exception],
    code: str | None,
) -> None:
    row = make_basis(approved=True, **changes)
    with pytest.raises(error) as caught:
        ratify_basis(
            work, principal=people.supervisor2, basis_id=row.id, decision=decision, policy=POLICY
        )
    if code is not None:
        assert getattr(caught.value, "code", None) == code


def test_the_author_may_not_ratify(work: Work, people: People, make_basis: Make) -> None:
    row = make_basis(urgent=True, by=people.supervisor)
    with pytest.raises(PermissionDenied) as caught:
        ratify_basis(
            work, principal=people.supervisor, basis_id=row.id, decision=GRANTED, policy=POLICY
        )
    assert caught.value.code == "four-eyes-required"


# --- settle first, then decide ---------------------------------------------------------------


def test_a_refused_decision_keeps_the_expiry_it_found(world: World) -> None:
    basis_id = world.run(lambda w: _pending(w, world, expires_at=NOW + timedelta(days=1)))
    units = Units(world.sessions, world.keys, NOW + timedelta(days=1), Hooks())
    with pytest.raises(BasisUnusable) as caught:
        settle_then_decide(
            units,
            principal=world.supervisor,
            basis_id=basis_id,
            verdict=Verdict.APPROVE,
            reason="Late.",
        )
    assert caught.value.code == "legal-basis-expired"
    assert [t for t, _ in world.ledger(basis_id)] == ["legal_basis:create", "legal_basis:expire"]


def _pending(work: Work, world: World, **changes: Any) -> UUID:
    return create_basis(
        work, principal=world.investigator, draft=draft(**changes), policy=POLICY
    ).id
