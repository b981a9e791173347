"""Investigators in the console: legal bases recorded for approval, and searches that run only
under an approved basis, on the record, with a receipt that verifies offline."""

from __future__ import annotations

import io
import json
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from PIL import Image

from ledger.receipt import verify_receipt
from tests.api.bases import JUSTIFICATION, Team, act, approved, create, now_of, ok
from tests.api.faces import dev_photos, enroll, variant
from tests.api.helpers import ledger_payloads, ledger_size, ledger_types, make_staff, runtime_of
from tests.console.conftest import Visitor, signed_in

PURPOSE = "identify the suspect in the CCTV still of 2026-11-20"
RESULTS = re.compile(r"^/console/searches/([0-9a-f-]{36})$")


@pytest.fixture(scope="module")
def investigator(app: Flask, team: Team) -> Visitor:
    return signed_in(app, team.inv)


def _minute(app: Flask, delta: timedelta) -> str:
    """A ``datetime-local`` value (UTC) ``delta`` from now, as a browser sends it."""
    return (now_of(app) + delta).strftime("%Y-%m-%dT%H:%M")


def basis_form(app: Flask, **overrides: str) -> dict[str, str]:
    form = {
        "case_number": "PJ-LYON-2026-00417",
        "offence_category": "kidnapping_hostage_taking",
        "legal_provision": "Code de procédure pénale, art. 706-96",
        "authorisation_kind": "judicial",
        "authorisation_reference": "JLD-2026-1187",
        "authorisation_authority": "Tribunal judiciaire de Lyon",
        "authorisation_issued_at": _minute(app, -timedelta(hours=1)),
        "authorisation_expires_at": _minute(app, timedelta(days=3)),
        "justification": JUSTIFICATION,
        "max_searches": "5",
    }
    form.update(overrides)
    return form


def test_an_investigator_records_a_basis_that_awaits_approval(
    app: Flask, client: Any, team: Team, investigator: Visitor
) -> None:
    before = ledger_size(app)
    form = basis_form(app, case_number="PJ-LYON-2026-00999")

    answer = investigator.post("/console/legal-bases", form)

    assert answer.status_code == 303, answer.get_data(as_text=True)
    page = investigator.get(answer.headers["Location"])
    text = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "PJ-LYON-2026-00999" in text
    assert "awaits a second person's approval" in text
    basis_id = answer.headers["Location"].split("/")[-1].split("?")[0]
    stored = ok(client.get(f"/v1/legal-bases/{basis_id}", headers=team.inv.headers))
    assert stored["status"] == "pending"
    assert stored["authorisation"]["issued_at"].startswith(form["authorisation_issued_at"])
    assert stored["created_by"] == str(team.inv.account_id)
    assert ledger_types(app, after=before - 1) == ["legal_basis:create"]

    listing = investigator.get("/console/legal-bases").get_data(as_text=True)
    row = listing[listing.index("PJ-LYON-2026-00999") :].split("</tr>")[0]
    assert "pending" in row
    assert "0 of 5" in row
    assert "you" in row


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"case_number": ""}, "case_number", "Missing data for required field."),
        ({"justification": "too short"}, "justification", "at least 50"),
        ({"authorisation_issued_at": "yesterday"}, "authorisation_issued_at", "Not a valid"),
        ({"offence_category": "littering"}, "offence_category", "Must be one of"),  # the policy's
        ({"max_searches": "999"}, "max_searches", "Must be between 1 and"),  # the policy's cap
    ],
)
def test_a_mistake_is_shown_beside_its_field(
    app: Flask, investigator: Visitor, overrides: dict[str, str], field: str, message: str
) -> None:
    before = ledger_size(app)
    answer = investigator.post("/console/legal-bases", basis_form(app, **overrides))

    assert answer.status_code == 422
    text = answer.get_data(as_text=True)
    assert f'aria-describedby="{field}-help {field}-error" aria-invalid="true"' in text or (
        f'aria-describedby="{field}-error" aria-invalid="true"' in text
    )
    error = text[text.index(f'id="{field}-error"') :].split("</p>")[0]
    assert message in error
    assert ledger_size(app) == before  # nothing recorded


