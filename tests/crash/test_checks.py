"""The crash harness's checks find what they look for: a check that cannot fail proves nothing.

Acts are made on a served instance, nothing is killed, and the record of what the server
acknowledged is then falsified as a lost act would show: an enrolment the server no longer
has, a review vote it no longer counts, a receipt whose checkpoint the log is not consistent
with. A check of the new acts finds the new ones; an old one is found by the next full check.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

from tests.api.faces import dev_photos
from tests.crash.harness import Acts, Report, Traffic, check, instance, people

pytestmark = [pytest.mark.crash, pytest.mark.slow, pytest.mark.models]


def test_checks_find_lost_acts_old_and_new(tmp_path: Path, shared_dir: Path) -> None:
    photos = next(iter(dev_photos(shared_dir).values()))[:1]  # the probe finds its variants
    database_url = os.environ.get("FACEWARDEN_TEST_DATABASE_URL") or None
    with instance(tmp_path, database_url) as inst:
        inst.start()
        inst.wait_ready()
        cast = people(inst)
        acts, report = Acts(), Report()
        traffic = Traffic(inst, cast, acts, report, photos)
        for act in (traffic.decide, traffic.enrol, traffic.enrol, traffic.search):
            act()
        traffic.review()
        assert acts.photos and acts.searches and acts.reviews, report.acknowledged

        check(inst, cast, acts, report, 1, full=True)
        assert report.violations == []

        # An old enrolment lost: the next check of the new acts does not read it again.
        old_photo = next(iter(acts.photos))
        acts.photos[old_photo] = [str(uuid.uuid4())]
        check(inst, cast, acts, report, 2, full=False)
        assert report.violations == []
        check(inst, cast, acts, report, 3, full=True)
        assert report.violations == [f"trial 3: enrolled photo {old_photo} lost faces"]
        acts.photos[old_photo] = [
            f["id"]
            for f in inst.ok("GET", f"/v1/gallery/photos/{old_photo}", cast.curator)["faces"]
        ]

        # A new enrolment and a new review vote, acknowledged but not kept.
        report.violations.clear()
        lost = str(uuid.uuid4())
        acts.photos[lost] = []
        key = next(iter(acts.reviews))
        acts.reviews[key].add("a reviewer whose vote was lost")
        acts.changed_reviews.add(key)
        check(inst, cast, acts, report, 4, full=False)
        assert [v.split(":")[0] for v in report.violations] == ["trial 4", "trial 4"]
        assert f"enrolled photo {lost} answers 404" in report.violations[0]
        assert f"{key[0]}/{key[1]}: 2 reviews acknowledged" in report.violations[1]

        # A receipt checked long ago, whose checkpoint the log no longer agrees with: the
        # ledger is checked whole every time.
        report.violations.clear()
        search_id = next(iter(acts.searches))
        size, _root = acts.heads[search_id]
        acts.heads[search_id] = (size, bytes(32))
        check(inst, cast, acts, report, 5, full=False)
        assert report.violations == [
            f"trial 5: search {search_id}: the log is not consistent with its checkpoint"
        ]
