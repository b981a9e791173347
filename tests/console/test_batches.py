"""Curators in the console: upload a batch of photos with a manifest of their provenance, read
the summary of what was enrolled, skipped and rejected (and why), and the refusals of a batch
that cannot be taken."""

from __future__ import annotations

import csv
import html
import io
import re
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
from flask import Flask
from PIL import Image

from api.app import create_app
from api.settings import Settings
from tests.api.bases import Team
from tests.api.faces import dev_photos, variant
from tests.api.helpers import (
    Agent,
    ledger_payloads,
    ledger_size,
    ledger_types,
    make_admin,
    make_staff,
    runtime_of,
)
from tests.console.browser import (
    MISSING,
    add_passkey_authenticator,
    assert_accessible,
    launch,
    new_context,
    own_deployment,
    served_console,
)
from tests.console.conftest import Visitor, signed_in

COLUMNS = ["file", "source_url", "collected_at", "collection_basis", "subject_ref"]


@pytest.fixture(scope="module")
def curator(app: Flask, curator_agent: Agent) -> Visitor:
    return signed_in(app, curator_agent)


def manifest_of(rows: list[list[str]], columns: list[str] = COLUMNS) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(columns)
    writer.writerows(rows)
    return out.getvalue().encode()


def upload(visitor: Visitor, photos: dict[str, bytes], manifest: bytes | None) -> Any:
    form: dict[str, Any] = {
        "photos": [(io.BytesIO(data), name) for name, data in photos.items()],
    }
    if manifest is not None:
        form["manifest"] = (io.BytesIO(manifest), "manifest.csv")
    return visitor.post("/console/gallery/batches", form, content_type="multipart/form-data")


def _blank_png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (256, 256), (128, 128, 128)).save(out, format="PNG")
    return out.getvalue()


def _rejects(page: str) -> dict[str, str]:
    """The summary's table of rejects: label -> reason."""
    table = page[page.index('<table class="rejects">') :].split("</table>", maxsplit=1)[0]
    cells = re.findall(r"<tr><td>(.*?)</td><td>(.*?)</td></tr>", table, re.S)
    return {html.unescape(label): html.unescape(reason) for label, reason in cells}


def test_the_form_explains_the_manifest_and_is_in_the_navigation(curator: Visitor) -> None:
    page = curator.get("/console/gallery/batches/new")

    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert '<input id="photos" name="photos" type="file" multiple' in text
    assert 'required aria-describedby="photos-help">' in text
    assert '<label for="manifest">Manifest (CSV)</label>' in text
    assert "file,source_url,collected_at,collection_basis,subject_ref" in text  # the example
    assert '<label for="upload-progress"' in text  # the progress bar has a name
    assert re.search(r'<script src="/console/static/upload\.js[^"]*" defer>', text)
    assert 'aria-current="page">Upload a batch</a>' in text
    single = curator.get("/console/gallery/photos/new").get_data(as_text=True)
    assert '<a href="/console/gallery/batches/new">Upload a batch</a>' in single


def test_the_progress_script_is_served_from_the_console(curator: Visitor) -> None:
    script = curator.get("/console/static/upload.js")

    assert script.status_code == 200
    body = script.get_data(as_text=True)
    assert "XMLHttpRequest" in body and "new FormData(form)" in body  # the token goes along
    assert "Enrolling " in body


