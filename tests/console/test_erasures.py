"""Administrators in the console: erase by source URL, or preview a data subject's photo on the
record and have a second administrator confirm which matches to erase (as /v1/erasures does)."""

from __future__ import annotations

import io
import re
import uuid
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from PIL import Image

from tests.api.bases import Team
from tests.api.faces import dev_photos, enroll, variant
from tests.api.helpers import (
    Agent,
    ledger_payloads,
    ledger_size,
    ledger_types,
    make_admin,
    make_staff,
)
from tests.console.conftest import Visitor, signed_in

REQUEST = re.compile(r"^/console/erasures/requests/([0-9a-f-]{36})$")
ERASURE = re.compile(r"^/console/erasures/([0-9a-f-]{36})\?done=(erased|confirmed)$")
REASON = "The data subject asked for erasure; identity checked in person."


@pytest.fixture(scope="module")
def curator(app: Flask, team: Team) -> Agent:
    return make_staff(app.test_client(), team.admin, "curator")


@pytest.fixture(scope="module")
def admins(app: Flask) -> tuple[Agent, Agent, Agent]:
    """The requester, the confirmer, and an administrator who is neither."""
    return make_admin(app), make_admin(app), make_admin(app)


def _preview(visitor: Visitor, image: bytes | None, **fields: str) -> Any:
    form: dict[str, Any] = {"request_reference": "DSR-2026-0077", "reason": REASON, **fields}
    if image is not None:
        form["image"] = (io.BytesIO(image), "probe.jpg")
    return visitor.post("/console/erasures/preview", form, content_type="multipart/form-data")


def _person(
    client: FlaskClient, curator: Agent, shared_dir: Path, name: str
) -> tuple[list[dict[str, Any]], bytes]:
    """Two enrolled photos of ``name`` (from a site of their own) and a third one as the probe."""
    site = f"subject-{uuid.uuid4().hex[:8]}.example.org"
    photos = dev_photos(shared_dir)[name]
    mine = [
        enroll(client, curator, variant(p), url=f"https://{site}/{i}.jpg")
        for i, p in enumerate(photos[:2])
    ]
    assert [r.status_code for r in mine] == [201, 201], [r.get_json() for r in mine]
    return [r.get_json() for r in mine], photos[2].read_bytes()


def _side_by_side(left: Path, right: Path) -> bytes:
    images = [Image.open(p).convert("RGB") for p in (left, right)]
    out = Image.new("RGB", (sum(i.width for i in images) + 40, max(i.height for i in images)))
    out.paste(images[0], (0, 0))
    out.paste(images[1], (images[0].width + 40, 0))
    buffer = io.BytesIO()
    out.save(buffer, format="PNG")
    return buffer.getvalue()


def _thumbnails(page: str, request_id: str) -> list[str]:
    return re.findall(
        rf'src="(/console/erasures/requests/{request_id}/faces/[0-9a-f-]{{36}}/thumbnail)"', page
    )


