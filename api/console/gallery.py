"""Curators' pages: enrol one photo with its provenance (POST /v1/gallery/photos's form and
governance function) and browse the gallery with thumbnails and provenance."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from uuid import UUID

import marshmallow as ma
from flask import Blueprint, redirect, render_template, request, url_for
from werkzeug.datastructures import FileStorage
from werkzeug.wrappers import Response as BaseResponse

from api.console.nav import NavItem
from api.console.security import console_principal, signed_in
from api.context import engines, units, work
from api.errors import answer_for
from api.ratelimit import check_costly_request
from api.resources.gallery import private_image
from api.schemas.gallery import EnrollFormSchema
from biometrics.errors import DomainError
from governance.core.errors import InvalidInput
from governance.gallery import photos as service
from governance.gallery.models import COLLECTION_BASES
from governance.gallery.photos import Provenance
from governance.identity.permissions import Permission
from governance.identity.principals import Principal, actor_of

__all__ = ["NAVIGATION", "bp"]

bp = Blueprint("gallery", __name__)
NAVIGATION = (
    NavItem("console.gallery.photos", "Gallery", Permission.GALLERY_READ, order=50),
    NavItem("console.gallery.new_photo", "Enrol a photo", Permission.GALLERY_ENROLL, order=51),
)

_FIELDS = ("source_url", "collected_at", "collection_basis", "subject_ref")
_LABELS = {
    "public_record": "Public record",
    "consent": "Consent of the person shown",
    "court_order": "Court order",
    "licence": "Licence from the rights holder",
}
_BASES = {basis: _LABELS.get(basis, basis) for basis in COLLECTION_BASES}
_PAGE = 20


def _me() -> Principal:
    principal = console_principal()
    assert principal is not None  # @signed_in
    return principal


def _form_page(values: Mapping[str, str], errors: Mapping[str, str]) -> str:
    return render_template("gallery/new.html", values=values, errors=errors, bases=_BASES)


def _errors(messages: Mapping[str, Any]) -> dict[str, str]:
    known = {*_FIELDS, "image"}
    errors: dict[str, str] = {}
    for name, said in messages.items():
        text = " ".join(map(str, said)) if isinstance(said, list | tuple) else str(said)
        key = name if name in known else "form"
        errors[key] = f"{errors[key]} {text}" if key in errors else text
    return errors


@bp.get("/gallery/photos/new")
@signed_in(Permission.GALLERY_ENROLL)
def new_photo() -> str:
    """The form to enrol one photo with its provenance."""
    return _form_page({}, {})


@bp.post("/gallery/photos")
@signed_in(Permission.GALLERY_ENROLL)
def enrol_photo() -> Any:
    """Enrol the photo as POST /v1/gallery/photos does; on a mistake, the form again."""
    principal = _me()
    check_costly_request(principal)
    values = {name: request.form.get(name, "").strip()[:2048] for name in _FIELDS}
    form: dict[str, Any] = {k: v for k, v in values.items() if v}
    if form.get("collected_at") and len(form["collected_at"]) in (16, 19):
        form["collected_at"] += "Z"  # a datetime-local value; the form says it is UTC
    upload = request.files.get("image")
    if isinstance(upload, FileStorage) and upload.filename:
        form["image"] = upload
    try:
        parsed = EnrollFormSchema().load(form)
    except ma.ValidationError as exc:
        messages = exc.messages if isinstance(exc.messages, Mapping) else {"form": exc.messages}
        return _form_page(values, _errors(messages)), 422
    try:
        photo = service.enroll(
            units(),
            engines(),
            image=parsed["image"].read(),
            provenance=Provenance(
                source_url=parsed["source_url"],
                collected_at=parsed["collected_at"],
                collection_basis=parsed["collection_basis"],
                subject_ref=parsed.get("subject_ref"),
            ),
            actor=actor_of(principal),
        )
    except DomainError as exc:
        errors = {"form": exc.detail}
        if isinstance(exc, InvalidInput) and exc.fields:
            errors |= _errors(exc.fields)
        return _form_page(values, errors), answer_for(exc).status
    return redirect(url_for("console.gallery.photo", photo_id=photo.id, done="enrolled"), 303)


@bp.get("/gallery/photos")
@signed_in(Permission.GALLERY_READ)
def photos() -> str:
    """The gallery's photos, newest first, with their thumbnails and provenance."""
    offset = max(request.args.get("offset", 0, type=int) or 0, 0)
    with work() as w:
        items, total = service.list_photos(w, site=None, limit=_PAGE, offset=offset)
    return render_template(
        "gallery/list.html", items=items, total=total, offset=offset, limit=_PAGE, bases=_BASES
    )


@bp.get("/gallery/photos/<uuid:photo_id>")
@signed_in(Permission.GALLERY_READ)
def photo(photo_id: UUID) -> str:
    """One photo: its provenance and the faces found in it."""
    with work() as w:
        info = service.read_photo(w, photo_id)
    return render_template(
        "gallery/show.html", photo=info, bases=_BASES, done=request.args.get("done")
    )


@bp.get("/gallery/faces/<uuid:face_id>/thumbnail")
@signed_in(Permission.GALLERY_READ)
def face_thumbnail(face_id: UUID) -> BaseResponse:
    """A face's thumbnail (JPEG), as GET /v1/gallery/faces/{id}/thumbnail serves it."""
    with work() as w:
        data = service.thumbnail_bytes(w, engines().blobs, face_id)
    return private_image(data, "image/jpeg")