def test_roles_without_the_permission_are_refused(app: Flask, team: Team) -> None:
    curator = signed_in(app, make_staff(app.test_client(), team.admin, "curator"))
    assert curator.get("/console/legal-bases/new").status_code == 403
    assert curator.post("/console/legal-bases", basis_form(app)).status_code == 403
    assert curator.get("/console/searches/new").status_code == 403
    assert curator.post("/console/searches", {"purpose": PURPOSE}).status_code == 403
    assert curator.get("/console/searches").status_code == 403
    oversight = signed_in(app, team.oversight)  # reads bases, records none
    assert oversight.get("/console/legal-bases").status_code == 200
    assert oversight.get("/console/legal-bases/new").status_code == 403


# --- searches (real models) ------------------------------------------------------------------


@pytest.fixture(scope="module")
def photos(shared_dir: Path) -> dict[str, list[Path]]:
    return dev_photos(shared_dir)


@pytest.fixture(scope="module")
def enrolled(app: Flask, team: Team, photos: dict[str, list[Path]]) -> dict[str, list[str]]:
    client = app.test_client()
    curator = make_staff(client, team.admin, "curator")
    faces: dict[str, list[str]] = {}
    for name in ("Orlando_Bloom", "Ryan_Reynolds", "Sally_Field"):
        for i, path in enumerate(photos[name][:2]):
            url = f"https://people.example.org/{name}/{i}.jpg"
            response = enroll(client, curator, variant(path), url=url)
            assert response.status_code == 201, response.get_json()
            faces.setdefault(name, []).append(response.get_json()["faces"][0]["id"])
    return faces


def search_form(basis_id: str, image: bytes | None, **fields: Any) -> dict[str, Any]:
    data: dict[str, Any] = {"legal_basis_id": basis_id, "purpose": PURPOSE, "top_k": "5"}
    if image is not None:
        data["image"] = (io.BytesIO(image), "probe.jpg")
    return data | fields


def run(visitor: Visitor, form: dict[str, Any]) -> Any:
    return visitor.post("/console/searches", form, content_type="multipart/form-data")


@pytest.mark.models
def test_a_search_runs_on_the_record_and_its_receipt_verifies(
    app: Flask,
    client: Any,
    team: Team,
    investigator: Visitor,
    enrolled: dict[str, list[str]],
    photos: dict[str, list[Path]],
) -> None:
    basis = approved(client, app, team, case_number="PJ-LYON-2026-01234")
    before = ledger_size(app)
    offered = investigator.get("/console/searches/new").get_data(as_text=True)
    assert f'<option value="{basis["id"]}"' in offered

    answer = run(investigator, search_form(basis["id"], photos["Orlando_Bloom"][2].read_bytes()))

    assert answer.status_code == 303, answer.get_data(as_text=True)
    found = RESULTS.match(answer.headers["Location"])
    assert found is not None
    search_id = found.group(1)
    assert ledger_types(app, after=before - 1)[-1] == "search:run"
    recorded = ledger_payloads(app, after=before - 1)[-1]
    assert recorded["legal_basis_id"] == basis["id"]

    page = investigator.get(answer.headers["Location"])
    text = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "Investigative leads only — two colleagues must review" in text
    assert "PJ-LYON-2026-01234" in text
    thumbnails = re.findall(r'src="(/console/searches/[^"]+/thumbnail)"', text)
    face_ids = [c["face_id"] for c in recorded["candidates"]]
    assert thumbnails == [
        f"/console/searches/{search_id}/candidates/{face}/thumbnail" for face in face_ids
    ]
    # Rank 1 first: a photo of the person searched for (other suites enrol him too).
    shown = ok(client.get(f"/v1/searches/{search_id}", headers=team.inv.headers))
    assert "orlando" in shown["candidates"][0]["source_url"].lower()
    assert "https://people.example.org/Orlando_Bloom/" in text
    key = runtime_of(app).signer.verifier_key
    command = f"facewarden-verify receipt receipt-{search_id}.json --key &#39;{key}&#39;"
    assert command in text

    seen = ledger_size(app)
    thumbnail = investigator.get(thumbnails[0])
    assert thumbnail.status_code == 200
    assert thumbnail.mimetype == "image/jpeg"
    assert ledger_types(app, after=seen - 1) == ["thumbnail:view"]

    downloaded = investigator.get(f"/console/searches/{search_id}/receipt.json")
    assert downloaded.status_code == 200
    receipt = json.loads(downloaded.get_data())
    api = ok(client.get(f"/v1/searches/{search_id}/receipt", headers=team.inv.headers))
    assert receipt == api
    report = verify_receipt(receipt, [key])
    assert report.entry_type == "search:run"
    assert json.loads(receipt["entry"])["payload"]["legal_basis_id"] == basis["id"]

    history = investigator.get("/console/searches").get_data(as_text=True)
    row = history[history.index(f"/console/searches/{search_id}") :].split("</tr>")[0]
    assert "PJ-LYON-2026-01234" in row
    assert f"<td>{len(face_ids)}</td>" in row
    assert "not yet reviewed" in row


