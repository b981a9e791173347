"""Setting a site's policy, and blocking a site then purging its faces in batches."""

from __future__ import annotations

from uuid import uuid4

import pytest

from biometrics.errors import IndexUnavailable
from governance.core.errors import InvalidInput
from governance.core.work import Units, Work
from governance.gallery import opt_outs
from governance.gallery.models import GalleryPhoto
from governance.gallery.opt_outs import PurgeProgress
from governance.gallery.photos import FaceEngines, photos_where
from ledger.entry import Actor
from tests import factories
from tests.factories import NOW
from tests.unit.governance.gallery.recorded import appended, last_seq

OPERATOR = Actor(kind="operator", id="test", agency=None)


def test_set_source_policy_normalizes_the_site_and_records_it(work: Work) -> None:
    since = last_seq(work.session)
    site = f"normal-{uuid4().hex[:8]}.example"  # faces other tests enrolled do not count here
    factories.gallery_photo(work.session, site=site, faces=2)

    policy = opt_outs.set_source_policy(
        work,
        site=f"https://www.{site}/x",
        status="blocked",
        reason=" letter ",
        reference=" L-7 ",
        actor=OPERATOR,
    )
    assert (policy.site, policy.status, policy.reason, policy.reference) == (
        site,
        "blocked",
        "letter",
        "L-7",
    )
    assert (policy.updated_at, policy.faces_purged, policy.faces_remaining) == (NOW, 0, 2)
    assert appended(work.session, since) == [
        ("source_policy:set", {"site": site, "status": "blocked", "reference": "L-7"})
    ]


@pytest.mark.parametrize(
    ("changes", "fields"),
    [
        ({"status": "maybe"}, ["status"]),
        ({"reason": "  "}, ["reason"]),
        ({"reference": ""}, ["reference"]),
        ({"status": "", "reason": "", "reference": ""}, ["status", "reason", "reference"]),
    ],
)
def test_set_source_policy_refuses_an_incomplete_policy(
    work: Work, changes: dict[str, str], fields: list[str]
) -> None:
    values = {"site": "example.org", "status": "allowed", "reason": "r", "reference": "x"}
    with pytest.raises(InvalidInput, match="the source policy is invalid") as raised:
        opt_outs.set_source_policy(work, **(values | changes), actor=OPERATOR)
    assert list(raised.value.fields) == fields


def test_get_and_list_policies(work: Work) -> None:
    factories.source_policy(work.session, "b.example", status="allowed")
    factories.source_policy(work.session, "a.example")

    assert [p.site for p in opt_outs.list_policies(work)][:2] == ["a.example", "b.example"]
    found = opt_outs.get_policy(work, "www.b.example")
    assert found is not None and found.status == "allowed"
    assert opt_outs.get_policy(work, "c.example") is None


def test_purge_site_batch_needs_a_blocked_site(work: Work, engines: FaceEngines) -> None:
    factories.source_policy(work.session, "open.example", status="allowed")
    for site in ("open.example", "unknown.example"):
        with pytest.raises(InvalidInput, match=f"{site} is not blocked"):
            opt_outs.purge_site_batch(work, engines, site=site, actor=OPERATOR)


def test_block_site_commits_the_block_then_purges_in_batches(
    units: Units, engines: FaceEngines
) -> None:
    with units() as work:
        since = last_seq(work.session)
        for _ in range(3):
            factories.gallery_photo(work.session, site="optout.example", faces=2)
        kept = factories.gallery_photo(work.session, site="stays.example")
    heard: list[PurgeProgress] = []

    policy = opt_outs.block_site(
        units,
        lambda: engines,
        site="www.optout.example",
        reason="letter",
        reference="L-1",
        actor=OPERATOR,
        progress=heard.append,
        batch_size=2,
    )
    assert heard == [
        PurgeProgress(site="optout.example", purged=0, total=6),
        PurgeProgress(site="optout.example", purged=4, total=6),
        PurgeProgress(site="optout.example", purged=6, total=6),
    ]
    assert (policy.status, policy.faces_purged, policy.faces_remaining) == ("blocked", 6, 0)
    with units() as work:
        assert [k for k, _ in appended(work.session, since)] == [
            "source_policy:set",
            "source:purge",
            "source:purge",
        ]
        left = photos_where(work.session, GalleryPhoto.source_site.in_(["optout.example"]))
        assert left == []
        assert [p.id for p in photos_where(work.session, GalleryPhoto.id == kept.id)] == [kept.id]


def test_block_site_refuses_before_anything_changes(units: Units, engines: FaceEngines) -> None:
    site = f"refused-{uuid4().hex[:8]}.example"  # no other test may have set its policy
    with pytest.raises(InvalidInput, match="the source policy is invalid"):
        opt_outs.block_site(
            units, lambda: engines, site=site, reason="", reference="L-1", actor=OPERATOR
        )
    with units() as work:
        assert opt_outs.get_policy(work, site) is None


def test_a_block_stands_while_the_engines_cannot_be_loaded(units: Units) -> None:
    site = f"down-{uuid4().hex[:8]}.example"

    def unavailable() -> FaceEngines:
        raise IndexUnavailable("the vector index is down")

    with pytest.raises(IndexUnavailable):
        opt_outs.block_site(
            units, unavailable, site=site, reason="letter", reference="L-2", actor=OPERATOR
        )
    with units() as work:
        policy = opt_outs.get_policy(work, site)
    assert policy is not None and policy.status == "blocked"
