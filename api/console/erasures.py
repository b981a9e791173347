"""Administrators' erasure pages: erase by source URL or photo id, or find a data subject's
photos by a photo of them, on the record, for a second administrator to confirm.

The forms are /v1/erasures's (``ErasureFormSchema``, ``ErasurePreviewFormSchema``,
``ErasureConfirmSchema``) and the flows its governance functions (``erase``,
``preview_erasure``, ``open_erasure_request``, ``preview_thumbnail``, ``confirm_erasure``), at
the API's threshold (``erasure_threshold``). The administrator who asked for a preview sees its
matches; the first other administrator who opens its page confirms it (four eyes).
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from typing import Any
from uuid import UUID

import marshmallow as ma
from flask import Blueprint, redirect, render_template, request, url_for
from werkzeug.datastructures import FileStorage
from werkzeug.wrappers import Response as BaseResponse

from api.console import probes
from api.console.nav import NavItem
from api.console.security import console_principal, signed_in
from api.context import engines, runtime, units, work
from api.errors import answer_for
from api.ratelimit import check_costly_request
from api.resources.erasures import erasure_threshold
from api.resources.gallery import private_image
from api.schemas.gallery import ErasureConfirmSchema, ErasureFormSchema, ErasurePreviewFormSchema
from biometrics.errors import DomainError
from governance.core.errors import InvalidInput, NotFound, PermissionDenied
from governance.gallery import erasure as service
from governance.gallery import erasure_requests as requests
from governance.gallery.probes import MultipleFaces
from governance.identity.permissions import Permission
from governance.identity.principals import Principal, actor_of

__all__ = ["NAVIGATION", "bp"]

bp = Blueprint("erasures", __name__)
NAVIGATION = (NavItem("console.erasures.new", "Erasures", Permission.ERASURE, order=46),)

_PREVIEW_FIELDS = ("request_reference", "reason", "face_index")
_ERASE_FIELDS = ("kind", "source_url", "photo_id", "reason")
_KINDS = {"source_url": "source URL", "photo": "photo id"}
DONE = {
    "erased": "The erasure is done: the photos are gone from the gallery, its index and its "
    "photo storage. The audit ledger keeps only hashes and counts.",
    "confirmed": "The erasure is confirmed and done: the chosen photos are gone from the "
    "gallery, its index and its photo storage. The audit ledger keeps only hashes and counts.",
}


def _me() -> Principal:
    principal = console_principal()
    assert principal is not None  # @signed_in
    return principal


def _said(messages: Any) -> str:
    if isinstance(messages, Mapping):
        return " ".join(_said(v) for v in messages.values())
    if isinstance(messages, list | tuple):
        return " ".join(_said(v) for v in messages)
    return str(messages)


def _errors(messages: Any, known: tuple[str, ...]) -> dict[str, str]:
    """``{field: [message]}`` by form field (others under ``form``)."""
    if not isinstance(messages, Mapping):
        messages = {"form": messages}
    errors: dict[str, str] = {}
    for name, said in messages.items():
        key = name if name in known else "form"
        text = _said(said)
        errors[key] = f"{errors[key]} {text}" if key in errors else text
    return errors


# --- the forms -------------------------------------------------------------------------------


def _new_page(
    failed: str | None = None,
    values: Mapping[str, str] | None = None,
    errors: Mapping[str, str] | None = None,
    *,
    faces: list[dict[str, Any]] | None = None,
    probe: bytes | None = None,
) -> str:
    shown = probes.picture(probe) if probe is not None and faces else None
    kept = probes.carried(probe) if probe is not None and shown is not None else None
    return render_template(
        "erasures/new.html",
        failed=failed,
        values=values or {"kind": "source_url"},
        errors=errors or {},
        faces=faces or [],
        picture=shown,
        carried=kept,
        kinds=_KINDS,
    )


@bp.get("/erasures")
@signed_in(Permission.ERASURE)
def new() -> str:
    """The forms of an erasure: by a photo of the person (previewed, then confirmed by a
    second administrator), or by source URL or photo id."""
    return _new_page()


@bp.post("/erasures/preview")
@signed_in(Permission.ERASURE)
def preview() -> Any:
    """Compare the data subject's photo with the gallery, as POST /v1/erasures/preview does."""
    principal = _me()
    check_costly_request(principal)
    values = {name: request.form.get(name, "").strip()[:4000] for name in _PREVIEW_FIELDS}
    probe = probes.uploaded_or_carried()
    form: dict[str, Any] = {k: v for k, v in values.items() if v}
    if probe is not None:
        form["image"] = FileStorage(io.BytesIO(probe), filename="probe")
    known = (*_PREVIEW_FIELDS, "image")
    try:
        parsed = ErasurePreviewFormSchema().load(form)
    except ma.ValidationError as exc:
        errors = _errors(exc.messages, known)
        if "image" in errors and probe is None:
            errors["image"] = "Attach a photo of the person who asked for the erasure."
        return _new_page("preview", values, errors), 422
    try:
        view = requests.preview_erasure(
            units(),
            engines(),
            principal=principal,
            image=parsed["image"].read(),
            face_index=parsed.get("face_index"),
            threshold=erasure_threshold(),
            request_reference=parsed["request_reference"],
            reason=parsed["reason"],
        )
    except MultipleFaces as exc:
        listed: Any = exc.extra.get("faces", [])
        message = {
            "face_index": "This photo shows several faces: choose the face of the person who "
            "asked for the erasure. Only that face is compared with the gallery."
        }
        faces = [dict(face) for face in listed]
        return _new_page("preview", values, message, faces=faces, probe=probe), 422
    except DomainError as exc:
        errors = {"form": exc.detail}
        if isinstance(exc, InvalidInput) and exc.fields:
            errors |= _errors(exc.fields, known)
        return _new_page("preview", values, errors), answer_for(exc).status
    return redirect(url_for(".request_page", request_id=view.id), 303)


