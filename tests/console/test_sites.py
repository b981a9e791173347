"""Administrators in the console: block a site, follow the purge of its faces step by step to
the end (as POST /v1/source-policies does, on the record), and allow a site again."""

from __future__ import annotations

import html
import re
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from api.console import sites
from biometrics.errors import IndexUnavailable
from governance.core.errors import InvalidInput
from governance.gallery.opt_outs import PolicyInfo, PurgeProgress
from tests.api.bases import Team
from tests.api.faces import dev_photos, enroll, variant
from tests.api.helpers import Agent, ledger_payloads, ledger_size, ledger_types
from tests.console.conftest import Visitor, signed_in


@pytest.fixture(scope="module")
def admin(app: Flask, team: Team) -> Visitor:
    return signed_in(app, team.admin)


def _site() -> str:
    return f"optout-{uuid.uuid4().hex[:10]}.com"  # no other test blocks or enrols from it


def _set(visitor: Visitor, status: str, **fields: str) -> Any:
    form = {"status": status, "reason": "cease-and-desist letter", "reference": "L-2026-11-02"}
    return visitor.post("/console/sites", form | fields)


def _progress(text: str) -> tuple[int, int]:
    found = re.search(r'<progress id="purge" max="(\d+)" value="(\d+)"', text)
    assert found is not None, text
    return int(found.group(2)), int(found.group(1))