@pytest.mark.models
def test_a_batch_enrols_the_good_photos_lists_each_reject_and_skips_on_resubmission(
    app: Flask, client: Any, team: Team, curator: Visitor, shared_dir: Path
) -> None:
    dev = dev_photos(shared_dir)
    site = f"batch-{uuid4().hex[:8]}.example"  # a site of its own
    blocked = f"optout-{uuid4().hex[:8]}.example"
    refused = client.post(
        "/v1/source-policies",
        json={"site": blocked, "status": "blocked", "reason": "letter", "reference": "L-7"},
        headers=team.admin.headers,
    )
    assert refused.status_code == 200, refused.get_json()
    photos = {
        "a.png": variant(dev["Orlando_Bloom"][0]),
        "b.png": variant(dev["Ryan_Reynolds"][0]),
        "c.png": variant(dev["Matthew_Perry"][0]),
        "pdf.jpg": b"%PDF-1.4 not a photo",
        "blank.png": _blank_png(),
        "blocked.png": variant(dev["Orlando_Bloom"][1]),
        "when.png": variant(dev["Ryan_Reynolds"][1]),
        "nourl.png": variant(dev["Matthew_Perry"][1]),
        "stray.png": variant(dev["Orlando_Bloom"][2]),
        "long.png": variant(dev["Ryan_Reynolds"][2]),
    }
    manifest = manifest_of(
        [
            # Named in the URL: other suites find his photos by his name.
            ["a.png", f"https://{site}/Orlando_Bloom/a.png", "2025-06-01", "public_record", ""],
            ["b.png", f"https://{site}/b.png", "2025-06-01T10:00:00Z", "consent", "CASE-1"],
            ["gone.jpg", f"https://{site}/gone.jpg", "2025-06-01", "consent", ""],
            ["pdf.jpg", f"https://{site}/pdf.jpg", "2025-06-01", "consent", ""],
            ["blank.png", f"https://{site}/blank.png", "2025-06-01", "consent", ""],
            ["blocked.png", f"https://www.{blocked}/x.png", "2025-06-01", "consent", ""],
            ["when.png", f"https://{site}/when.png", "yesterday", "consent", ""],
            ["nourl.png", "", "2025-06-01", "consent", ""],
            ["c.png", f"https://{site}/c.png", "2025-06-01", "licence", ""],
            ["long.png", f"https://{site}/long.png", "2025-06-01", "consent", "R" * 129],
        ]
    )
    before = ledger_size(app)

    answer = upload(curator, photos, manifest)

    assert answer.status_code == 200, answer.get_data(as_text=True)
    page = answer.get_data(as_text=True)
    assert "3 photos enrolled, with" in page
    assert "0 skipped: already in the gallery." in page
    assert "8 not enrolled: see why below." in page
    rejects = _rejects(page)
    assert rejects == {
        "line 4 (gone.jpg)": "no uploaded file is named gone.jpg",
        "line 5 (pdf.jpg)": "only JPEG, PNG and WebP images are accepted",
        "line 6 (blank.png)": "no face was found in the photo",
        "line 7 (blocked.png)": f"{blocked} has opted out of the gallery (L-7); photos from it "
        "are refused",
        "line 8 (when.png)": "collected_at is not an ISO 8601 date-time (write e.g. 2025-06-01 "
        "or 2025-06-01T10:00:00Z)",
        "line 9 (nourl.png)": "missing source_url",
        "line 11 (long.png)": "subject_ref: Must be at most 128 characters.",
        "stray.png": "not in the manifest: add a line for it, or leave it out of the batch",
    }
    assert ledger_types(app, after=before - 1) == ["gallery:enroll"] * 3
    enrolled = [p["photo_id"] for p in ledger_payloads(app, after=before - 1)]
    labels = ["line 2 (a.png)", "line 3 (b.png)", "line 10 (c.png)"]
    for label, photo_id in zip(labels, enrolled, strict=True):
        assert re.search(
            rf"<td>{re.escape(label)}</td><td>\d+</td><td><a href=\"/console/gallery/photos/"
            rf"{photo_id}\">",
            page,
        ), label
    shown = curator.get(f"/console/gallery/photos/{enrolled[1]}").get_data(as_text=True)
    assert f"https://{site}/b.png" in shown and "CASE-1" in shown

    again = upload(curator, photos, manifest)

    assert again.status_code == 200
    resent = again.get_data(as_text=True)
    assert "0 photos enrolled, with 0 faces." in resent
    assert "3 skipped: already in the gallery." in resent
    assert "<li>line 2 (a.png)</li>" in resent and "<li>line 10 (c.png)</li>" in resent
    assert set(_rejects(resent)) == set(rejects)
    assert ledger_size(app) == before + 3  # nothing new recorded


@pytest.mark.models
def test_a_bad_provenance_says_which_field(curator: Visitor, shared_dir: Path) -> None:
    photo = variant(dev_photos(shared_dir)["Ryan_Reynolds"][2])
    manifest = manifest_of(
        [["p.png", f"https://p-{uuid4().hex[:8]}.example/p", "2025-06-01", "found it", ""]]
    )

    page = upload(curator, {"p.png": photo}, manifest).get_data(as_text=True)

    reason = _rejects(page)["line 2 (p.png)"]
    assert reason.startswith("the photo's provenance is invalid (collection_basis: Must be one of")
    assert "public_record" in reason