@bp.post("/erasures")
@signed_in(Permission.ERASURE)
def erase() -> Any:
    """Erase the photos of a source URL, or one photo by its id, as POST /v1/erasures does."""
    principal = _me()
    check_costly_request(principal)
    values = {name: request.form.get(name, "").strip()[:4000] for name in _ERASE_FIELDS}
    kind = values["kind"]
    target = {"source_url": "source_url", "photo": "photo_id"}.get(kind)
    if target is None:
        errors = {"kind": "Choose whether to erase by source URL or by photo id."}
        return _new_page("erase", values, errors), 422
    form = {k: values[k] for k in ("kind", "reason", target) if values[k]}
    try:
        parsed = ErasureFormSchema().load(form)
    except ma.ValidationError as exc:
        return _new_page("erase", values, _errors(exc.messages, _ERASE_FIELDS)), 422
    if not parsed.get(target):
        errors = {target: f"Give the {_KINDS[kind]} of what to erase."}
        return _new_page("erase", values, errors), 422
    try:
        with work() as w:
            result = service.erase(
                w,
                engines(),
                kind=kind,
                reason=parsed["reason"],
                actor=actor_of(principal),
                photo_id=parsed.get("photo_id"),
                source_url=parsed.get("source_url"),
            )
    except NotFound:
        errors = {target: f"No photo in the gallery has this {_KINDS[kind]}: nothing was erased."}
        return _new_page("erase", values, errors), 404
    except DomainError as exc:
        errors = {"form": exc.detail}
        if isinstance(exc, InvalidInput) and exc.fields:
            errors |= _errors(exc.fields, _ERASE_FIELDS)
        return _new_page("erase", values, errors), answer_for(exc).status
    return redirect(url_for(".erasure", erasure_id=result.id, done="erased"), 303)


@bp.get("/erasures/<uuid:erasure_id>")
@signed_in(Permission.ERASURE)
def erasure(erasure_id: UUID) -> str:
    """One erasure's counts, as GET /v1/erasures/{id} gives them."""
    with work() as w:
        result = service.get_erasure(w, erasure_id)
    return render_template(
        "erasures/result.html",
        result=result,
        kinds={"source_url": "By source URL", "photo": "By photo id", "probe": "By a photo"},
        done=DONE.get(request.args.get("done", "")),
    )


# --- a request: its matches, and the second administrator's decision -------------------------


def _request_page(
    request_id: UUID, *, refusal: str | None = None, values: Mapping[str, Any] | None = None
) -> str:
    with work() as w:
        view = requests.open_erasure_request(w, principal=_me(), request_id=request_id)
    address = runtime().settings.public_url.rstrip("/") + url_for(
        ".request_page", request_id=view.id
    )
    return render_template(
        "erasures/request.html",
        view=view,
        mine=view.requested_by == _me().account_id,
        address=address,
        refusal=refusal,
        values=values or {},
    )


@bp.get("/erasures/requests/<uuid:request_id>")
@signed_in(Permission.ERASURE)
def request_page(request_id: UUID) -> str:
    """An erasure request: for its requester, or for the one other administrator (the first to
    open it) who confirms it, with the matches' thumbnails."""
    return _request_page(request_id)


@bp.get("/erasures/requests/<uuid:request_id>/faces/<uuid:face_id>/thumbnail")
@signed_in(Permission.ERASURE)
def thumbnail(request_id: UUID, face_id: UUID) -> BaseResponse:
    """A matched face's thumbnail (JPEG) for the two deciding administrators; each view is
    recorded in the ledger."""
    with work() as w:
        data = requests.preview_thumbnail(
            w, engines(), principal=_me(), request_id=request_id, face_id=face_id
        )
    return private_image(data, "image/jpeg")


@bp.post("/erasures/requests/<uuid:request_id>/confirm")
@signed_in(Permission.ERASURE)
def confirm(request_id: UUID) -> Any:
    """Erase the photos of the ticked matches: the second administrator's decision."""
    chosen = request.form.getlist("face_ids")[:200]
    typed = request.form.get("reason", "").strip()[:4000]
    values = {"face_ids": set(chosen), "reason": typed}
    try:
        body = ErasureConfirmSchema().load({"face_ids": chosen, "reason": typed})
    except ma.ValidationError as exc:
        messages = exc.messages if isinstance(exc.messages, Mapping) else {}
        said = []
        if "face_ids" in messages:
            said.append("Tick the faces of the person who asked for the erasure.")
        if "reason" in messages:
            said.append(f"Give a reason for the erasure: {_said(messages['reason'])}")
        refusal = " ".join(said) or _said(exc.messages)
        return _request_page(request_id, refusal=refusal, values=values), 422
    try:
        with work() as w:
            result = requests.confirm_erasure(
                w,
                engines(),
                principal=_me(),
                request_id=request_id,
                face_ids=body["face_ids"],
                reason=body["reason"],
            )
    except PermissionDenied as exc:  # the requester: four eyes
        return _request_page(request_id, refusal=exc.detail, values=values), answer_for(exc).status
    except InvalidInput as exc:
        refusal = "Tick only faces shown on this page: no other face was matched by this request."
        return _request_page(request_id, refusal=refusal, values=values), answer_for(exc).status
    return redirect(url_for(".erasure", erasure_id=result.id, done="confirmed"), 303)
