"""Searches: a probe photo in, candidates out, under a legal basis, with a ledger receipt."""

from __future__ import annotations

import hashlib
from dataclasses import fields
from typing import Any
from uuid import UUID

from flask import Response, url_for
from flask.views import MethodView

from api.auth import current_principal, require
from api.blueprint import LOCATION, MULTIPART, Blueprint
from api.context import engines, runtime, transaction
from api.errors import problem_code
from api.resources.legal_bases import lapse_hooks
from api.schemas.searches import (
    ReviewRequestSchema,
    SearchFormSchema,
    SearchOutcomeSchema,
    SearchPageSchema,
    SearchQuerySchema,
    SearchViewSchema,
)
from biometrics.errors import BiometricsError
from governance.core.errors import GovernanceError
from governance.core.recording import LedgerUnavailable
from governance.gallery.sites import blocked_sites
from governance.identity.credentials import SuspendedCaller
from governance.identity.permissions import Permission
from governance.identity.principals import Principal
from governance.legal_basis.services import check_usable, settle_basis
from governance.search.records import SearchView, candidate_media, get_search, list_searches
from governance.search.reviews import ReviewInput, record_reviews
from governance.search.running import (
    find_candidates,
    prepare_probe,
    record_refusal,
    run_search,
    search_parameters,
)

blp = Blueprint(
    "searches",
    __name__,
    url_prefix="/v1/searches",
    description="Governed face searches, their candidates, and two-person review.",
)


def _fields(obj: Any) -> dict[str, Any]:
    return {f.name: getattr(obj, f.name) for f in fields(obj)}


def _record_refusal(
    principal: Principal, reason: str, basis_id: UUID | None, probe_sha256: str | None
) -> None:
    rt = runtime()
    with transaction() as session:
        record_refusal(
            session,
            keys=rt.keys,
            principal=principal,
            legal_basis_id=basis_id,
            reason=reason,
            probe_sha256=probe_sha256,
            now=rt.now(),
        )


def _refuse_suspended(principal: Principal, error: SuspendedCaller) -> None:
    _record_refusal(principal, error.code, None, None)


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
        principal = current_principal()
        data = form["image"].read()
        probe_sha256 = hashlib.sha256(data).hexdigest()
        g = engines()
        rt = runtime()
        try:
            parameters = search_parameters(
                g,
                legal_basis_id=form["legal_basis_id"],
                purpose=form["purpose"],
                top_k=form["top_k"],
                threshold=form.get("threshold"),
            )
            # One unit of work settles the basis (a due expiry or lapse) and checks it, before
            # any biometric work; it commits the settlement even when the check refuses.
            refused: GovernanceError | None = None
            with transaction() as session:
                settle_basis(
                    session,
                    basis_id=parameters.legal_basis_id,
                    hooks=lapse_hooks(rt.keys),
                    keys=rt.keys,
                    now=rt.now(),
                )
                try:
                    check_usable(
                        session,
                        principal=principal,
                        basis_id=parameters.legal_basis_id,
                        now=rt.now(),
                    )
                except GovernanceError as exc:
                    refused = exc
                blocked = blocked_sites(session)
            if refused is not None:
                raise refused
            probe = prepare_probe(
                g, data, face_index=form.get("face_index"), face_box=form.get("face_box")
            )
            hits = find_candidates(g, probe, parameters, blocked=blocked)
            with transaction() as session:
                outcome = run_search(
                    session,
                    gallery=g,
                    principal=principal,
                    parameters=parameters,
                    probe=probe,
                    hits=hits,
                    keys=rt.keys,
                    now=rt.now(),
                )
        except LedgerUnavailable:
            raise  # nothing can be recorded, and nothing was disclosed
        except (GovernanceError, BiometricsError) as exc:
            _record_refusal(principal, problem_code(exc), form["legal_basis_id"], probe_sha256)
            raise
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

    @require(Permission.SEARCH_READ)
    @blp.arguments(SearchQuerySchema, location="query")
    @blp.response(200, SearchPageSchema)
    def get(self, query: dict[str, Any]) -> dict[str, Any]:
        """List the agency's searches, newest first, with their review state."""
        with transaction() as session:
            items, total = list_searches(
                session, principal=current_principal(), limit=query["limit"], offset=query["offset"]
            )
        return {"items": items, "total": total, "limit": query["limit"], "offset": query["offset"]}


@blp.route("/<uuid:search_id>")
class SearchById(MethodView):
    @require(Permission.SEARCH_READ)
    @blp.response(200, SearchViewSchema)
    def get(self, search_id: UUID) -> SearchView:
        """Read one search of the agency: candidates, reviews and review state."""
        with transaction() as session:
            return get_search(session, principal=current_principal(), search_id=search_id)


@blp.route("/<uuid:search_id>/reviews")
class SearchReviews(MethodView):
    @require(Permission.SEARCH_REVIEW)
    @blp.arguments(ReviewRequestSchema)
    @blp.response(201, SearchViewSchema)
    def post(self, body: dict[str, Any], search_id: UUID) -> SearchView:
        """Record verdicts on candidates (by a colleague of the searcher, not the searcher).

        A candidate becomes a confirmed lead when two distinct reviewers say possible_match.
        """
        with transaction() as session:
            return record_reviews(
                session,
                principal=current_principal(),
                keys=runtime().keys,
                search_id=search_id,
                reviews=[ReviewInput(**item) for item in body["reviews"]],
                now=runtime().now(),
            )


def _media(search_id: UUID, face_id: UUID, kind: str) -> Response:
    with transaction() as session:
        data, media_type = candidate_media(
            session,
            principal=current_principal(),
            blobs=engines().blobs,
            keys=runtime().keys,
            search_id=search_id,
            face_id=face_id,
            kind="thumbnail" if kind == "thumbnail" else "photo",
            now=runtime().now(),
        )
    return Response(data, mimetype=media_type, headers={"Cache-Control": "private, no-store"})


@blp.route("/<uuid:search_id>/candidates/<uuid:face_id>/thumbnail")
class CandidateThumbnail(MethodView):
    @require(Permission.CANDIDATE_VIEW)
    @blp.response(200, description="JPEG thumbnail of the candidate face.")
    def get(self, search_id: UUID, face_id: UUID) -> Response:
        """View a candidate's face thumbnail (counted and recorded in the ledger)."""
        return _media(search_id, face_id, "thumbnail")


@blp.route("/<uuid:search_id>/candidates/<uuid:face_id>/photo")
class CandidatePhoto(MethodView):
    @require(Permission.CANDIDATE_VIEW)
    @blp.response(200, description="The gallery photo the candidate face comes from.")
    def get(self, search_id: UUID, face_id: UUID) -> Response:
        """View a candidate's source photo (counted and recorded in the ledger)."""
        return _media(search_id, face_id, "photo")
