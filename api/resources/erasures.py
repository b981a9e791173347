"""Data-subject erasure: by photo or source URL, or by a probe photo previewed on the record and
confirmed by a second administrator."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from flask import Response, url_for
from flask.views import MethodView

from api.auth import current_principal, require
from api.blueprint import LOCATION, Blueprint
from api.context import engines, pack, units, work
from api.resources.gallery import private_image
from api.schemas.gallery import (
    ErasureConfirmSchema,
    ErasureFormSchema,
    ErasurePreviewFormSchema,
    ErasureRequestSchema,
    ErasureSchema,
)
from governance.gallery import erasure as service
from governance.gallery import erasure_requests as requests
from governance.gallery.erasure import ErasureResult
from governance.gallery.erasure_requests import ErasureRequestView
from governance.identity.permissions import Permission
from governance.identity.principals import actor_of

__all__ = ["blp", "erasure_threshold"]

blp = Blueprint.resource(
    __name__, "Remove a person's photos from the gallery, leaving only hashes in the ledger."
)


def erasure_threshold() -> float:
    """The score at or above which a probe's match is shown for erasure (the console's too)."""
    chosen = pack()
    return chosen.match_threshold if chosen.erasure_threshold is None else chosen.erasure_threshold


def _shown(view: ErasureRequestView) -> dict[str, Any]:
    matches = [
        {
            "rank": m.rank,
            "face_id": m.face_id,
            "score": m.score,
            "thumbnail": url_for(
                "erasures.ErasureRequestThumbnail", request_id=view.id, face_id=m.face_id
            ),
        }
        for m in view.matches
    ]
    return {
        **{k: getattr(view, k) for k in ErasureRequestSchema().fields if k != "matches"},
        "matches": matches,
    }


@blp.route("/preview")
class ErasurePreview(MethodView):
    @blp.operation(
        Permission.ERASURE,
        201,
        ErasureRequestSchema,
        headers=LOCATION,
        form=ErasurePreviewFormSchema,
        costly=True,
    )
    def post(self, form: dict[str, Any]) -> tuple[dict[str, Any], int, dict[str, str]]:
        """Compare a probe photo with the gallery for a data-subject erasure request.

        A face search: recorded in the ledger (`erasure:preview`) with the probe's SHA-256, the
        data-subject request reference, the reason's SHA-256 and the matches' hashed face ids.
        Answers an erasure request with face ids, scores and thumbnail links only, never
        provenance. Another administrator confirms it. Only the data subject's face is compared:
        a probe with several faces answers 422 (multiple-faces) listing them; resend with
        `face_index`.
        """
        view = requests.preview_erasure(
            units(),
            engines(),
            principal=current_principal(),
            image=form["image"].read(),
            face_index=form.get("face_index"),
            threshold=erasure_threshold(),
            request_reference=form["request_reference"],
            reason=form["reason"],
        )
        location = url_for("erasures.ErasureRequestById", request_id=view.id)
        return _shown(view), 201, {"Location": location}


@blp.route("/requests/<uuid:request_id>")
class ErasureRequestById(MethodView):
    @blp.operation(Permission.ERASURE, 200, ErasureRequestSchema)
    def get(self, request_id: UUID) -> dict[str, Any]:
        """Read an erasure request: for its requester, or the one other admin who confirms it.

        The first administrator other than the requester to open the request becomes its
        confirmer; it is then hidden (404) from every other administrator.
        """
        with work() as w:
            view = requests.open_erasure_request(
                w, principal=current_principal(), request_id=request_id
            )
        return _shown(view)


@blp.route("/requests/<uuid:request_id>/faces/<uuid:face_id>/thumbnail")
class ErasureRequestThumbnail(MethodView):
    @blp.operation(Permission.ERASURE, 200, description="A JPEG thumbnail of the matched face.")
    def get(self, request_id: UUID, face_id: UUID) -> Response:
        """View a matched face's thumbnail (requester or confirmer; every view is recorded)."""
        with work() as w:
            data = requests.preview_thumbnail(
                w, engines(), principal=current_principal(), request_id=request_id, face_id=face_id
            )
        return private_image(data, "image/jpeg")


@blp.route("/requests/<uuid:request_id>/confirm")
class ErasureRequestConfirm(MethodView):
    @blp.operation(Permission.ERASURE, 201, ErasureSchema, body=ErasureConfirmSchema)
    def post(self, body: dict[str, Any], request_id: UUID) -> ErasureResult:
        """Confirm a probe erasure: erase the photos of the chosen matches (four eyes).

        Only an administrator other than the requester may confirm; nothing is compared again.
        """
        with work() as w:
            return requests.confirm_erasure(
                w,
                engines(),
                principal=current_principal(),
                request_id=request_id,
                face_ids=body["face_ids"],
                reason=body["reason"],
            )


@blp.route("")
class Erasures(MethodView):
    @require(Permission.ERASURE, costly=True)
    @blp.arguments(ErasureFormSchema, location="form")
    @blp.response(201, ErasureSchema)
    def post(self, form: dict[str, Any]) -> ErasureResult:
        """Erase by photo id (kind=photo) or by source URL (kind=source_url).

        Send multipart form fields. To erase by a probe photo, use the preview and a second
        administrator's confirmation instead.
        """
        with work() as w:
            return service.erase(
                w,
                engines(),
                kind=form["kind"],
                reason=form["reason"],
                actor=actor_of(current_principal()),
                photo_id=form.get("photo_id"),
                source_url=form.get("source_url"),
            )


@blp.route("/<uuid:erasure_id>")
class ErasureById(MethodView):
    @blp.operation(Permission.ERASURE, 200, ErasureSchema)
    def get(self, erasure_id: UUID) -> ErasureResult:
        """Read one erasure's counts."""
        with work() as w:
            return service.get_erasure(w, erasure_id)
