"""Oversight in the console: the ledger's state, the accountability report (the same figures
as GET /v1/oversight/reports) with a CSV download, and the offline commands that prove them."""

from __future__ import annotations

import re
from typing import Any

import pytest
from flask import Flask

from tests.api.bases import Team
from tests.api.helpers import ledger_size, runtime_of
from tests.console.conftest import BASE, Visitor, signed_in


@pytest.fixture(scope="module")
def officer(app: Flask, team: Team) -> Visitor:
    return signed_in(app, team.oversight)


def test_the_ledger_page_shows_its_size_and_the_commands_to_verify_it(
    app: Flask, officer: Visitor
) -> None:
    size = ledger_size(app)
    page = officer.get("/console/oversight")

    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert f"<dt>Entries recorded</dt><dd>{size}</dd>" in text
    assert f"covers {size} entries" in text
    assert re.search(r"\((less than a minute|\d+ minutes) ago\)", text)
    key = runtime_of(app).signer.verifier_key
    assert f"facewarden-verify live {BASE} --key &#39;{key}&#39;" in text
    assert f"facewarden-verify audit live {BASE} --key &#39;{key}&#39;" in text
    assert "These figures are the server's own account of itself." in text
    assert "Only the offline check below" in text


def test_the_report_has_the_apis_figures_and_downloads_as_csv(
    app: Flask, client: Any, team: Team, officer: Visitor
) -> None:
    period = {"from": "2026-01-01", "to": "2099-01-01"}
    api = client.get(
        "/v1/oversight/reports", query_string=period, headers=team.oversight.headers
    ).get_json()

    page = officer.post("/console/oversight/report", {**period, "format": "html"})

    assert page.status_code == 200
    text = page.get_data(as_text=True)
    searches = f'<th scope="row">Searches run</th><td>{api["searches"]["total"]}</td>'
    assert searches in text
    entries = f'<th scope="row">Ledger entries</th><td>{api["entries"]}</td>'
    assert entries in text
    assert "<caption>Searches per month</caption>" in text
    assert "--from 2026-01-01 --to 2099-01-01" in text  # the offline report for this period

    csv = officer.post("/console/oversight/report", {**period, "format": "csv"})
    assert csv.status_code == 200
    assert csv.mimetype == "text/csv"
    expected = client.get(
        "/v1/oversight/reports",
        query_string={**period, "format": "csv"},
        headers=team.oversight.headers,
    ).get_data(as_text=True)
    assert csv.get_data(as_text=True) == expected


def test_a_bad_date_is_shown_beside_its_field(officer: Visitor) -> None:
    page = officer.post("/console/oversight/report", {"from": "last spring", "format": "html"})

    assert page.status_code == 422
    text = page.get_data(as_text=True)
    assert 'id="from-error"' in text
    assert 'aria-describedby="from-help from-error" aria-invalid="true"' in text


def test_agency_roles_are_refused(app: Flask, team: Team) -> None:
    investigator = signed_in(app, team.inv)
    assert investigator.get("/console/oversight").status_code == 403
    assert investigator.get("/console/oversight/report").status_code == 403
    assert investigator.post("/console/oversight/report", {"format": "csv"}).status_code == 403
