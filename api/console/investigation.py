"""Investigators' pages: record a legal basis, search under an approved one, read the results.

The forms are the API's (``LegalBasisCreateSchema``, ``SearchFormSchema``) and the flows its
governance functions (``create_basis``, ``search``, ``get_search``, ``search_receipt``,
``candidate_media``), so every search from the console is recorded and needs an approved basis.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator, Mapping
from typing import Any
from uuid import UUID

import marshmallow as ma
from flask import Blueprint, Response, redirect, render_template, request, url_for
from werkzeug.datastructures import FileStorage
from werkzeug.wrappers import Response as BaseResponse

from api.console import probes
from api.console.nav import NavItem
from api.console.security import console_principal, signed_in
from api.context import engines, runtime, units, work
from api.errors import answer_for
from api.ratelimit import check_costly_request
from api.resources.legal_bases import policy
from api.schemas.legal_bases import LegalBasisCreateSchema
from api.schemas.searches import MAX_TOP_K, ReceiptSchema, SearchFormSchema
from biometrics.errors import DomainError
from governance.core.errors import InvalidInput
from governance.gallery.probes import MultipleFaces
from governance.identity.permissions import Permission, scope_for
from governance.identity.principals import Principal
from governance.legal_basis.services import create_basis, get_basis, list_bases
from governance.legal_basis.values import AuthorisationKind, BasisStatus
from governance.oversight.reports import ledger_keys
from governance.search.records import candidate_media, get_search, list_searches, search_receipt
from governance.search.running import search

__all__ = ["BASIS_FIELDS", "NAVIGATION", "bp"]

bp = Blueprint("investigation", __name__)
NAVIGATION = (
    NavItem("console.investigation.bases", "Legal bases", Permission.LEGAL_BASIS_READ, order=20),
    NavItem("console.investigation.new_search", "New search", Permission.SEARCH_RUN, order=30),
    NavItem("console.investigation.searches", "Search history", Permission.SEARCH_READ, order=31),
)

# Form field -> (where the API's schema has it, its label, its input type).
BASIS_FIELDS: Mapping[str, tuple[tuple[str, ...], str, str]] = {
    "case_number": (("case_number",), "Case number", "text"),
    "offence_category": (("offence_category",), "Offence category", "select"),
    "legal_provision": (("legal_provision",), "Legal provision relied on", "text"),
    "authorisation_kind": (("authorisation", "kind"), "Kind of authorisation", "select"),
    "authorisation_reference": (
        ("authorisation", "reference"),
        "Warrant or decision number (leave empty if urgent)",
        "text",
    ),
    "authorisation_authority": (
        ("authorisation", "authority"),
        "Issued by (court or authority; leave empty if urgent)",
        "text",
    ),
    "authorisation_issued_at": (
        ("authorisation", "issued_at"),
        "Issued at (UTC)",
        "datetime-local",
    ),
    "authorisation_expires_at": (
        ("authorisation", "expires_at"),
        "Expires at (UTC)",
        "datetime-local",
    ),
    "justification": (("justification",), "Why a face search is necessary here", "textarea"),
    "max_searches": (("max_searches",), "Searches allowed under this basis", "number"),
}
_KINDS = {
    AuthorisationKind.JUDICIAL.value: "Judicial (a court or judge)",
    AuthorisationKind.ADMINISTRATIVE.value: "Administrative authority",
    AuthorisationKind.URGENT.value: "Urgent (to be ratified afterwards)",
}
_REVIEW_STATES = {
    "unreviewed": "not yet reviewed",
    "in_review": "review under way",
    "reviewed": "reviewed, no confirmed lead",
    "confirmed_lead": "confirmed lead (two reviewers agree)",
    "results_deleted": "results deleted",
}
_SEARCH_FIELDS = ("legal_basis_id", "purpose", "top_k")
_PAGE = 20


def _me() -> Principal:
    principal = console_principal()
    assert principal is not None  # @signed_in
    return principal


def _flatten(messages: Any, prefix: str = "") -> Iterator[tuple[str, str]]:
    """marshmallow's nested ``{field: [msg]}`` as (dotted.field, message) pairs."""
    if isinstance(messages, Mapping):
        for key, value in messages.items():
            yield from _flatten(value, f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(messages, list | tuple):
        for item in messages:
            yield from _flatten(item, prefix)
    else:
        yield prefix or "form", str(messages)


def _field_errors(messages: Any, names: Mapping[str, str]) -> dict[str, str]:
    """Messages by form field (``names``: dotted API field -> form field; others: ``form``)."""
    errors: dict[str, str] = {}
    for dotted, message in _flatten(messages):
        name = names.get(dotted, "form")
        errors[name] = f"{errors[name]} {message}" if name in errors else message
    return errors


# --- legal bases -----------------------------------------------------------------------------


def _utc(value: str) -> str:
    """A ``datetime-local`` value (labelled UTC on the form) as RFC 3339; others unchanged."""
    if len(value) in (16, 19) and "T" in value and value[-1] != "Z" and "+" not in value:
        return value + "Z"
    return value


def _basis_body(values: Mapping[str, str]) -> dict[str, Any]:
    body: dict[str, Any] = {"authorisation": {}}
    for name, (path, _label, kind) in BASIS_FIELDS.items():
        value = values.get(name, "")
        if not value:
            continue
        if kind == "datetime-local":
            value = _utc(value)
        target = body["authorisation"] if path[0] == "authorisation" else body
        target[path[-1]] = value
    return body


def _basis_form(values: Mapping[str, str], errors: Mapping[str, str]) -> str:
    return render_template(
        "legal_bases/new.html",
        fields=BASIS_FIELDS,
        offences={c.slug: c.label for c in policy().offences},
        kinds=_KINDS,
        max_searches=policy().max_searches,
        values=values,
        errors=errors,
    )


@bp.get("/legal-bases/new")
@signed_in(Permission.LEGAL_BASIS_CREATE)
def new_basis() -> str:
    """The form to record a legal basis."""
    return _basis_form({"authorisation_kind": AuthorisationKind.JUDICIAL.value}, {})


@bp.post("/legal-bases")
@signed_in(Permission.LEGAL_BASIS_CREATE)
def create_basis_page() -> Any:
    """Record the basis (pending a second person's approval); on a mistake, the form again."""
    values = {name: request.form.get(name, "")[:8000] for name in BASIS_FIELDS}
    names = {".".join(path): name for name, (path, *_rest) in BASIS_FIELDS.items()}
    try:
        draft = LegalBasisCreateSchema().load(_basis_body(values))
    except ma.ValidationError as exc:
        return _basis_form(values, _field_errors(exc.messages, names)), 422
    try:
        with work() as w:
            basis = create_basis(w, principal=_me(), draft=draft, policy=policy())
    except InvalidInput as exc:  # the deployment's rules: offences, dates, quota
        errors = _field_errors(exc.fields, names) if exc.fields else {"form": exc.detail}
        return _basis_form(values, errors), 422
    return redirect(url_for("console.investigation.basis", basis_id=basis.id, done="recorded"), 303)


@bp.get("/legal-bases")
@signed_in(Permission.LEGAL_BASIS_READ)
def bases() -> str:
    """The agency's legal bases, newest first, with their state and searches used."""
    offset = max(request.args.get("offset", 0, type=int) or 0, 0)
    with work() as w:
        page = list_bases(w, principal=_me(), limit=_PAGE, offset=offset)
    return render_template(
        "legal_bases/list.html",
        page=page,
        account_id=_me().account_id,
        can_create=scope_for(_me().role, Permission.LEGAL_BASIS_CREATE) is not None,
        offences={c.slug: c.label for c in policy().offences},
    )


@bp.get("/legal-bases/<uuid:basis_id>")
@signed_in(Permission.LEGAL_BASIS_READ)
def basis(basis_id: UUID) -> str:
    """One legal basis: where it stands and what was recorded."""
    with work() as w:
        info = get_basis(w, principal=_me(), basis_id=basis_id)
    return render_template(
        "legal_bases/show.html",
        basis=info,
        done=request.args.get("done"),
        offences={c.slug: c.label for c in policy().offences},
        kinds=_KINDS,
    )


# --- searches --------------------------------------------------------------------------------


def _usable_bases() -> list[Any]:
    with work() as w:
        page = list_bases(w, principal=_me(), status=BasisStatus.APPROVED, limit=100, offset=0)
    return [b for b in page.items if b.usable]


def _search_form(
    values: Mapping[str, str],
    errors: Mapping[str, str],
    *,
    faces: list[dict[str, Any]] | None = None,
    probe: bytes | None = None,
) -> str:
    shown = probes.picture(probe) if probe is not None and faces else None
    kept = probes.carried(probe) if probe is not None and shown is not None else None
    return render_template(
        "searches/new.html",
        bases=_usable_bases(),
        values=values,
        errors=errors,
        max_top_k=MAX_TOP_K,
        faces=faces or [],
        picture=shown,
        carried=kept,
    )


@bp.get("/searches/new")
@signed_in(Permission.SEARCH_RUN)
def new_search() -> str:
    """The search form: a probe photo, an approved legal basis, the purpose."""
    return _search_form({"top_k": "10"}, {})


@bp.post("/searches")
@signed_in(Permission.SEARCH_RUN)
def run_search() -> Any:
    """Search as POST /v1/searches does (the same governance function, on the record)."""
    principal = _me()
    check_costly_request(principal)
    values = {name: request.form.get(name, "")[:2000] for name in (*_SEARCH_FIELDS, "face_index")}
    probe = probes.uploaded_or_carried()
    form: dict[str, Any] = {k: values[k] for k in _SEARCH_FIELDS if values[k]}
    if values["face_index"]:
        form["face_index"] = values["face_index"]
    if probe is not None:
        form["image"] = FileStorage(io.BytesIO(probe), filename="probe")
    names = {name: name for name in (*_SEARCH_FIELDS, "face_index", "image")}
    try:
        parsed = SearchFormSchema().load(form)
    except ma.ValidationError as exc:
        return _search_form(values, _field_errors(exc.messages, names)), 422
    try:
        outcome = search(
            units(),
            engines(),
            principal,
            image=probe or b"",
            legal_basis_id=parsed["legal_basis_id"],
            purpose=parsed["purpose"],
            top_k=parsed["top_k"],
            face_index=parsed.get("face_index"),
        )
    except MultipleFaces as exc:
        listed: Any = exc.extra.get("faces", [])
        faces = [dict(face) for face in listed]
        message = {"face_index": "This photo shows several faces: choose the one to search."}
        return _search_form(values, message, faces=faces, probe=probe), 422
    except DomainError as exc:
        errors = {"form": exc.detail}
        if isinstance(exc, InvalidInput) and exc.fields:
            errors = {"form": exc.detail, **_field_errors(exc.fields, names)}
        return _search_form(values, errors), answer_for(exc).status
    return redirect(url_for("console.investigation.search_page", search_id=outcome.id), 303)


@bp.get("/searches")
@signed_in(Permission.SEARCH_READ)
def searches() -> str:
    """The agency's searches, newest first: when, under which case, candidates, review."""
    offset = max(request.args.get("offset", 0, type=int) or 0, 0)
    with work() as w:
        items, total = list_searches(w, principal=_me(), limit=_PAGE, offset=offset)
        cases = {
            basis_id: get_basis(w, principal=_me(), basis_id=basis_id).case_number
            for basis_id in {s.legal_basis_id for s in items}
        }
    return render_template(
        "searches/list.html",
        items=items,
        total=total,
        offset=offset,
        limit=_PAGE,
        cases=cases,
        review_states=_REVIEW_STATES,
    )


@bp.get("/searches/<uuid:search_id>")
@signed_in(Permission.SEARCH_READ)
def search_page(search_id: UUID) -> str:
    """A search's candidates in rank order, under the banner that they are leads only."""
    settings = runtime().settings
    with work() as w:
        found = get_search(w, principal=_me(), search_id=search_id)
        case = get_basis(w, principal=_me(), basis_id=found.legal_basis_id).case_number
    receipt, keys = None, []
    if found.results_deleted_at is None:
        with work() as w:
            keys = [k.key for k in ledger_keys(w)]
            receipt = search_receipt(
                w,
                principal=_me(),
                search_id=search_id,
                witnesses=[e.name for e in settings.witness_endpoints],
                quorum=settings.witness_quorum,
            )
    return render_template(
        "searches/show.html",
        search=found,
        case=case,
        receipt=receipt,
        pinned=" ".join(f"--key '{key}'" for key in keys),
        review_states=_REVIEW_STATES,
        can_view=scope_for(_me().role, Permission.CANDIDATE_VIEW) is not None,
    )


@bp.get("/searches/<uuid:search_id>/receipt.json")
@signed_in(Permission.SEARCH_READ)
def receipt_json(search_id: UUID) -> Response:
    """The search's receipt, as GET /v1/searches/{id}/receipt answers it, to verify offline."""
    settings = runtime().settings
    with work() as w:
        receipt = search_receipt(
            w,
            principal=_me(),
            search_id=search_id,
            witnesses=[e.name for e in settings.witness_endpoints],
            quorum=settings.witness_quorum,
        )
    body = json.dumps(ReceiptSchema().dump(receipt), indent=2) + "\n"
    response = Response(body, mimetype="application/json")
    response.headers["Content-Disposition"] = f'attachment; filename="receipt-{search_id}.json"'
    return response


@bp.get("/searches/<uuid:search_id>/candidates/<uuid:face_id>/thumbnail")
@signed_in(Permission.CANDIDATE_VIEW)
def candidate_thumbnail(search_id: UUID, face_id: UUID) -> BaseResponse:
    """A candidate's thumbnail, as the API serves it: counted and recorded in the ledger."""
    with work() as w:
        data, media_type = candidate_media(
            w,
            principal=_me(),
            blobs=engines().blobs,
            search_id=search_id,
            face_id=face_id,
            kind="thumbnail",
        )
    return Response(data, mimetype=media_type, headers={"Cache-Control": "private, no-store"})
