"""Curators in the console: enrol a photo with its provenance (as POST /v1/gallery/photos
does, on the record) and browse the gallery with thumbnails and provenance."""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from tests.api.bases import Team
from tests.api.faces import dev_photos, variant
from tests.api.helpers import Agent, ledger_payloads, ledger_size, ledger_types
from tests.console.conftest import Visitor, signed_in

PHOTO = re.compile(r"^/console/gallery/photos/([0-9a-f-]{36})\?done=enrolled$")


@pytest.fixture(scope="module")
def curator(app: Flask, curator_agent: Agent) -> Visitor:
    return signed_in(app, curator_agent)


def enrol(visitor: Visitor, image: bytes | None, **fields: str) -> Any:
    form: dict[str, Any] = {
        "source_url": "https://people.example.org/console/1.jpg",
        "collected_at": "2026-01-15T10:00",
        "collection_basis": "public_record",
        **fields,
    }
    if image is not None:
        form["image"] = (io.BytesIO(image), "photo.png")
    return visitor.post("/console/gallery/photos", form, content_type="multipart/form-data")


@pytest.mark.models
def test_a_curator_enrols_a_photo_and_finds_it_in_the_gallery(
    app: Flask, client: Any, curator_agent: Agent, curator: Visitor, shared_dir: Path
) -> None:
    photo = dev_photos(shared_dir)["Orlando_Bloom"][0]
    before = ledger_size(app)
    url = "https://people.example.org/console/orlando.jpg"

    answer = enrol(curator, variant(photo), source_url=url)

    assert answer.status_code == 303, answer.get_data(as_text=True)
    found = PHOTO.match(answer.headers["Location"])
    assert found is not None
    photo_id = found.group(1)
    assert ledger_types(app, after=before - 1) == ["gallery:enroll"]
    stored = client.get(f"/v1/gallery/photos/{photo_id}", headers=curator_agent.headers)
    assert stored.status_code == 200
    assert stored.get_json()["source_url"] == url
    assert stored.get_json()["collected_at"].startswith("2026-01-15T10:00:00")
    assert stored.get_json()["collection_basis"] == "public_record"
    face_id = stored.get_json()["faces"][0]["id"]

    shown = curator.get(answer.headers["Location"]).get_data(as_text=True)
    assert "The photo is enrolled with 1 face." in shown
    listing = curator.get("/console/gallery/photos").get_data(as_text=True)
    row = listing[listing.index(f"/console/gallery/faces/{face_id}/thumbnail") :].split("</tr>")[0]
    assert url in row
    assert "2026-01-15" in row
    assert "Public record" in row
    thumbnail = curator.get(f"/console/gallery/faces/{face_id}/thumbnail")
    assert thumbnail.status_code == 200
    assert thumbnail.mimetype == "image/jpeg"
    assert ledger_payloads(app, after=before - 1)[0]["photo_id"] == photo_id


@pytest.mark.models
def test_the_same_photo_twice_is_refused_on_the_page(curator: Visitor, shared_dir: Path) -> None:
    data = variant(dev_photos(shared_dir)["Ryan_Reynolds"][0])
    assert enrol(curator, data).status_code == 303
    again = enrol(curator, data)
    assert again.status_code == 409
    assert 'class="error" role="alert"' in again.get_data(as_text=True)


@pytest.mark.parametrize(
    ("image", "fields", "field"),
    [
        (None, {}, "image"),
        (b"x", {"source_url": "ftp"}, "source_url"),
        (b"x", {"collected_at": "last week"}, "collected_at"),
        (b"x", {"collection_basis": "found it"}, "collection_basis"),
    ],
)
def test_bad_provenance_is_shown_beside_its_field(
    app: Flask, curator: Visitor, image: bytes | None, fields: dict[str, str], field: str
) -> None:
    before = ledger_size(app)
    answer = enrol(curator, image, **fields)

    assert answer.status_code == 422
    text = answer.get_data(as_text=True)
    assert f'id="{field}-error"' in text
    assert re.search(rf'id="{field}"[^>]*aria-invalid="true"', text)
    assert ledger_size(app) == before


def test_the_gallery_is_the_curators_alone(app: Flask, team: Team) -> None:
    investigator = signed_in(app, team.inv)
    assert investigator.get("/console/gallery/photos").status_code == 403
    assert investigator.get("/console/gallery/photos/new").status_code == 403
    assert enrol(investigator, b"x").status_code == 403
    admin = signed_in(app, team.admin)  # erases photos, but never reads provenance
    assert admin.get("/console/gallery/photos").status_code == 403
