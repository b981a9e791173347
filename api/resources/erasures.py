"""Data-subject erasure: by photo, by source URL, or by a probe photo shown first for review."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from flask.views import MethodView
from flask_smorest import Blueprint

from api.auth import current_principal, require
from api.context import gallery, pack, runtime, transaction
from api.schemas.gallery import (
    ErasureFormSchema,
    ErasureSchema,
    ImageFileSchema,
    ProbeFileSchema,
    ProbePreviewSchema,
)
from governance import erasure as service
from governance.erasure import ErasureResult
from governance.errors import InvalidInput
from governance.permissions import Permission
from governance.principals import actor_of

blp = Blueprint(
    "erasures",
    __name__,
    url_prefix="/v1/erasures",
    description="Remove a person's photos from the gallery, leaving only hashes in the ledger.",
)


def _erasure_threshold() -> float:
    chosen = pack()
    return chosen.match_threshold if chosen.erasure_threshold is None else chosen.erasure_threshold


@blp.route("/preview")
class ErasurePreview(MethodView):
    @require(Permission.ERASURE, costly=True)
    @blp.arguments(ImageFileSchema, location="files")
    @blp.response(200, ProbePreviewSchema)
    def post(self, files: dict[str, Any]) -> dict[str, Any]:
        """Show every gallery face matching a probe photo, before erasing any."""
        threshold = _erasure_threshold()
        with transaction() as session:
            matches = service.preview_probe_erasure(
                session, gallery=gallery(), probe=files["image"].read(), threshold=threshold
            )
        return {"threshold": threshold, "matches": matches}


@blp.route("")
class Erasures(MethodView):
    @require(Permission.ERASURE, costly=True)
    @blp.arguments(ProbeFileSchema, location="files")
    @blp.arguments(ErasureFormSchema, location="form")
    @blp.response(201, ErasureSchema)
    def post(self, files: dict[str, Any], form: dict[str, Any]) -> ErasureResult:
        """Erase by photo id, by source URL, or (kind=probe) the faces confirmed from a preview.

        Send multipart form fields; for kind=probe also the ``probe`` image file.
        """
        probe_file = files.get("probe")
        if form["kind"] == "probe" and probe_file is None:
            raise InvalidInput(
                "the probe image is missing", fields={"probe": ["Attach the probe."]}
            )
        with transaction() as session:
            return service.erase(
                session,
                gallery=gallery(),
                kind=form["kind"],
                reason=form["reason"],
                actor=actor_of(current_principal()),
                now=runtime().now(),
                photo_id=form.get("photo_id"),
                source_url=form.get("source_url"),
                probe=probe_file.read() if probe_file else None,
                face_ids=form.get("face_ids", []),
                threshold=_erasure_threshold(),
            )


@blp.route("/<uuid:erasure_id>")
class ErasureById(MethodView):
    @require(Permission.ERASURE)
    @blp.response(200, ErasureSchema)
    def get(self, erasure_id: UUID) -> ErasureResult:
        """Read one erasure's counts."""
        with transaction() as session:
            return service.get_erasure(session, erasure_id)
