"""Curators' batch upload: many photos and a manifest of their provenance, enrolled by
``governance.gallery.batches.enroll_batch`` (the function ``facewarden gallery ingest`` calls),
then a summary of what was enrolled, skipped and rejected, and why.

``static/upload.js`` shows the upload's progress; without it the form posts as usual.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Blueprint, render_template, request
from werkzeug.datastructures import FileStorage
from werkzeug.exceptions import RequestEntityTooLarge

from api.console.nav import NavItem
from api.console.security import console_principal, signed_in
from api.context import engines, units
from api.ingest import UPLOAD_COLUMNS, ManifestError, batch_of_upload
from api.ratelimit import check_costly_request
from governance.gallery.batches import enroll_batch
from governance.gallery.models import COLLECTION_BASES
from governance.identity.permissions import Permission
from governance.identity.principals import Principal, actor_of

__all__ = ["MAX_BATCH_FILES", "NAVIGATION", "bp"]

bp = Blueprint("batches", __name__)
NAVIGATION = (
    NavItem("console.batches.new_batch", "Upload a batch", Permission.GALLERY_ENROLL, order=52),
)

MAX_BATCH_FILES = 50
"""Photos in one upload: a summary a person can read, and a request that ends in minutes."""
# The request body's own limit is the app's MAX_CONTENT_LENGTH, set from this setting.
_BODY_SETTING = "FACEWARDEN_MAX_REQUEST_BYTES"


def _me() -> Principal:
    principal = console_principal()
    assert principal is not None  # @signed_in
    return principal


def _form_page(errors: Mapping[str, str]) -> str:
    return render_template(
        "batches/new.html",
        errors=errors,
        columns=UPLOAD_COLUMNS,
        bases=COLLECTION_BASES,
        max_files=MAX_BATCH_FILES,
        max_bytes=_size(request.max_content_length),
    )


def _size(limit: int | None) -> str:
    if not limit:
        return "no limit"
    for unit, scale in (("MB", 1024 * 1024), ("KB", 1024)):
        if limit >= scale:
            return f"{limit / scale:.3g} {unit}"
    return f"{limit} bytes"


@bp.get("/gallery/batches/new")
@signed_in(Permission.GALLERY_ENROLL)
def new_batch() -> str:
    """The form to upload photos with a manifest of their provenance."""
    return _form_page({})


@bp.post("/gallery/batches")
@signed_in(Permission.GALLERY_ENROLL)
def upload_batch() -> Any:
    """Enrol the uploaded photos as the manifest describes them; a summary, or the form again."""
    principal = _me()
    photos = [f for f in request.files.getlist("photos") if f.filename]
    manifest = request.files.get("manifest")
    errors: dict[str, str] = {}
    if not photos:
        errors["photos"] = f"Choose the photos to enrol (up to {MAX_BATCH_FILES})."
    elif len(photos) > MAX_BATCH_FILES:
        errors["photos"] = (
            f"A batch holds at most {MAX_BATCH_FILES} photos and {len(photos)} were chosen: "
            "upload them in several batches."
        )
    if not isinstance(manifest, FileStorage) or not manifest.filename:
        errors["manifest"] = "Choose the manifest: a CSV file with one line for each photo."
    # Each photo is an enrolment, charged as the API charges one, once the files are counted
    # and before any of their bytes is read; a form that cannot be taken costs one request.
    check_costly_request(principal, cost=1 if errors else len(photos))
    if errors:
        return _form_page(errors), 422
    assert isinstance(manifest, FileStorage)
    try:
        items = batch_of_upload(
            manifest.read(),
            [(f.filename or "", f.read()) for f in photos],
            max_rows=MAX_BATCH_FILES,
        )
    except ManifestError as exc:
        return _form_page({"manifest": f"The manifest cannot be used: {exc}."}), 422
    summary = enroll_batch(units(), engines(), items, actor=actor_of(principal))
    return render_template("batches/summary.html", summary=summary)


@bp.errorhandler(RequestEntityTooLarge)
def _too_large(error: RequestEntityTooLarge) -> tuple[str, int]:
    # Refused before the page's own checks ran (the body is read first): an error page, which
    # needs neither the person nor the form's token.
    detail = (
        f"The photos and the manifest together are over {_size(request.max_content_length)}, "
        f"the most this service accepts in one upload (its {_BODY_SETTING} setting). "
        "Nothing was enrolled: upload the photos in smaller batches."
    )
    page = render_template(
        "console/error.html", status=413, title="The batch is too large", detail=detail
    )
    return page, 413
