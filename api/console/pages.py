"""The console's home page and the agency registration form.

The form is the API's (``RegistrationSubmitSchema``): the same rules, the same governance
function, its errors shown beside the fields they concern.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import marshmallow as ma
from flask import Blueprint, redirect, render_template, request, url_for

from api.console.nav import NavItem
from api.console.security import anyone, console_principal
from api.context import work
from api.ratelimit import limiter, registration_limit
from api.schemas.registrations import RegistrationSubmitSchema
from governance.core.errors import Conflict
from governance.identity import registrations
from governance.identity.vocabulary import AgencyKind

__all__ = ["NAVIGATION", "REGISTRATION_FIELDS", "bp"]

bp = Blueprint("pages", __name__)
NAVIGATION = (NavItem("console.pages.home", "Home", order=0),)

# Form field -> (where the API's schema has it, its label, its input type, autocomplete).
REGISTRATION_FIELDS: Mapping[str, tuple[tuple[str, str], str, str, str]] = {
    "agency_name": (("agency", "name"), "Agency name", "text", "organization"),
    "agency_kind": (("agency", "kind"), "Kind of agency", "select", "off"),
    "country": (("agency", "country"), "Country (two-letter code, e.g. FR)", "text", "country"),
    "jurisdiction": (("agency", "jurisdiction"), "Jurisdiction", "text", "off"),
    "first_name": (("contact", "first_name"), "First name", "text", "given-name"),
    "last_name": (("contact", "last_name"), "Last name", "text", "family-name"),
    "phone": (("contact", "phone"), "Phone (international, e.g. +33 4 72 00 00 00)", "tel", "tel"),
    "email": (("contact", "email"), "E-mail", "email", "email"),
    "job_title": (("contact", "job_title"), "Job function", "text", "organization-title"),
}
_KINDS = {
    AgencyKind.POLICE: "Police",
    AgencyKind.PROSECUTION: "Prosecution service",
    AgencyKind.BORDER: "Border agency",
    AgencyKind.OTHER: "Other law-enforcement body",
}


@bp.get("/")
@anyone
def home() -> str:
    """Signed in: what the person may do. Signed out: sign in, or register an agency."""
    return render_template(
        "console/home.html", principal=console_principal(), done=request.args.get("done")
    )


@bp.get("/register")
@anyone
def registration_form() -> str:
    """The agency registration form."""
    return _form_page({}, {})


def _form_page(values: Mapping[str, str], errors: Mapping[str, str]) -> str:
    return render_template(
        "registrations/new.html",
        fields=REGISTRATION_FIELDS,
        kinds=_KINDS,
        values=values,
        errors=errors,
    )


def _nested(form: Mapping[str, str]) -> dict[str, Any]:
    body: dict[str, Any] = {"agency": {}, "contact": {}}
    for name, ((part, key), *_rest) in REGISTRATION_FIELDS.items():
        if form.get(name):
            body[part][key] = form[name]
    if form.get("intended_use"):
        body["intended_use"] = form["intended_use"]
    return body


def _field_errors(messages: Mapping[str, Any]) -> dict[str, str]:
    where = {path: name for name, (path, *_rest) in REGISTRATION_FIELDS.items()}
    errors: dict[str, str] = {}
    for top, inner in messages.items():
        if top == "intended_use":
            errors["intended_use"] = " ".join(map(str, inner))
        elif isinstance(inner, Mapping):
            for key, said in inner.items():
                errors[where.get((top, key), "form")] = " ".join(map(str, said))
        else:
            errors["form"] = " ".join(map(str, inner))
    return errors


@bp.post("/register")
@anyone
@limiter.limit(registration_limit)
def register() -> Any:
    """Submit the registration; on a mistake, the form again with each field's error."""
    values = {name: request.form.get(name, "")[:4000] for name in REGISTRATION_FIELDS}
    values["intended_use"] = request.form.get("intended_use", "")[:8000]
    try:
        body = RegistrationSubmitSchema().load(_nested(values))
    except ma.ValidationError as exc:
        messages = exc.messages if isinstance(exc.messages, Mapping) else {"form": exc.messages}
        return _form_page(values, _field_errors(messages)), 422
    try:
        with work() as w:
            registrations.submit_registration(
                w,
                agency=body["agency"],
                contact=body["contact"],
                intended_use=body["intended_use"],
            )
    except Conflict as exc:  # the same agency and e-mail already wait for review
        return _form_page(values, {"form": exc.detail}), 409
    return redirect(url_for("console.pages.registration_sent"), 303)


@bp.get("/register/sent")
@anyone
def registration_sent() -> str:
    """Check your e-mail."""
    return render_template("registrations/sent.html")
