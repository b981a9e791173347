"""Reviewing in the console: the probe face beside each candidate, verdicts, and who may not."""

from __future__ import annotations

import base64
import io
import json
import re
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from PIL import Image

from tests.api.bases import Team, approved
from tests.api.faces import dev_photos, enroll, variant
from tests.api.helpers import ledger_types, make_staff, runtime_of
from tests.console.conftest import signed_in

pytestmark = pytest.mark.models


@pytest.fixture(scope="module")
def searched(app: Flask, team: Team, shared_dir: Path) -> dict[str, Any]:
    """The investigator's search for a person the gallery holds two photos of."""
    client = app.test_client()
    photos = dev_photos(shared_dir)
    curator = make_staff(client, team.admin, "curator")
    for i, path in enumerate(photos["Ryan_Reynolds"][:2]):
        url = f"https://people.example.org/rr/{i}.jpg"
        assert enroll(client, curator, variant(path), url=url).status_code == 201
    basis = approved(client, app, team)
    answer = client.post(
        "/v1/searches",
        data={
            "image": (io.BytesIO(photos["Ryan_Reynolds"][2].read_bytes()), "probe.jpg"),
            "legal_basis_id": basis["id"],
            "purpose": "identify the man in the CCTV still of 2026-11-20",
        },
        content_type="multipart/form-data",
        headers=team.inv.headers,
    )
    assert answer.status_code == 201, answer.get_json()
    body: dict[str, Any] = answer.get_json()
    assert body["candidates"]
    return body


def test_a_colleague_reviews_with_the_probe_beside_each_candidate(
    app: Flask, client: FlaskClient, team: Team, searched: dict[str, Any]
) -> None:
    reviewer = signed_in(app, team.sup)
    queue = reviewer.get("/console/reviews").get_data(as_text=True)
    assert f"/console/reviews/{searched['id']}" in queue
    before = len(ledger_types(app))
    page = reviewer.get(f"/console/reviews/{searched['id']}")
    assert page.status_code == 200
    assert page.headers["Cache-Control"] == "no-store"
    # The probe face is in the page itself, once fetched and recorded, beside each candidate.
    assert ledger_types(app)[before:] == ["probe:view"]
    text = page.get_data(as_text=True)
    assert "Investigative leads only." in text
    face = searched["candidates"][0]["face_id"]
    probes = re.findall(r'<img src="data:image/jpeg;base64,([^"]+)" alt="The probe face"', text)
    assert len(probes) == len(searched["candidates"])
    with Image.open(io.BytesIO(base64.b64decode(probes[0]))) as shown:
        assert shown.format == "JPEG" and max(shown.size) <= 160
    assert f"/console/searches/{searched['id']}/candidates/{face}/thumbnail" in text

    before = len(ledger_types(app))
    candidate = reviewer.get(f"/console/searches/{searched['id']}/candidates/{face}/thumbnail")
    assert candidate.status_code == 200
    assert ledger_types(app)[before:] == ["thumbnail:view"]

    recorded = reviewer.post(
        f"/console/reviews/{searched['id']}",
        {f"verdict-{face}": "possible_match", f"note-{face}": "same scar on the chin"},
    )
    assert recorded.status_code == 303
    shown = client.get(f"/v1/searches/{searched['id']}", headers=team.inv.headers).get_json()
    votes = {c["face_id"]: c["possible_match_votes"] for c in shown["candidates"]}
    assert votes[face] == 1
    again = reviewer.get(recorded.headers["Location"]).get_data(as_text=True)
    assert "Your verdicts are recorded." in again and "You reviewed this candidate." in again


def test_the_searcher_may_not_review_and_another_agency_sees_nothing(
    app: Flask, team: Team, searched: dict[str, Any]
) -> None:
    searcher = signed_in(app, team.inv)
    assert f"/console/reviews/{searched['id']}" not in searcher.get("/console/reviews").get_data(
        as_text=True
    )
    face = searched["candidates"][0]["face_id"]
    refused = searcher.post(f"/console/reviews/{searched['id']}", {f"verdict-{face}": "no_match"})
    assert refused.status_code == 403  # as the API answers: the four-eyes rule
    assert "may not review it" in refused.get_data(as_text=True)

    outsider = signed_in(app, team.other)
    assert outsider.get(f"/console/reviews/{searched['id']}").status_code == 404
    assert outsider.get(f"/console/records/{searched['id']}").status_code == 404


def test_a_form_without_a_verdict_says_so(app: Flask, team: Team, searched: dict[str, Any]) -> None:
    reviewer = signed_in(app, team.sup)
    answer = reviewer.post(f"/console/reviews/{searched['id']}", {})
    assert answer.status_code == 422
    assert "Choose a verdict for at least one candidate." in answer.get_data(as_text=True)


def test_the_police_file_record_carries_the_case_and_a_receipt_that_verifies(
    app: Flask, client: FlaskClient, team: Team, searched: dict[str, Any]
) -> None:
    from ledger.receipt import verify_receipt

    investigator = signed_in(app, team.inv)
    page = investigator.get(f"/console/records/{searched['id']}")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    basis = client.get(
        f"/v1/legal-bases/{searched['legal_basis_id']}", headers=team.inv.headers
    ).get_json()
    assert basis["case_number"] in text
    assert basis["authorisation"]["reference"] in text
    assert 'alt="The probe face"' in text and "data:image/jpeg;base64," in text
    assert searched["candidates"][0]["source_url"] in text
    key = runtime_of(app).signer.verifier_key
    assert f'--key "{key}"' in text and "--live https://localhost:8443 --tiles" in text

    download = investigator.get(f"/console/searches/{searched['id']}/receipt.json")
    assert download.status_code == 200
    assert download.headers["Content-Disposition"].startswith("attachment;")
    receipt = json.loads(download.get_data(as_text=True))
    assert receipt["leaf_hash"] in text
    verify_receipt(receipt, [key])  # raises on a receipt that does not verify
    outsider = signed_in(app, team.other)
    assert outsider.get(f"/console/records/{searched['id']}").status_code == 404