def _refused(answer: Any, field: str, message: str) -> None:
    assert answer.status_code == 422, answer.get_data(as_text=True)
    text = html.unescape(answer.get_data(as_text=True))
    assert f'id="{field}-error"' in text
    assert re.search(
        rf'id="{field}"[^>]* aria-describedby="{field}-help {field}-error" aria-invalid="true"',
        text,
    )
    assert message in text
    assert "Nothing was enrolled." in text


@pytest.mark.parametrize(
    ("photos", "manifest", "field", "message"),
    [
        ({"a.png": b"x"}, None, "manifest", "Choose the manifest: a CSV file"),
        (
            {},
            manifest_of([["a.png", "https://a.example.org/a", "2025-06-01", "consent", ""]]),
            "photos",
            "Choose the photos to enrol (up to 50).",
        ),
        (
            {"a.png": b"x"},
            manifest_of([["a.png", "https://a.example.org/a", "2025-06-01"]], COLUMNS[:3]),
            "manifest",
            "The manifest cannot be used: missing column(s) collection_basis (its first line "
            "must name the columns).",
        ),
        (
            {"a.png": b"x"},
            manifest_of([]),
            "manifest",
            "The manifest cannot be used: the manifest lists no photo",
        ),
        (
            {"a.png": b"x"},
            "file,source_url\n\xe9t\xe9.png,x\n".encode("latin-1"),
            "manifest",
            "The manifest cannot be used: the manifest is not UTF-8 text",
        ),
        (
            {f"{n}.png": b"x" for n in range(51)},
            manifest_of([]),
            "photos",
            "A batch holds at most 50 photos and 51 were chosen: upload them in several batches.",
        ),
    ],
    ids=["no-manifest", "no-photos", "missing-column", "empty", "not-utf8", "too-many"],
)
def test_a_batch_that_cannot_be_taken_is_refused_on_the_form(
    app: Flask,
    curator: Visitor,
    photos: dict[str, bytes],
    manifest: bytes | None,
    field: str,
    message: str,
) -> None:
    before = ledger_size(app)
    _refused(upload(curator, photos, manifest), field, message)
    assert ledger_size(app) == before