@pytest.mark.models
def test_blocking_a_site_purges_its_faces_step_by_step_until_none_remain(
    app: Flask,
    client: FlaskClient,
    admin: Visitor,
    curator_agent: Agent,
    shared_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    site = _site()
    enrolled = [
        enroll(client, curator_agent, variant(path), url=f"https://cdn{i}.{site}/u/{i}.jpg")
        for i, path in enumerate(dev_photos(shared_dir)["Mila_Kunis"][:3])
    ]
    assert [r.status_code for r in enrolled] == [201, 201, 201]
    faces = sum(len(r.get_json()["faces"]) for r in enrolled)
    assert faces == 3
    # One photo a step, and a step stops after its first batch: three steps in all.
    monkeypatch.setattr(sites, "PURGE_BATCH_SIZE", 1)
    monkeypatch.setattr(sites, "PURGE_BUDGET_SECONDS", 0.0)
    before = ledger_size(app)

    blocked = _set(admin, "blocked", site=f"https://www.{site}/")

    assert blocked.status_code == 303, blocked.get_data(as_text=True)
    assert blocked.headers["Location"] == f"/console/sites/{site}?done=blocked"
    page = admin.get(blocked.headers["Location"]).get_data(as_text=True)
    assert "The site is blocked: photos from it are refused" in page
    assert _progress(page) == (1, 3)
    assert '<label for="purge" class="purge-label">Faces purged from' in page
    assert "1 of 3 purged, 2 remaining" in page
    assert "The purge is not finished: 2 faces enrolled from" in page
    action = f'action="/console/sites/{site}/purge" data-purge'
    assert action in page and ">Continue the purge</button>" in page
    assert "/console/static/purge.js" in page
    listing = admin.get("/console/sites").get_data(as_text=True)
    row = listing[listing.index(f'<a href="/console/sites/{site}">') :].split("</tr>")[0]
    assert "Blocked" in row and "L-2026-11-02" in row and "Continue the purge" in row

    # The page's script asks for JSON; the form without it is sent back to the page.
    step = admin.post(f"/console/sites/{site}/purge", headers={"Accept": "application/json"})
    assert step.status_code == 200
    assert step.get_json() == {"site": site, "purged": 2, "remaining": 1, "total": 3, "done": False}
    last = admin.post(f"/console/sites/{site}/purge")
    assert last.status_code == 303
    assert last.headers["Location"] == f"/console/sites/{site}?done=purged"

    done = admin.get(last.headers["Location"]).get_data(as_text=True)
    assert "The purge is finished: no face enrolled from" in done
    assert "<progress" not in done and "Continue the purge" not in done
    assert re.search(r"<dt>Faces purged</dt><dd>3</dd>\s*<dt>Faces remaining</dt><dd>0</dd>", done)
    assert ledger_types(app, after=before - 1) == [
        "source_policy:set",
        "source:purge",
        "source:purge",
        "source:purge",
    ]
    payloads = ledger_payloads(app, after=before - 1)
    assert payloads[0] == {"site": site, "status": "blocked", "reference": "L-2026-11-02"}
    assert [(p["site"], p["photos"], p["faces"]) for p in payloads[1:]] == [(site, 1, 1)] * 3
    for response in enrolled:
        photo = client.get(
            f"/v1/gallery/photos/{response.get_json()['id']}", headers=curator_agent.headers
        )
        assert photo.status_code == 404
    refused = enroll(
        client,
        curator_agent,
        variant(dev_photos(shared_dir)["Mila_Kunis"][3]),
        url=f"https://{site}/again.jpg",
    )
    assert refused.status_code == 403


@pytest.mark.models
def test_a_site_is_allowed_again(app: Flask, admin: Visitor) -> None:
    site = _site()
    assert _set(admin, "blocked", site=site).status_code == 303
    before = ledger_size(app)

    allowed = _set(admin, "allowed", site=site, reason="the site withdrew its letter")

    assert allowed.status_code == 303
    page = admin.get(allowed.headers["Location"]).get_data(as_text=True)
    assert "The site is allowed again: photos from it may be enrolled." in page
    assert "Allowed: photos from it may be enrolled" in page
    assert "the site withdrew its letter" in page
    assert "Continue the purge" not in page
    assert ledger_payloads(app, after=before - 1) == [
        {"site": site, "status": "allowed", "reference": "L-2026-11-02"}
    ]
    # An allowed site's purge is not continued, with a plain refusal.
    refused = admin.post(f"/console/sites/{site}/purge")
    assert refused.status_code == 422
    assert f"{site} is not blocked, so nothing was purged." in refused.get_data(as_text=True)
    scripted = admin.post(f"/console/sites/{site}/purge", headers={"Accept": "application/json"})
    assert scripted.status_code == 422
    assert scripted.get_json()["detail"] == f"{site} is not blocked, so nothing is purged"
    assert ledger_size(app) == before + 1


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"site": "co.uk"}, "site", "is a public suffix, not a registrable domain."),
        ({"site": "localhost"}, "site", "is not a public domain name."),
        ({"site": "x"}, "site", "Length must be between 3 and 253."),
        ({"site": "https://"}, "site", "Give a domain such as example.org."),
        ({"reason": ""}, "reason", ""),
        ({"reference": "   "}, "reference", ""),
    ],
)
@pytest.mark.parametrize("status", ["blocked", "allowed"])
def test_a_bad_policy_is_shown_beside_its_field(
    app: Flask, admin: Visitor, fields: dict[str, str], field: str, message: str, status: str
) -> None:
    before = ledger_size(app)

    answer = _set(admin, status, **({"site": _site()} | fields))

    assert answer.status_code == 422
    text = answer.get_data(as_text=True)
    assert "The policy was not changed. Please correct the fields marked below." in text
    error = re.search(rf'<p id="{status}-{field}-error" class="field-error">([^<]+)</p>', text)
    assert error is not None and message in error.group(1)
    assert re.search(rf'id="{status}-{field}"[^>]*aria-invalid="true"', text)
    assert ledger_size(app) == before


def test_a_policy_needs_one_of_the_forms(app: Flask, admin: Visitor) -> None:
    before = ledger_size(app)
    answer = _set(admin, "maybe", site=_site())
    assert answer.status_code == 400
    assert "Send one of the page&#39;s forms" in answer.get_data(as_text=True)
    assert ledger_size(app) == before


