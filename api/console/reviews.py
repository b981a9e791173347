"""Reviewing a colleague's search: the probe face beside each candidate, a verdict and a note.

The same governance functions as the API's: ``list_searches``, ``get_search``,
``record_reviews`` and ``probe_image`` (the candidates' thumbnails are the search page's,
``investigation.candidate_thumbnail``). Every image shown is a recorded
view, and the probe face exists only while the search's results do.
"""

from __future__ import annotations

import base64
from typing import Any
from uuid import UUID

from flask import Blueprint, redirect, render_template, request, url_for
from werkzeug.exceptions import BadRequest

from api.console.nav import NavItem
from api.console.security import console_principal, signed_in
from api.context import work
from api.errors import answer_for
from biometrics.errors import DomainError
from governance.core.errors import Conflict
from governance.identity.permissions import Permission
from governance.identity.persons import same_person
from governance.identity.principals import Principal
from governance.search.models import VERDICTS
from governance.search.records import (
    SearchView,
    get_search,
    list_searches,
    probe_image,
)
from governance.search.reviews import ReviewInput, record_reviews

__all__ = ["NAVIGATION", "bp", "probe_uri"]

bp = Blueprint("reviews", __name__)
NAVIGATION = (NavItem("console.reviews.queue", "Reviews", Permission.SEARCH_REVIEW, order=40),)

VERDICT_LABELS = {
    "possible_match": "Possible match",
    "no_match": "Not the same person",
    "inconclusive": "Cannot tell",
}
_IMAGE_HEADERS = {"Cache-Control": "private, no-store"}


def _me() -> Principal:
    principal = console_principal()
    assert principal is not None  # @signed_in
    return principal


@bp.get("/reviews")
@signed_in(Permission.SEARCH_REVIEW)
def queue() -> str:
    """The agency's recent searches by colleagues, with their review state."""
    me = _me()
    with work() as w:
        searches, _total = list_searches(w, principal=me, limit=50, offset=0)
        theirs = {
            account: not same_person(w.session, account, me.account_id)
            for account in {s.account_id for s in searches}
        }
    # Only colleagues' searches: the searcher may never review their own, from any account.
    waiting = [
        s
        for s in searches
        if theirs[s.account_id] and s.results_deleted_at is None and s.candidates
    ]
    return render_template("reviews/queue.html", searches=waiting)


def _reviewed_by_me(search: SearchView, me: Principal) -> set[UUID]:
    return {
        c.face_id for c in search.candidates for r in c.reviews if r.reviewer_id == me.account_id
    }


def probe_uri(search_id: UUID) -> str | None:
    """The probe face as a ``data:`` URI (one recorded view for the page, however many times
    it shows it), or None once it was deleted with the search's results."""
    try:
        with work() as w:
            data = probe_image(w, principal=_me(), search_id=search_id)
    except Conflict:
        return None
    return "data:image/jpeg;base64," + base64.b64encode(data).decode("ascii")


def _page(search_id: UUID, *, error: str | None = None, status: int = 200) -> tuple[str, int]:
    me = _me()
    with work() as w:
        search = get_search(w, principal=me, search_id=search_id)
    page = render_template(
        "reviews/review.html",
        search=search,
        probe=probe_uri(search_id),
        reviewed=_reviewed_by_me(search, me),
        verdicts=VERDICT_LABELS,
        error=error,
        done=request.args.get("done"),
    )
    return page, status


@bp.get("/reviews/<uuid:search_id>")
@signed_in(Permission.SEARCH_REVIEW)
def review(search_id: UUID) -> tuple[str, int]:
    """The probe face beside each candidate, each with its verdict form."""
    return _page(search_id)


@bp.post("/reviews/<uuid:search_id>")
@signed_in(Permission.SEARCH_REVIEW)
def record(search_id: UUID) -> Any:
    """Record the verdicts given on the form (the candidates left blank are not reviewed)."""
    given = []
    for key, verdict in request.form.items():
        if not key.startswith("verdict-") or not verdict:
            continue
        try:
            face_id = UUID(key.removeprefix("verdict-"))
        except ValueError as exc:
            raise BadRequest(f"The field {key} names no candidate.") from exc
        if verdict not in VERDICTS:
            raise BadRequest(f"Unknown verdict {verdict!r}.")
        note = request.form.get(f"note-{face_id}", "").strip()[:2000]
        given.append(ReviewInput(face_id=face_id, verdict=verdict, note=note))
    if not given:
        return _page(search_id, error="Choose a verdict for at least one candidate.", status=422)
    try:
        with work() as w:
            record_reviews(w, principal=_me(), search_id=search_id, reviews=given)
    except DomainError as exc:
        return _page(search_id, error=exc.detail, status=answer_for(exc).status)
    return redirect(url_for("console.reviews.review", search_id=search_id, done="recorded"), 303)
