"""Accountability reports for oversight bodies, recomputed from the ledger's entries.

The figures come from ``ledger.report``, the very code ``facewarden-verify report`` runs on an
exported bundle or a live log, so a body can check that the server's numbers are the log's.
"""

from __future__ import annotations

import json
from typing import Any

from flask import Response, request
from flask.views import MethodView

from api.auth import current_principal, require
from api.blueprint import Blueprint
from api.context import work
from api.schemas.oversight import ReportQuerySchema
from governance.identity.permissions import Permission
from governance.oversight import reports as service
from ledger.report import report_csv, report_svg

__all__ = ["blp"]

blp = Blueprint.resource(__name__, "Accountability reports recomputed from the audit ledger.")

_MEDIA = {"json": "application/json", "csv": "text/csv", "svg": "image/svg+xml"}


def _format(query: dict[str, Any]) -> str:
    if query.get("format"):
        return str(query["format"])
    best = request.accept_mimetypes.best_match(list(_MEDIA.values()))
    return next((name for name, media in _MEDIA.items() if media == best), "json")


@blp.route("/reports")
class Reports(MethodView):
    @require(Permission.OVERSIGHT_REPORT)
    @blp.arguments(ReportQuerySchema, location="query")
    @blp.response(
        200,
        content_type="application/json",
        description="The report as JSON (or CSV, or an SVG chart of searches per month).",
    )
    def get(self, query: dict[str, Any]) -> Response:
        """Searches, refusals, leads, urgent bases, erasures and opt-outs over a period."""
        with work() as w:
            report = service.accountability_report(
                w, principal=current_principal(), start=query.get("start"), end=query.get("end")
            )
        wanted = _format(query)
        if wanted == "csv":
            response = Response(report_csv(report), content_type="text/csv; charset=utf-8")
            response.headers["Content-Disposition"] = 'inline; filename="accountability.csv"'
            return response
        if wanted == "svg":
            return Response(report_svg(report), content_type="image/svg+xml; charset=utf-8")
        return Response(json.dumps(report, indent=2) + "\n", mimetype="application/json")