def test_a_batch_over_the_body_limit_names_the_setting(
    app: Flask, curator: Visitor, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(app.config, "MAX_CONTENT_LENGTH", 4096)
    before = ledger_size(app)

    answer = upload(curator, {"big.png": b"\0" * 8192}, manifest_of([]))

    assert answer.status_code == 413
    text = html.unescape(answer.get_data(as_text=True))
    assert "<h1>The batch is too large</h1>" in text
    assert "over 4 KB, the most this service accepts in one upload" in text
    assert "FACEWARDEN_MAX_REQUEST_BYTES" in text
    assert ledger_size(app) == before


def test_an_investigator_may_not_upload_a_batch(app: Flask, team: Team) -> None:
    investigator = signed_in(app, team.inv)
    manifest = manifest_of([["a.png", "https://a.example.org/a", "2025-06-01", "consent", ""]])

    for answer in (
        investigator.get("/console/gallery/batches/new"),
        upload(investigator, {"a.png": b"x"}, manifest),
    ):
        assert answer.status_code == 403
        assert "The investigator role may not do this (gallery:enroll)." in answer.get_data(
            as_text=True
        )
    nav = investigator.get("/console/").get_data(as_text=True)
    assert "Upload a batch" not in nav


# In a real browser: static/upload.js sends the form with its progress, under the console's CSP.


@pytest.fixture
def deployment(tmp_path: Path) -> Iterator[tuple[str, Flask, Settings]]:
    """A database and data directory of its own, served, with an app of it in this process to
    create its people: the served process opens the vector index, which milvus-lite lets only
    one process hold, and the suite's app holds the shared gallery's."""
    if MISSING:
        pytest.skip(f"the browser tests need {', '.join(MISSING)}")
    with own_deployment(tmp_path, "batches.facewarden.local/ledger") as settings:
        own = create_app(settings)
        try:
            with served_console(settings) as url:
                yield url, own, settings
        finally:
            runtime_of(own).engine.dispose()


@pytest.mark.browser
@pytest.mark.models
def test_the_upload_shows_its_progress_then_the_summary_in_a_browser(
    deployment: tuple[str, Flask, Settings], tmp_path: Path, shared_dir: Path
) -> None:
    url, own, settings = deployment
    dev = dev_photos(shared_dir)
    curator = make_staff(own.test_client(), make_admin(own), "curator")
    with launch(settings, tmp_path / "profile") as browser:
        context = new_context(browser, color_scheme="light")
        _upload_in_the_browser(context.new_page(), url, curator, dev)
        context.close()


def _upload_in_the_browser(page: Any, url: str, curator: Agent, dev: dict[str, list[Path]]) -> None:
    add_passkey_authenticator(page)
    page.goto(f"{url}/console/enrol")
    page.get_by_label("Your API key (starts with fw_)").fill(curator.token)
    page.get_by_role("button", name="Create my passkey and sign in").click()
    page.get_by_text("Your passkey is enrolled.").wait_for()
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Upload a batch").click()
    assert_accessible(page)
    site = f"browser-{uuid4().hex[:8]}.example"
    photos = {"one.png": dev["Orlando_Bloom"][3], "two.png": dev["Ryan_Reynolds"][3]}
    page.get_by_label("Photos (JPEG, PNG or WebP)").set_input_files(
        [{"name": n, "mimeType": "image/png", "buffer": variant(p)} for n, p in photos.items()]
    )
    manifest = manifest_of(
        [[n, f"https://{site}/{n}", "2025-06-01", "consent", ""] for n in photos]
        + [["gone.png", f"https://{site}/gone.png", "2025-06-01", "consent", ""]]
    )
    page.get_by_label("Manifest (CSV)").set_input_files(
        {"name": "manifest.csv", "mimeType": "text/csv", "buffer": manifest}
    )
    # What the page says while it works (the summary replaces it when the answer comes).
    page.evaluate(
        """() => {
          window.seen = [];
          const status = document.querySelector('.upload-status');
          const label = document.querySelector('.upload-progress label');
          new MutationObserver(() => window.seen.push(
            label.textContent + ' | ' + status.textContent
          )).observe(status, {childList: true, characterData: true, subtree: true});
        }"""
    )

    page.get_by_role("button", name="Upload and enrol").click()

    page.locator("h1", has_not_text="Upload a batch of photos").wait_for(timeout=60_000)
    assert page.locator("h1").text_content() == "Batch summary", page.locator("main").inner_text()
    assert page.url == f"{url}/console/gallery/batches/new"  # sent by the script, not the form
    seen = page.evaluate("window.seen")
    assert seen[0] == "Upload of the photos | Uploading 2 photos…", seen
    assert seen[-1].startswith("Enrolment of the photos | Enrolling 2 photos…"), seen
    assert page.get_by_text("2 photos enrolled, with").is_visible()
    assert page.get_by_role("cell", name="no uploaded file is named gone.png").is_visible()
    assert page.title() == "Batch summary · FaceWarden"
    assert_accessible(page)


def test_a_batch_is_charged_one_costly_request_a_photo(
    app: Flask, team: Team, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A curator of its own: the limit counts per credential and per account.
    visitor = signed_in(app, make_staff(app.test_client(), team.admin, "curator"))
    rt = runtime_of(app)
    monkeypatch.setattr(rt, "settings", replace(rt.settings, search_rate_limit="5 per minute"))
    site = f"https://costly-{uuid4().hex[:8]}.example"
    photos = {f"{n}.png": b"x" for n in range(3)}
    rows = [[name, f"{site}/{name}", "2025-06-01", "consent", ""] for name in photos]
    before = ledger_size(app)

    # Three photos spend three of the five, even when the manifest is then refused.
    _refused(
        upload(visitor, photos, manifest_of([r[:3] for r in rows], COLUMNS[:3])),
        "manifest",
        "missing column(s) collection_basis",
    )
    answer = upload(visitor, photos, manifest_of(rows))  # three more than the two left

    assert answer.status_code == 429, answer.get_data(as_text=True)
    text = html.unescape(answer.get_data(as_text=True))
    assert "<h1>Too Many Requests</h1>" in text
    assert "at most 5 per 1 minute" in text
    assert ledger_size(app) == before  # nothing enrolled


def test_a_manifest_of_more_lines_than_a_batch_holds_is_refused(
    app: Flask, curator: Visitor
) -> None:
    rows = [
        [f"{n}.png", f"https://a.example.org/{n}", "2025-06-01", "consent", ""] for n in range(51)
    ]
    before = ledger_size(app)

    _refused(
        upload(curator, {"0.png": b"x"}, manifest_of(rows)),
        "manifest",
        "The manifest cannot be used: it has more than 50 lines of photos, and a batch holds at "
        "most 50 photos: split it into several batches.",
    )
    assert ledger_size(app) == before
