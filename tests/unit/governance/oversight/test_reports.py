"""Reading the ledger for oversight (``governance.oversight.reports``): who may read what, the
bounds of pages and proofs, and the accountability report recomputed from the entries."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from governance.core.errors import InvalidInput, NotFound, PermissionDenied
from governance.core.recording import SYSTEM
from governance.core.work import Work
from governance.identity.permissions import Role
from governance.identity.principals import Principal
from governance.oversight import reports
from governance.search.refusals import record_refusal
from ledger.entry import EntryType, parse_entry
from ledger.storage import tree_size
from tests import factories


@pytest.fixture
def oversight(session: Session) -> Principal:
    return factories.principal(session, factories.account(session, Role.OVERSIGHT))


@pytest.fixture
def investigator(session: Session) -> Principal:
    return factories.principal(session, factories.account(session, Role.INVESTIGATOR))


@pytest.fixture
def size(work: Work) -> int:
    """The log's size after two more entries (so it holds at least two)."""
    for _ in range(2):
        work.record(EntryType.SEARCH_PURGE, actor=SYSTEM, payload={"search_ids": []})
    return tree_size(work.session)


def test_entries_are_paged_and_say_when_more_remain(
    work: Work, oversight: Principal, size: int
) -> None:
    page = reports.entry_page(work, principal=oversight, start=size - 1, end=None, limit=1)
    assert (page.start, page.end, page.tree_size, page.next_start) == (size - 1, size, size, None)
    assert parse_entry(page.lines[0]).type == "search:purge"
    assert not page.complete  # open-ended: the log may grow
    first = reports.entry_page(work, principal=oversight, start=0, end=2, limit=1)
    assert (first.end, first.next_start, first.complete) == (1, 1, False)
    whole = reports.entry_page(work, principal=oversight, start=0, end=2, limit=2)
    assert (whole.end, whole.next_start, whole.complete) == (2, None, True)


@pytest.mark.parametrize(
    ("start", "end", "error"),
    [(5, 4, InvalidInput), (10**9, None, NotFound)],
    ids=["end before start", "start past the end"],
)
def test_an_impossible_range_is_refused(
    work: Work, oversight: Principal, size: int, start: int, end: int | None, error: type
) -> None:
    with pytest.raises(error):
        reports.entry_page(work, principal=oversight, start=start, end=end)


def test_an_investigator_may_not_read_the_ledger_nor_the_report(
    work: Work, investigator: Principal, size: int
) -> None:
    with pytest.raises(PermissionDenied):
        reports.entry(work, principal=investigator, seq=0)
    with pytest.raises(PermissionDenied):
        reports.accountability_report(work, principal=investigator, start=None, end=None)


def test_one_entry_and_its_proofs(work: Work, oversight: Principal, size: int) -> None:
    last = reports.entry(work, principal=oversight, seq=size - 1)
    assert parse_entry(last).seq == size - 1
    with pytest.raises(NotFound) as missing:
        reports.entry(work, principal=oversight, seq=size)
    assert missing.value.code == "entry-not-found"
    proof = reports.inclusion(work, principal=oversight, seq=size - 1, size=size)
    assert (proof.seq, proof.tree_size, len(proof.root)) == (size - 1, size, 32)
    with pytest.raises(InvalidInput):
        reports.inclusion(work, principal=oversight, seq=size, size=size)
    with pytest.raises(NotFound) as beyond:
        reports.consistency(work, principal=oversight, first=1, second=size + 1)
    assert beyond.value.code == "tree-size-not-reached"
    same = reports.consistency(work, principal=oversight, first=size, second=size)
    assert (same.first_root, same.proof) == (same.second_root, ())


def test_checkpoints_and_keys_are_public(work: Work, size: int) -> None:
    assert reports.latest_checkpoint(work).splitlines()[1] == str(size)
    assert reports.checkpoint_at(work, size=size) == reports.latest_checkpoint(work)
    with pytest.raises(NotFound) as missing:
        reports.checkpoint_at(work, size=size + 5)
    assert missing.value.code == "checkpoint-not-found"
    assert next(k.since_seq for k in reports.ledger_keys(work)) == 0


def test_the_report_counts_the_logs_entries_and_refuses_a_bad_bound(
    work: Work, oversight: Principal, investigator: Principal
) -> None:
    def refused() -> int:
        report = reports.accountability_report(work, principal=oversight, start=None, end=None)
        return int(report["refused"]["total"])

    before = refused()
    record_refusal(
        work, principal=investigator, reason="no-face", legal_basis_id=None, probe_sha256=None
    )
    assert refused() == before + 1
    with pytest.raises(InvalidInput) as bad:
        reports.accountability_report(work, principal=oversight, start="last tuesday", end=None)
    assert list(bad.value.fields) == ["from"]
