"""Enrolling a batch (with the real models): each photo in its own unit of work, rejects with
their reasons, a rerun that skips what is enrolled."""

from __future__ import annotations

import io
from datetime import timedelta
from pathlib import Path
from uuid import uuid4

import pytest
from PIL import Image

from governance.core.work import Units
from governance.gallery import photos
from governance.gallery.batches import BatchItem, BatchSummary, Reject, enroll_batch
from governance.gallery.photos import FaceEngines, Provenance
from ledger.entry import Actor
from tests import factories
from tests.api.faces import variant
from tests.factories import NOW
from tests.unit.governance.gallery.recorded import appended, last_seq

pytestmark = pytest.mark.models

OPERATOR = Actor(kind="operator", id="test", agency=None)


def _provenance(url: str, **overrides: object) -> Provenance:
    values: dict[str, object] = {
        "source_url": url,
        "collected_at": NOW - timedelta(days=1),
        "collection_basis": "public_record",
    } | overrides
    return Provenance(**values)  # type: ignore[arg-type]


def _blank_png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (256, 256), (128, 128, 128)).save(out, format="PNG")
    return out.getvalue()


def _unindex(units: Units, engines: FaceEngines, summary: BatchSummary) -> None:
    """The index is not transactional: take out what the rolled-back test put in."""
    with units() as work:
        faces = [f for p in summary.photos for f in photos.read_photo(work, p.photo_id).faces]
    engines.index.delete([str(f.id) for f in faces])


def test_a_batch_enrols_the_good_photos_rejects_the_others_and_a_rerun_skips(
    units: Units, engines: FaceEngines, faces_dir: dict[str, list[Path]]
) -> None:
    site = f"batch-{uuid4().hex[:8]}.example"
    blocked = f"optedout-{uuid4().hex[:8]}.example"
    with units() as work:
        factories.source_policy(work.session, blocked)
        since = last_seq(work.session)
    good = [variant(faces_dir[name][0]) for name in ("Matthew_Perry", "Orlando_Bloom")]
    items = [
        BatchItem("a.png", good[0], _provenance(f"https://{site}/a.png")),
        BatchItem("line 3 (gone.jpg)", problem="no uploaded file is named gone.jpg"),
        BatchItem("pdf.jpg", b"%PDF-1.4 not a photo", _provenance(f"https://{site}/pdf")),
        BatchItem("blank.png", _blank_png(), _provenance(f"https://{site}/blank")),
        BatchItem("b.png", good[1], _provenance(f"https://{site}/b.png")),
        BatchItem("again.png", good[1], _provenance(f"https://{site}/again.png")),
        BatchItem(
            "blocked.png",
            variant(faces_dir["Matthew_Perry"][0]),
            _provenance(f"https://{blocked}/x"),
        ),
        BatchItem(
            "basis.png",
            variant(faces_dir["Matthew_Perry"][0]),
            _provenance(f"https://{site}/basis", collection_basis="found it"),
        ),
    ]

    summary = enroll_batch(units, engines, items, actor=OPERATOR, chunk=3)

    assert [p.label for p in summary.photos] == ["a.png", "b.png"]
    assert summary.enrolled == 2 and summary.faces >= 2 and summary.skipped == 0
    reasons = dict(summary.rejects)
    assert list(reasons) == [
        "line 3 (gone.jpg)",
        "pdf.jpg",
        "blank.png",
        "again.png",
        "blocked.png",
        "basis.png",
    ]
    assert reasons["line 3 (gone.jpg)"] == "no uploaded file is named gone.jpg"
    assert reasons["pdf.jpg"] == "only JPEG, PNG and WebP images are accepted"
    assert reasons["blank.png"] == "no face was found in the photo"
    assert reasons["again.png"] == "the same photo as b.png"
    assert reasons["blocked.png"].startswith(f"{blocked} has opted out of the gallery")
    assert reasons["basis.png"].startswith(
        "the photo's provenance is invalid (collection_basis: Must be one of: "
    )
    with units() as work:
        recorded = appended(work.session, since)
        assert [kind for kind, _ in recorded] == ["gallery:enroll", "gallery:enroll"]
        assert [payload["photo_id"] for _, payload in recorded] == [
            str(p.photo_id) for p in summary.photos
        ]
        assert photos.read_photo(work, summary.photos[1].photo_id).source_url == (
            f"https://{site}/b.png"
        )

    again = enroll_batch(units, engines, items, actor=OPERATOR)

    assert (again.enrolled, again.already_enrolled) == (0, ("a.png", "b.png", "again.png"))
    assert [r.label for r in again.rejects] == [
        "line 3 (gone.jpg)",
        "pdf.jpg",
        "blank.png",
        "blocked.png",
        "basis.png",
    ]
    with units() as work:
        assert len(appended(work.session, since)) == 2  # the rerun recorded nothing
    _unindex(units, engines, summary)


def test_each_photo_is_dated_when_it_is_enrolled(
    units: Units, engines: FaceEngines, faces_dir: dict[str, list[Path]]
) -> None:
    instants = iter([NOW + timedelta(minutes=1), NOW + timedelta(minutes=2)])
    site = f"dated-{uuid4().hex[:8]}.example"
    items = [
        BatchItem(name, variant(faces_dir[name][0]), _provenance(f"https://{site}/{name}"))
        for name in ("Ryan_Reynolds", "Orlando_Bloom")
    ]

    summary = enroll_batch(units, engines, items, actor=OPERATOR, clock=lambda: next(instants))

    with units() as work:
        dated = [photos.read_photo(work, p.photo_id).enrolled_at for p in summary.photos]
    assert dated == [NOW + timedelta(minutes=1), NOW + timedelta(minutes=2)]
    _unindex(units, engines, summary)


def test_summaries_add_up() -> None:
    one = BatchSummary(already_enrolled=("a",), rejects=(Reject("b", "why"),))
    two = BatchSummary(already_enrolled=("c",))
    total = one + two
    assert (total.skipped, total.rejects, total.enrolled) == (2, (Reject("b", "why"),), 0)