@pytest.mark.models
def test_no_search_without_an_approved_basis(
    app: Flask,
    client: Any,
    team: Team,
    investigator: Visitor,
    enrolled: dict[str, list[str]],
    photos: dict[str, list[Path]],
) -> None:
    pending = create(client, app, team.inv, case_number="PJ-LYON-2026-02000")
    offered = investigator.get("/console/searches/new").get_data(as_text=True)
    assert pending["id"] not in offered  # only usable bases are offered
    before = ledger_size(app)

    answer = run(investigator, search_form(pending["id"], photos["Sally_Field"][2].read_bytes()))

    assert answer.status_code == 403
    assert "is pending" in answer.get_data(as_text=True)
    assert ledger_types(app, after=before - 1) == ["search:refuse"]
    assert ledger_payloads(app, after=before - 1)[0]["reason"] == "legal-basis-pending"
    rejected = create(client, app, team.inv)
    ok(act(client, team.sup, rejected, "reject"))
    refused = run(investigator, search_form(rejected["id"], photos["Sally_Field"][2].read_bytes()))
    assert refused.status_code == 403
    assert "search:run" not in ledger_types(app, after=before - 1)


@pytest.mark.models
def test_bad_search_input_is_shown_on_the_form(
    app: Flask, client: Any, team: Team, investigator: Visitor, enrolled: dict[str, list[str]]
) -> None:
    basis = approved(client, app, team)
    before = ledger_size(app)
    no_photo = run(investigator, search_form(basis["id"], None, purpose=""))
    assert no_photo.status_code == 422
    text = no_photo.get_data(as_text=True)
    assert 'id="image-error"' in text
    assert 'id="purpose-error"' in text
    assert ledger_size(app) == before  # refused by the form, before the flow

    not_an_image = run(investigator, search_form(basis["id"], b"plain text, not a photo"))
    assert not_an_image.status_code == 415
    assert "search:refuse" in ledger_types(app, after=before - 1)


@pytest.mark.models
def test_a_probe_with_several_faces_lets_the_person_choose_one(
    app: Flask,
    client: Any,
    team: Team,
    investigator: Visitor,
    enrolled: dict[str, list[str]],
    photos: dict[str, list[Path]],
) -> None:
    left = Image.open(photos["Ryan_Reynolds"][3]).convert("RGB")
    right = Image.open(photos["Sally_Field"][3]).convert("RGB").resize(left.size)
    canvas = Image.new("RGB", (left.width * 2 + 40, left.height + 40), (255, 255, 255))
    canvas.paste(left, (10, 20))
    canvas.paste(right, (left.width + 30, 20))
    out = io.BytesIO()
    canvas.save(out, format="JPEG", quality=95)
    basis = approved(client, app, team)

    chooser = run(investigator, search_form(basis["id"], out.getvalue()))

    assert chooser.status_code == 422
    text = chooser.get_data(as_text=True)
    assert re.findall(r'name="face_index" value="(\d)"', text) == ["0", "1"]
    assert '<image href="data:image/jpeg;base64,' in text
    carried = re.search(r'name="probe" value="([^"]+)"', text)
    assert carried is not None
    boxes = re.findall(r'<rect x="([\d.]+)"', text)
    right_index = max(range(2), key=lambda i: float(boxes[i]))
    before = ledger_size(app)

    chosen = run(
        investigator,
        search_form(basis["id"], None, probe=carried.group(1), face_index=str(right_index)),
    )

    assert chosen.status_code == 303, chosen.get_data(as_text=True)
    assert ledger_types(app, after=before - 1)[-1] == "search:run"
    made = RESULTS.match(chosen.headers["Location"])
    assert made is not None
    shown = app.test_client().get(f"/v1/searches/{made.group(1)}", headers=team.inv.headers)
    # Other suites enrol her too: the face is hers when its photo's address says so.
    assert "sally" in shown.get_json()["candidates"][0]["source_url"].lower()
