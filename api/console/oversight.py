"""Oversight pages: the ledger's size and latest checkpoint, the accountability report for a
period (GET /v1/oversight/reports's governance function), and the offline checks that prove it.

The page's figures are the server's own; only ``facewarden-verify``, run elsewhere with the
pinned key, proves them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from flask import Blueprint, Response, render_template, request

from api.console.nav import NavItem
from api.console.security import console_principal, signed_in
from api.context import runtime, work
from governance.core.errors import InvalidInput, NotFound
from governance.identity.permissions import Permission
from governance.identity.principals import Principal
from governance.oversight import reports as service
from ledger.report import report_csv

__all__ = ["NAVIGATION", "bp"]

bp = Blueprint("oversight", __name__)
NAVIGATION = (
    NavItem("console.oversight.ledger", "Ledger", Permission.LEDGER_READ, order=60),
    NavItem("console.oversight.report_form", "Report", Permission.OVERSIGHT_REPORT, order=61),
)

# Report section -> its caption, for the tables of counts.
_TABLES = (
    ("per_month", "Searches per month"),
    ("per_agency", "Searches per agency"),
    ("per_offence_category", "Searches per offence category"),
    ("per_authorisation_kind", "Searches per kind of authorisation"),
)


def _me() -> Principal:
    principal = console_principal()
    assert principal is not None  # @signed_in
    return principal


def _commands(keys: list[str], start: str = "", end: str = "") -> dict[str, str]:
    """The ``facewarden-verify`` commands for this server, every key of the chain pinned."""
    url = runtime().settings.public_url.rstrip("/")
    pinned = " ".join(f"--key '{key}'" for key in keys)
    key_file = "--token-file oversight.key"
    period = "".join(
        f" {flag} {value}" for flag, value in (("--from", start), ("--to", end)) if value
    )
    return {
        "verify": f"facewarden-verify live {url} {pinned} {key_file} --state facewarden-state.json",
        "audit": f"facewarden-verify audit live {url} {pinned} {key_file}",
        "report": f"facewarden-verify report live {url} {pinned} {key_file}{period}",
    }


def _keys() -> list[str]:
    with work() as w:
        return [k.key for k in service.ledger_keys(w)]


@bp.get("/oversight")
@signed_in(Permission.LEDGER_READ)
def ledger() -> str:
    """The ledger's size, its latest checkpoint and its age, and how to verify it offline."""
    settings = runtime().settings
    names = [endpoint.name for endpoint in settings.witness_endpoints]
    note = None
    size = 0
    latest_at = None
    try:
        with work() as w:
            note = service.latest_checkpoint(w, witnesses=names, quorum=settings.witness_quorum)
            size = int(note.split("\n")[1])
            if size:
                last = json.loads(service.entry(w, principal=_me(), seq=size - 1))
                latest_at = datetime.fromisoformat(str(last["ts"]).replace("Z", "+00:00"))
    except NotFound:  # an empty ledger has no checkpoint yet
        pass
    age = runtime().now() - latest_at if latest_at else None
    return render_template(
        "oversight/ledger.html",
        size=size,
        note=note,
        latest_at=latest_at,
        age_minutes=int(age.total_seconds() // 60) if age is not None else None,
        commands=_commands(_keys()),
        public_url=settings.public_url.rstrip("/"),
    )


def _report_page(
    values: Mapping[str, str], errors: Mapping[str, str], report: dict[str, Any] | None
) -> str:
    tables = []
    if report is not None:
        for key, caption in _TABLES:
            counts: dict[str, int] = report["searches"][key]
            tables.append((caption, counts, max(counts.values(), default=0)))
        refused: dict[str, int] = report["refused"]["by_reason"]
        tables.append(("Refused searches by reason", refused, max(refused.values(), default=0)))
    return render_template(
        "oversight/report.html",
        values=values,
        errors=errors,
        report=report,
        tables=tables,
        commands=_commands(_keys(), values.get("from", ""), values.get("to", "")),
    )


@bp.get("/oversight/report")
@signed_in(Permission.OVERSIGHT_REPORT)
def report_form() -> str:
    """Choose the period of the accountability report."""
    return _report_page({}, {}, None)


@bp.post("/oversight/report")
@signed_in(Permission.OVERSIGHT_REPORT)
def report() -> Any:
    """The accountability report for the period, as tables and charts, or as CSV."""
    values = {name: request.form.get(name, "").strip()[:40] for name in ("from", "to")}
    try:
        with work() as w:
            figures = service.accountability_report(
                w, principal=_me(), start=values["from"] or None, end=values["to"] or None
            )
    except InvalidInput as exc:
        errors = {name: " ".join(said) for name, said in exc.fields.items()}
        return _report_page(values, errors or {"form": exc.detail}, None), 422
    if request.form.get("format") == "csv":
        response = Response(report_csv(figures), content_type="text/csv; charset=utf-8")
        response.headers["Content-Disposition"] = 'attachment; filename="accountability.csv"'
        return response
    return _report_page(values, {}, figures)
