"""Refusals on record (``governance.search.refusals``): the first of each reason in full, the
rest counted, a summary once the window closes, and the reason named by the error's code."""

from __future__ import annotations

from datetime import timedelta
from uuid import uuid4

import pytest
from sqlalchemy.orm import Session

from biometrics.errors import (
    DomainError,
    ImageTooLarge,
    IndexUnavailable,
    InvalidImage,
    NoFaceFound,
)
from governance.core.errors import GovernanceError, NotFound
from governance.core.work import Units, Work
from governance.identity.principals import Principal
from governance.search.refusals import (
    MAX_FULL_REFUSALS,
    REFUSAL_WINDOW,
    record_refusal,
    refuse,
    summarize_refusals,
    window_start,
)
from ledger.entry import format_ts
from tests import factories
from tests.unit.governance.search.conftest import SearchTeam, entries_since, next_seq


@pytest.fixture
def caller(session: Session, team: SearchTeam) -> Principal:
    return factories.principal(session, team.searcher)


def _refuse(work: Work, caller: Principal, reason: str) -> int | None:
    return record_refusal(
        work, principal=caller, reason=reason, legal_basis_id=None, probe_sha256=None
    )


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (NotFound("gone", code="legal-basis-not-found"), "legal-basis-not-found"),
        (GovernanceError("refused"), "governance-error"),
        (NoFaceFound("none"), "no-face"),
        (InvalidImage("bad"), "invalid-image"),
        (ImageTooLarge("big", limit=1, actual=2), "image-too-large"),
        (IndexUnavailable("down"), "vector-index-unavailable"),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_every_refusable_error_names_its_reason_by_its_code(error: Exception, reason: str) -> None:
    assert isinstance(error, DomainError)
    assert error.code == reason


def test_the_first_refusal_of_a_reason_is_recorded_in_full_and_repeats_are_counted(
    work: Work, session: Session, caller: Principal
) -> None:
    start = next_seq(session)
    first = _refuse(work, caller, "legal-basis-expired")
    assert first == start
    assert _refuse(work, caller, "legal-basis-expired") is None
    assert _refuse(work, caller, "no-face") == start + 1
    assert [e["payload"]["reason"] for e in entries_since(session, start)] == [
        "legal-basis-expired",
        "no-face",
    ]


def test_a_window_records_at_most_the_cap_in_full_then_one_summary(
    work: Work, session: Session, caller: Principal
) -> None:
    start = next_seq(session)
    for n in range(MAX_FULL_REFUSALS + 3):
        _refuse(work, caller, f"reason-{n}")
    assert len(entries_since(session, start)) == MAX_FULL_REFUSALS
    later = Work(session, work.now + REFUSAL_WINDOW, work.keys, work.hooks)
    assert summarize_refusals(later) == 1
    summary = entries_since(session, start)[-1]
    assert summary["type"] == "search:refuse_repeats"
    opened = window_start(work.now)
    assert summary["payload"]["credential_id"] == str(caller.credential_id)
    assert summary["payload"]["window"]["start"] == format_ts(opened)
    assert sum(r["repeats"] for r in summary["payload"]["refusals"]) == 3
    assert summarize_refusals(later) == 0  # each window is summarized once


def test_an_open_window_is_not_summarized(work: Work, session: Session, caller: Principal) -> None:
    _refuse(work, caller, "no-face")
    _refuse(work, caller, "no-face")
    assert summarize_refusals(work) == 0


def test_refuse_records_in_a_unit_of_work_of_its_own(
    units: Units, session: Session, caller: Principal
) -> None:
    start = next_seq(session)
    basis = uuid4()
    refuse(units, caller, NoFaceFound("none"), legal_basis_id=basis, probe_sha256="ab" * 32)
    [entry] = entries_since(session, start)
    assert entry["payload"]["reason"] == "no-face"
    assert entry["payload"]["legal_basis_id"] == str(basis)
    assert entry["payload"]["probe_sha256"] == "ab" * 32


def test_windows_are_aligned_to_the_epoch() -> None:
    at = factories.NOW + timedelta(seconds=42)
    assert window_start(at) == factories.NOW


def test_a_window_summarized_before_the_clock_went_back_is_never_counted_twice(
    work: Work, session: Session, caller: Principal
) -> None:
    # The cap is reached and one repeat counted; the window closes and is summarized. Then the
    # clock goes back into it (a worker behind, a clock corrected): a refusal of a new reason
    # must not open a second count of that window, which the audit flags as counted twice.
    start = next_seq(session)
    for n in range(MAX_FULL_REFUSALS + 1):
        _refuse(work, caller, f"reason-{n}")
    later = Work(session, work.now + REFUSAL_WINDOW, work.keys, work.hooks)
    assert summarize_refusals(later) == 1
    assert _refuse(work, caller, "a-new-reason") is not None  # recorded in full, not counted
    assert summarize_refusals(later) == 0
    summaries = [
        e["payload"]["window"]["start"]
        for e in entries_since(session, start)
        if e["type"] == "search:refuse_repeats"
    ]
    assert summaries == [format_ts(window_start(work.now))]
