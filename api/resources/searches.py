"""Searches: a probe photo in, candidates out, under a legal basis, with a ledger receipt."""

from __future__ import annotations

from dataclasses import fields
from typing import Any, Literal
from uuid import UUID

from flask import Response, url_for
from flask.views import MethodView

from api.auth import current_principal, require
from api.blueprint import LOCATION, MULTIPART, Blueprint
from api.context import engines, runtime, units, work
from api.schemas.searches import (
    ReceiptSchema,
    ReviewRequestSchema,
    SearchFormSchema,
    SearchOutcomeSchema,
    SearchPageSchema,
    SearchQuerySchema,
    SearchViewSchema,
)
from governance.identity.credentials import SuspendedCaller
from governance.identity.permissions import Permission
from governance.identity.principals import Principal
from governance.search.outcomes import Receipt
from governance.search.records import (
    SearchView,
    candidate_media,
    get_search,
    list_searches,
    search_receipt,
)
from governance.search.refusals import refuse
from governance.search.reviews import ReviewInput, record_reviews
from governance.search.running import search

blp = Blueprint.resource(
    __name__, "Governed face searches, their candidates, and two-person review."
)


def _fields(obj: Any) -> dict[str, Any]:
    return {f.name: getattr(obj, f.name) for f in fields(obj)}


def _refuse_suspended(principal: Principal, error: SuspendedCaller) -> None:
    refuse(units(), principal, error)


@blp.route("")
class Searches(MethodView):
    @require(Permission.SEARCH_RUN, on_suspended=_refuse_suspended, costly=True)
    @blp.arguments(SearchFormSchema, location=MULTIPART)
    @blp.response(201, SearchOutcomeSchema, headers=LOCATION)
    def post(self, form: dict[str, Any]) -> tuple[dict[str, Any], int, dict[str, str]]:
        """Search the gallery with a probe photo under a legal basis.

        Consumes one search from the basis. Answers the candidates in rank order (leads only:
        each needs two-person review) and a ledger receipt that proves, offline, that the
        search and its result were recorded. A probe with several faces answers 422 listing
        them: resend with `face_index` or `face_box`. No candidate scores below the model
        pack's calibrated threshold: `threshold` may be stricter, and one below that floor is
        refused with 422 `threshold-below-floor` naming it. Every refusal is recorded too.
        """
        outcome = search(
            units(),
            engines(),
            current_principal(),
            image=form["image"].read(),
            legal_basis_id=form["legal_basis_id"],
            purpose=form["purpose"],
            top_k=form["top_k"],
            threshold=form.get("threshold"),
            face_index=form.get("face_index"),
            face_box=form.get("face_box"),
        )
        # Shallow: the schema reads the receipt's attributes; asdict's deep copy cost more.
        body = _fields(outcome)
        body["candidates"] = [
            _fields(c)
            | {
                "thumbnail": url_for(
                    "searches.CandidateThumbnail", search_id=outcome.id, face_id=c.face_id
                )
            }
            for c in outcome.candidates
        ]
        return body, 201, {"Location": url_for("searches.SearchById", search_id=outcome.id)}

    @blp.operation(Permission.SEARCH_READ, 200, SearchPageSchema, query=SearchQuerySchema)
    def get(self, query: dict[str, Any]) -> dict[str, Any]:
        """List the agency's searches, newest first, with their review state."""
        with work() as w:
            items, total = list_searches(
                w, principal=current_principal(), limit=query["limit"], offset=query["offset"]
            )
        return {"items": items, "total": total, "limit": query["limit"], "offset": query["offset"]}


@blp.route("/<uuid:search_id>")
class SearchById(MethodView):
    @blp.operation(Permission.SEARCH_READ, 200, SearchViewSchema)
    def get(self, search_id: UUID) -> SearchView:
        """Read one search of the agency: candidates, reviews and review state."""
        with work() as w:
            return get_search(w, principal=current_principal(), search_id=search_id)


@blp.route("/<uuid:search_id>/receipt")
class SearchReceipt(MethodView):
    @blp.operation(Permission.SEARCH_READ, 200, ReceiptSchema)
    def get(self, search_id: UUID) -> Receipt:
        """The search's ledger receipt in the newest checkpoint that includes its entry.

        With witnesses configured, that is the newest checkpoint a quorum of them cosigned, once
        one reaches the entry (``cosigned`` is then true): verify it with ``facewarden-verify
        receipt --witness``. Until then, the latest checkpoint the log signed.
        """
        settings = runtime().settings
        with work() as w:
            return search_receipt(
                w,
                principal=current_principal(),
                search_id=search_id,
                witnesses=[e.name for e in settings.witness_endpoints],
                quorum=settings.witness_quorum,
            )


@blp.route("/<uuid:search_id>/reviews")
class SearchReviews(MethodView):
    @blp.operation(Permission.SEARCH_REVIEW, 201, SearchViewSchema, body=ReviewRequestSchema)
    def post(self, body: dict[str, Any], search_id: UUID) -> SearchView:
        """Record verdicts on candidates (by a colleague of the searcher, not the searcher).

        A candidate becomes a confirmed lead when two distinct reviewers say possible_match.
        """
        with work() as w:
            return record_reviews(
                w,
                principal=current_principal(),
                search_id=search_id,
                reviews=[ReviewInput(**item) for item in body["reviews"]],
            )


def _media(search_id: UUID, face_id: UUID, kind: Literal["thumbnail", "photo"]) -> Response:
    with work() as w:
        data, media_type = candidate_media(
            w,
            principal=current_principal(),
            blobs=engines().blobs,
            search_id=search_id,
            face_id=face_id,
            kind=kind,
        )
    return Response(data, mimetype=media_type, headers={"Cache-Control": "private, no-store"})


@blp.route("/<uuid:search_id>/candidates/<uuid:face_id>/thumbnail")
class CandidateThumbnail(MethodView):
    @blp.operation(
        Permission.CANDIDATE_VIEW, 200, description="JPEG thumbnail of the candidate face."
    )
    def get(self, search_id: UUID, face_id: UUID) -> Response:
        """View a candidate's face thumbnail (counted and recorded in the ledger)."""
        return _media(search_id, face_id, "thumbnail")


@blp.route("/<uuid:search_id>/candidates/<uuid:face_id>/photo")
class CandidatePhoto(MethodView):
    @blp.operation(
        Permission.CANDIDATE_VIEW,
        200,
        description="The gallery photo the candidate face comes from.",
    )
    def get(self, search_id: UUID, face_id: UUID) -> Response:
        """View a candidate's source photo (counted and recorded in the ledger)."""
        return _media(search_id, face_id, "photo")
