"""Erasure by a probe photo: a preview on the record, then a second administrator confirms."""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path
from uuid import UUID, uuid4

import pytest

from biometrics.index import Hit
from biometrics.ports import Box
from governance.core.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from governance.core.work import Units, Work
from governance.gallery import erasure_requests as requests
from governance.gallery.blobs import FileBlobStore
from governance.gallery.erasure import ErasureResult
from governance.gallery.models import ErasureRequest, GalleryFace, GalleryPhoto
from governance.gallery.photos import FaceEngines, PreparedPhoto, photos_where, prepare_photo
from governance.identity.permissions import Role
from governance.identity.principals import Principal
from tests import factories
from tests.api.faces import variant
from tests.unit.governance.gallery.recorded import appended, last_seq


def _admin(work: Work) -> Principal:
    return factories.principal(work.session, factories.account(work.session, Role.ADMIN))


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@pytest.fixture
def probe(engines: FaceEngines, faces_dir: dict[str, list[Path]]) -> PreparedPhoto:
    return prepare_photo(engines, variant(faces_dir["Matthew_Perry"][1]))


def test_choose_face_takes_the_only_face_or_the_one_named(probe: PreparedPhoto) -> None:
    only = probe.faces[0]
    other = dataclasses.replace(
        only, detection=dataclasses.replace(only.detection, box=Box(1.0, 2.0, 30.0, 40.0))
    )
    two = dataclasses.replace(probe, faces=[only, other])

    assert requests.choose_face(dataclasses.replace(probe, faces=[only]), None) is only
    assert requests.choose_face(two, 1) is other
    with pytest.raises(requests.MultipleFaces, match="the probe holds 2 faces"):
        requests.choose_face(two, None)
    with pytest.raises(InvalidInput, match="face_index selects no face"):
        requests.choose_face(two, 2)


def test_record_preview_opens_a_request_with_the_matches_still_there(
    work: Work, engines: FaceEngines, probe: PreparedPhoto
) -> None:
    requester = _admin(work)
    there = factories.gallery_photo(work.session).faces[0]
    gone = uuid4()
    since = last_seq(work.session)

    view = requests.record_preview(
        work,
        engines,
        principal=requester,
        prepared=probe,
        face=probe.faces[0],
        hits=[Hit(str(gone), 0.9, "", ""), Hit(str(there.id), 0.8, "", "")],
        threshold=0.5,
        request_reference=" DSR-1 ",
        reason="asked",
    )
    assert (view.status, view.requested_by, view.request_reference) == (
        "pending",
        requester.account_id,
        "DSR-1",
    )
    assert [(m.rank, m.face_id) for m in view.matches] == [(1, there.id)]
    [(kind, payload)] = appended(work.session, since)
    assert (kind, view.ledger_seq) == ("erasure:preview", since + 1)
    assert payload["request_reference_hmac"] == work.keyed("dsr", "DSR-1")
    assert payload["matches"] == [{"face_id_sha256": _sha(str(there.id)), "score": "0.800000"}]


def test_record_preview_needs_the_data_subject_request(
    work: Work, engines: FaceEngines, probe: PreparedPhoto
) -> None:
    with pytest.raises(InvalidInput) as raised:
        requests.record_preview(
            work,
            engines,
            principal=_admin(work),
            prepared=probe,
            face=probe.faces[0],
            hits=[],
            threshold=0.5,
            request_reference=" ",
            reason="",
        )
    assert list(raised.value.fields) == ["request_reference", "reason"]


def _request(work: Work) -> tuple[Principal, list[GalleryFace], ErasureRequest]:
    """A pending request by a new administrator that matched both faces of one photo."""
    account = factories.account(work.session, Role.ADMIN)
    matched = list(factories.gallery_photo(work.session, faces=2).faces)
    row = factories.erasure_request(work.session, account, matched)
    return factories.principal(work.session, account), matched, row


def test_the_first_other_admin_to_open_a_request_becomes_its_confirmer(work: Work) -> None:
    requester, _, row = _request(work)
    confirmer, third = _admin(work), _admin(work)

    assert requests.open_erasure_request(work, principal=requester, request_id=row.id).id == row.id
    opened = requests.open_erasure_request(work, principal=confirmer, request_id=row.id)
    assert opened.confirmer_id == confirmer.account_id
    with pytest.raises(NotFound, match="No such erasure request"):
        requests.open_erasure_request(work, principal=third, request_id=row.id)


def test_preview_thumbnail_is_recorded_and_limited_to_the_matches(
    work: Work, engines: FaceEngines
) -> None:
    requester, matched, row = _request(work)
    matched[0].thumbnail_sha256 = engines.blobs.put(b"a thumbnail")
    since = last_seq(work.session)

    data = requests.preview_thumbnail(
        work, engines, principal=requester, request_id=row.id, face_id=matched[0].id
    )
    assert data == b"a thumbnail"
    assert appended(work.session, since) == [
        (
            "erasure:thumbnail_view",
            {"erasure_request_id": str(row.id), "face_id_sha256": _sha(str(matched[0].id))},
        )
    ]
    with pytest.raises(NotFound, match="not among this erasure request's matches"):
        requests.preview_thumbnail(
            work, engines, principal=requester, request_id=row.id, face_id=uuid4()
        )


def test_confirm_erasure_takes_a_second_admin_and_matched_faces(
    work: Work, engines: FaceEngines
) -> None:
    requester, matched, row = _request(work)
    confirmer = _admin(work)

    def confirm(principal: Principal, face_id: UUID, reason: str = "r") -> ErasureResult:
        return requests.confirm_erasure(
            work, engines, principal=principal, request_id=row.id, face_ids=[face_id], reason=reason
        )

    with pytest.raises(PermissionDenied, match="four eyes"):
        confirm(requester, matched[0].id)
    with pytest.raises(InvalidInput, match="confirm only faces the preview matched"):
        confirm(confirmer, uuid4())
    result = confirm(confirmer, matched[0].id, "confirmed")
    assert (result.kind, result.photos_erased, result.faces_erased) == ("probe", 1, 2)
    assert photos_where(work.session, GalleryPhoto.id == matched[0].photo_id) == []
    work.session.expire_all()  # read back as the next request would
    view = requests.open_erasure_request(work, principal=confirmer, request_id=row.id)
    assert (view.status, view.erasure_id, view.matches) == ("confirmed", result.id, ())
    with pytest.raises(Conflict, match="already confirmed"):
        confirm(confirmer, matched[0].id, "again")


def test_a_preview_without_its_request_compares_no_face(units: Units, tmp_path: Path) -> None:
    class Untouchable:
        def __getattr__(self, name: str) -> object:
            raise AssertionError(f"the probe reached {name} before the request was checked")

    engines = FaceEngines(
        analyzer=Untouchable(),  # type: ignore[arg-type]
        index=Untouchable(),  # type: ignore[arg-type]
        blobs=FileBlobStore(tmp_path),
        max_bytes=1 << 20,
        max_pixels=1 << 20,
        match_threshold=0.35,
        match_far=1e-4,
    )
    with units() as work:
        admin = _admin(work)
    with pytest.raises(InvalidInput) as refused:
        requests.preview_erasure(
            units,
            engines,
            principal=admin,
            image=b"not yet looked at",
            face_index=None,
            threshold=0.5,
            request_reference=" ",
            reason="the person asked",
        )
    assert set(refused.value.fields) == {"request_reference"}