def test_continuing_a_site_without_a_policy_is_refused(admin: Visitor) -> None:
    site = _site()
    answer = admin.post(f"/console/sites/{site}/purge")
    assert answer.status_code == 404
    assert f"No policy is recorded for {site}: block it first." in answer.get_data(as_text=True)
    page = admin.get(f"/console/sites/{site}")
    assert page.status_code == 404
    assert "it was never blocked or allowed" in page.get_data(as_text=True)


def test_curators_read_the_policies_and_investigators_do_not(
    app: Flask, team: Team, curator_agent: Agent
) -> None:
    curator = signed_in(app, curator_agent)
    listing = curator.get("/console/sites")
    assert listing.status_code == 200
    text = listing.get_data(as_text=True)
    assert '<a href="/console/sites" aria-current="page">Site policies</a>' in text
    assert "Block a site" not in text and 'name="status"' not in text
    before = ledger_size(app)
    blocked = _set(curator, "blocked", site=_site())
    assert blocked.status_code == 403
    assert "The curator role may not do this (source_policy:set)." in blocked.get_data(as_text=True)
    assert curator.post(f"/console/sites/{_site()}/purge").status_code == 403
    assert ledger_size(app) == before
    investigator = signed_in(app, team.inv)
    refused = investigator.get("/console/sites")
    assert refused.status_code == 403
    assert "The investigator role may not do this (source_policy:read)." in refused.get_data(
        as_text=True
    )
    assert "Site policies" not in investigator.get("/console/").get_data(as_text=True)


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (IndexUnavailable("the vector index does not answer"), 503),
        (InvalidInput("the site is not blocked any more"), 422),
    ],
    ids=["index", "invalid-input"],
)
def test_a_block_whose_purge_fails_says_the_block_stands(
    app: Flask,
    admin: Visitor,
    monkeypatch: pytest.MonkeyPatch,
    error: Exception,
    status: int,
) -> None:
    site = _site()

    def failing_engines() -> Any:  # asked for only once the block has committed
        raise error

    monkeypatch.setattr(sites, "engines", failing_engines)
    before = ledger_size(app)

    answer = _set(admin, "blocked", site=site)

    assert answer.status_code == status, answer.get_data(as_text=True)
    page = html.unescape(answer.get_data(as_text=True))
    assert f"<h1>Site policy for {site}</h1>" in page
    assert f"{site} is blocked: photos from it are refused" in page
    assert f"The purge of its faces stopped, though ({error})" in page
    assert "continue it from this page" in page
    assert "not changed" not in page
    assert ledger_types(app, after=before - 1) == ["source_policy:set"]
    shown = admin.get(f"/console/sites/{site}").get_data(as_text=True)
    assert "Blocked: photos from it are refused" in shown


def _purged(site: str, *, remaining: int, batches: int) -> Any:
    """A stand-in for ``purge_site``: ``batches`` batches removed a face each."""

    def purge_site(*_args: Any, progress: Any, **_kwargs: Any) -> PolicyInfo:
        for n in range(1, batches + 1):
            progress(PurgeProgress(site=site, purged=n, total=remaining + batches))
        return PolicyInfo(
            site=site,
            status="blocked",
            reason="letter",
            reference="L-1",
            updated_at=datetime.now(UTC),
            faces_purged=batches,
            faces_remaining=remaining,
        )

    return purge_site


@pytest.mark.parametrize(("batches", "done"), [(1, False), (0, True)])
def test_a_purge_step_that_removed_nothing_is_done_for_the_script(
    admin: Visitor, monkeypatch: pytest.MonkeyPatch, batches: int, done: bool
) -> None:
    # Faces still counted that no batch removes would keep the script asking for ever.
    site = _site()
    monkeypatch.setattr(sites.service, "purge_site", _purged(site, remaining=2, batches=batches))

    step = admin.post(f"/console/sites/{site}/purge", headers={"Accept": "application/json"})

    assert step.status_code == 200
    assert step.get_json() == {
        "site": site,
        "purged": batches,
        "remaining": 2,
        "total": 2 + batches,
        "done": done,
    }
