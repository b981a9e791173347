"""The gallery: curators enrol photos with their provenance and read photos and faces."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from flask import Response, url_for
from flask.views import MethodView

from api.auth import current_principal
from api.blueprint import LOCATION, Blueprint
from api.context import engines, units, work
from api.schemas.gallery import (
    EnrollFormSchema,
    FaceSchema,
    PhotoPageSchema,
    PhotoQuerySchema,
    PhotoSchema,
)
from governance.gallery import photos as service
from governance.gallery.photos import FaceInfo, PhotoInfo, Provenance
from governance.identity.permissions import Permission
from governance.identity.principals import actor_of

__all__ = ["blp", "private_image"]

blp = Blueprint.resource(__name__, "Gallery photos with provenance, and the faces found in them.")


def private_image(data: bytes, media_type: str) -> Response:
    """Image bytes no cache may keep: they show a person's face."""
    return Response(data, mimetype=media_type, headers={"Cache-Control": "private, no-store"})


@blp.route("/photos")
class Photos(MethodView):
    @blp.operation(
        Permission.GALLERY_ENROLL,
        201,
        PhotoSchema,
        headers=LOCATION,
        form=EnrollFormSchema,
        costly=True,
    )
    def post(self, form: dict[str, Any]) -> tuple[PhotoInfo, int, dict[str, str]]:
        """Enrol a photo: detect its faces, store them with their embeddings and provenance.

        Refused with 403 (source-blocked) when the source site has opted out, 409 when the same
        photo is already enrolled, 415/413/422 for unusable images or no face.
        """
        photo = service.enroll(
            units(),
            engines(),
            image=form["image"].read(),
            provenance=Provenance(
                source_url=form["source_url"],
                collected_at=form["collected_at"],
                collection_basis=form["collection_basis"],
                subject_ref=form.get("subject_ref"),
            ),
            actor=actor_of(current_principal()),
        )
        location = url_for("gallery.PhotoById", photo_id=photo.id)
        return photo, 201, {"Location": location}

    @blp.operation(Permission.GALLERY_READ, 200, PhotoPageSchema, query=PhotoQuerySchema)
    def get(self, query: dict[str, Any]) -> dict[str, Any]:
        """List gallery photos, newest first, optionally from one site."""
        with work() as w:
            items, total = service.list_photos(
                w, site=query.get("site"), limit=query["limit"], offset=query["offset"]
            )
        return {"items": items, "total": total, "limit": query["limit"], "offset": query["offset"]}


@blp.route("/photos/<uuid:photo_id>")
class PhotoById(MethodView):
    @blp.operation(Permission.GALLERY_READ, 200, PhotoSchema)
    def get(self, photo_id: UUID) -> PhotoInfo:
        """Read one photo with its provenance and faces."""
        with work() as w:
            return service.read_photo(w, photo_id)


@blp.route("/photos/<uuid:photo_id>/image")
class PhotoImage(MethodView):
    @blp.operation(Permission.GALLERY_READ, 200, description="The stored photo bytes.")
    def get(self, photo_id: UUID) -> Response:
        """Download the stored photo."""
        with work() as w:
            data, media_type = service.photo_bytes(w, engines().blobs, photo_id)
        return private_image(data, media_type)


@blp.route("/faces/<uuid:face_id>")
class FaceById(MethodView):
    @blp.operation(Permission.GALLERY_READ, 200, FaceSchema)
    def get(self, face_id: UUID) -> FaceInfo:
        """Read one gallery face: box, quality and the photo it belongs to."""
        with work() as w:
            return service.read_face(w, face_id)


@blp.route("/faces/<uuid:face_id>/thumbnail")
class FaceThumbnail(MethodView):
    @blp.operation(Permission.GALLERY_READ, 200, description="A JPEG thumbnail of the face.")
    def get(self, face_id: UUID) -> Response:
        """Download a face's thumbnail (JPEG)."""
        with work() as w:
            data = service.thumbnail_bytes(w, engines().blobs, face_id)
        return private_image(data, "image/jpeg")