@pytest.mark.models
def test_a_preview_by_one_admin_is_confirmed_by_another_who_ticks_the_matches(
    app: Flask,
    client: FlaskClient,
    curator: Agent,
    admins: tuple[Agent, Agent, Agent],
    shared_dir: Path,
) -> None:
    requester_agent, confirmer_agent, outsider_agent = admins
    requester = signed_in(app, requester_agent)
    mine, probe = _person(client, curator, shared_dir, "Elizabeth_Hendrickson")
    wanted = sorted(f["id"] for p in mine for f in p["faces"])
    before = ledger_size(app)

    previewed = _preview(requester, probe)

    assert previewed.status_code == 303, previewed.get_data(as_text=True)
    found = REQUEST.match(previewed.headers["Location"])
    assert found is not None
    request_id = found.group(1)
    assert ledger_types(app, after=before - 1) == ["erasure:preview"]

    # The requester: told to send the page to another administrator; no decision to take.
    page = requester.get(previewed.headers["Location"]).get_data(as_text=True)
    assert "Another administrator must confirm this erasure; send them this page" in page
    assert f"https://localhost:8443/console/erasures/requests/{request_id}" in page
    assert 'name="face_ids"' not in page and "Confirm and erase" not in page
    shown = _thumbnails(page, request_id)
    assert {f"/console/erasures/requests/{request_id}/faces/{f}/thumbnail" for f in wanted} <= set(
        shown
    )
    assert re.search(r"<dt>Rank</dt><dd>1</dd><dt>Score</dt><dd>0\.\d\d</dd>", page)
    assert "DSR-2026-0077" in page
    assert "subject-" not in page  # never where a face came from

    seen = before + 1
    for path in shown:
        thumbnail = requester.get(path)
        assert thumbnail.status_code == 200 and thumbnail.mimetype == "image/jpeg"
    assert ledger_types(app, after=seen - 1) == ["erasure:thumbnail_view"] * len(shown)

    # A third administrator is not shown it, once another has opened it.
    confirmer = signed_in(app, confirmer_agent)
    decision = confirmer.get(previewed.headers["Location"]).get_data(as_text=True)
    for face_id in wanted:
        assert f'name="face_ids" value="{face_id}"' in decision
    assert "Confirm and erase the ticked faces" in decision
    assert "send them this page" not in decision
    seen = ledger_size(app)
    for path in _thumbnails(decision, request_id):
        assert confirmer.get(path).mimetype == "image/jpeg"
    views = ledger_payloads(app, after=seen - 1)
    assert ledger_types(app, after=seen - 1) == ["erasure:thumbnail_view"] * len(shown)
    assert {v["erasure_request_id"] for v in views} == {request_id}
    outsider = signed_in(app, outsider_agent)
    assert outsider.get(previewed.headers["Location"]).status_code == 404
    assert outsider.get(shown[0]).status_code == 404

    # The requester may not confirm their own preview: four eyes.
    confirm = f"/console/erasures/requests/{request_id}/confirm"
    decided = ledger_size(app)
    refused = requester.post(confirm, {"face_ids": wanted, "reason": "confirmed"})
    assert refused.status_code == 403
    assert (
        "The erasure was not done: An administrator other than the one who asked for the "
        "preview must confirm this erasure (four eyes)." in refused.get_data(as_text=True)
    )
    untouched = confirmer.post(confirm, {"reason": "confirmed against DSR-2026-0077"})
    assert untouched.status_code == 422
    assert "Tick the faces of the person who asked for the erasure." in untouched.get_data(
        as_text=True
    )
    unreasoned = confirmer.post(confirm, {"face_ids": wanted, "reason": ""})
    assert unreasoned.status_code == 422
    assert "Give a reason for the erasure" in unreasoned.get_data(as_text=True)
    assert ledger_size(app) == decided
    for photo in mine:
        kept = client.get(f"/v1/gallery/photos/{photo['id']}", headers=curator.headers)
        assert kept.status_code == 200

    done = confirmer.post(
        confirm, {"face_ids": wanted, "reason": "confirmed against DSR-2026-0077"}
    )

    assert done.status_code == 303, done.get_data(as_text=True)
    assert ERASURE.match(done.headers["Location"]) is not None
    result = confirmer.get(done.headers["Location"]).get_data(as_text=True)
    assert "The erasure is confirmed and done" in result
    assert "<dt>Photos erased</dt><dd>2</dd>" in result
    assert f"<dt>Faces erased</dt><dd>{len(wanted)}</dd>" in result
    assert "<dt>How</dt><dd>By a photo</dd>" in result
    [entry] = ledger_payloads(app, after=decided - 1)
    assert ledger_types(app, after=decided - 1) == ["erasure:run"]
    assert entry["erasure_request_id"] == request_id and entry["faces"] == len(wanted)
    for photo in mine:
        gone = client.get(f"/v1/gallery/photos/{photo['id']}", headers=curator.headers)
        assert gone.status_code == 404
    after = requester.get(previewed.headers["Location"]).get_data(as_text=True)
    assert "This request was confirmed and its photos erased" in after
    again = confirmer.post(confirm, {"face_ids": wanted, "reason": "again"})
    assert again.status_code == 409
    assert "This erasure request was already confirmed." in again.get_data(as_text=True)


@pytest.mark.models
def test_a_photo_with_several_faces_asks_whose_face_to_compare(
    app: Flask,
    client: FlaskClient,
    curator: Agent,
    admins: tuple[Agent, Agent, Agent],
    shared_dir: Path,
) -> None:
    requester = signed_in(app, admins[0])
    photos = dev_photos(shared_dir)
    probe = _side_by_side(photos["Frances_Fisher"][2], photos["Billy_Boyd"][2])
    before = ledger_size(app)

    asked = _preview(requester, probe)

    assert asked.status_code == 422
    text = asked.get_data(as_text=True)
    assert "This photo shows several faces: choose the face of the person" in text
    assert 'id="face-0" name="face_index" value="0"' in text
    assert 'id="face-1" name="face_index" value="1"' in text
    assert "<svg" in text and "data:image/png;base64," in text
    carried = re.search(r'<input type="hidden" name="probe" value="([^"]+)">', text)
    assert carried is not None
    assert ledger_size(app) == before  # nothing was compared

    chosen = _preview(requester, None, probe=carried.group(1), face_index="0")

    assert chosen.status_code == 303, chosen.get_data(as_text=True)
    assert REQUEST.match(chosen.headers["Location"]) is not None
    assert ledger_types(app, after=before - 1) == ["erasure:preview"]
    assert ledger_payloads(app, after=before - 1)[0]["probe_faces"] == 2


@pytest.mark.models
def test_an_admin_erases_the_photos_of_a_source_url(
    app: Flask,
    client: FlaskClient,
    curator: Agent,
    admins: tuple[Agent, Agent, Agent],
    shared_dir: Path,
) -> None:
    admin = signed_in(app, admins[2])
    url = f"https://social-{uuid.uuid4().hex[:8]}.example.net/jane/42"
    photo = enroll(client, curator, variant(dev_photos(shared_dir)["Bernie_Mac"][0]), url=url)
    assert photo.status_code == 201
    before = ledger_size(app)
    form = {"kind": "source_url", "source_url": url, "reason": "request DSR-2026-0078"}

    erased = admin.post("/console/erasures", form)

    assert erased.status_code == 303, erased.get_data(as_text=True)
    assert ERASURE.match(erased.headers["Location"]) is not None
    result = admin.get(erased.headers["Location"]).get_data(as_text=True)
    assert "The erasure is done: the photos are gone from the gallery" in result
    assert "<dt>Photos erased</dt><dd>1</dd>" in result
    assert f"<dt>Faces erased</dt><dd>{len(photo.get_json()['faces'])}</dd>" in result
    assert "<dt>How</dt><dd>By source URL</dd>" in result
    assert ledger_types(app, after=before - 1) == ["erasure:run"]
    assert "jane" not in str(ledger_payloads(app, after=before - 1))
    gone = client.get(f"/v1/gallery/photos/{photo.get_json()['id']}", headers=curator.headers)
    assert gone.status_code == 404

    again = admin.post("/console/erasures", form)
    assert again.status_code == 404
    assert "No photo in the gallery has this source URL: nothing was erased." in again.get_data(
        as_text=True
    )
    assert ledger_size(app) == before + 1


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"kind": "source_url", "source_url": "https://a.example/1"}, "erase-reason", ""),
        ({"kind": "photo", "reason": "r"}, "photo_id", "Give the photo id of what to erase."),
        ({"kind": "photo", "photo_id": "photo 7", "reason": "r"}, "photo_id", "Not a valid UUID."),
        ({"kind": "source_url", "reason": "r"}, "source_url", "Give the source URL"),
        ({"kind": "probe", "reason": "r"}, "kind", "Choose whether to erase by source URL"),
    ],
)
def test_an_incomplete_erasure_is_shown_beside_its_field(
    app: Flask,
    admins: tuple[Agent, Agent, Agent],
    fields: dict[str, str],
    field: str,
    message: str,
) -> None:
    admin = signed_in(app, admins[2])
    before = ledger_size(app)

    answer = admin.post("/console/erasures", fields)

    assert answer.status_code == 422
    text = answer.get_data(as_text=True)
    assert "Nothing was erased. Please correct the fields marked below." in text
    error = re.search(rf'<p id="{field}-error" class="field-error">([^<]+)</p>', text)
    assert error is not None and message in error.group(1)
    assert ledger_size(app) == before


@pytest.mark.parametrize(
    ("probe", "fields", "field"),
    [
        (None, {}, "image"),
        (b"not a photo", {"request_reference": ""}, "request_reference"),
        (b"not a photo", {"reason": ""}, "preview-reason"),
    ],
)
def test_a_preview_needs_a_photo_and_the_persons_request(
    app: Flask,
    admins: tuple[Agent, Agent, Agent],
    probe: bytes | None,
    fields: dict[str, str],
    field: str,
) -> None:
    admin = signed_in(app, admins[2])
    before = ledger_size(app)

    answer = _preview(admin, probe, **fields)

    assert answer.status_code == 422
    text = answer.get_data(as_text=True)
    assert "The photo was not compared. Please correct the fields marked below." in text
    assert re.search(rf'<p id="{field}-error" class="field-error">[^<]+</p>', text)
    assert ledger_size(app) == before


def test_erasures_are_for_administrators_alone(app: Flask, team: Team, curator: Agent) -> None:
    admin = signed_in(app, team.admin)
    page = admin.get("/console/erasures")
    assert page.status_code == 200
    assert '<a href="/console/erasures" aria-current="page">Erasures</a>' in page.get_data(
        as_text=True
    )
    for agent in (curator, team.inv, team.sup):
        someone = signed_in(app, agent)
        assert someone.get("/console/erasures").status_code == 403
        refused = someone.post("/console/erasures", {"kind": "source_url", "reason": "r"})
        assert refused.status_code == 403
        assert _preview(someone, b"x").status_code == 403
        assert "Erasures" not in someone.get("/console/").get_data(as_text=True)
