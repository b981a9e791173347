"""The signed-in person's API keys: list them (never a secret), create one, revoke one.

The same governance functions as ``api/resources/credentials.py``, with the same lifetime
(``FACEWARDEN_CREDENTIAL_TTL_DAYS``). A new key is shown on the answer to the form that created
it, once: the console keeps no copy, and the page is ``Cache-Control: no-store``.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from uuid import UUID

import marshmallow as ma
from flask import Blueprint, redirect, render_template, request, url_for
from werkzeug.wrappers import Response as BaseResponse

from api.console.nav import NavItem
from api.console.security import console_principal, signed_in
from api.context import runtime, work
from api.schemas.credentials import CredentialCreateSchema
from governance.core.errors import Conflict
from governance.identity import credentials as service
from governance.identity.permissions import Permission
from governance.identity.principals import Principal

__all__ = ["NAVIGATION", "bp"]

bp = Blueprint("credentials", __name__)
NAVIGATION = (
    NavItem("console.credentials.credentials_page", "API keys", Permission.CREDENTIAL_READ, 85),
)


def _me() -> Principal:
    principal = console_principal()
    assert principal is not None  # @signed_in
    return principal


def _page(*, error: str | None = None, label: str = "", done: str | None = None) -> str:
    with work() as w:
        held = service.list_credentials(w, principal=_me())
    return render_template(
        "credentials/list.html", credentials=held, error=error, label=label, done=done
    )


@bp.get("/api-keys")
@signed_in(Permission.CREDENTIAL_READ)
def credentials_page() -> str:
    """The person's API keys: label, dates, status; create one, revoke one."""
    return _page(done=request.args.get("done"))


@bp.post("/api-keys")
@signed_in(Permission.CREDENTIAL_ISSUE)
def create_credential() -> Any:
    """Create an API key and show it, this once."""
    label = request.form.get("label", "")[:1000]
    try:
        body = CredentialCreateSchema().load({"label": label} if label.strip() else {})
    except ma.ValidationError as exc:
        said = exc.messages if isinstance(exc.messages, dict) else {"label": exc.messages}
        return _page(error=" ".join(map(str, said.get("label", said))), label=label), 422
    try:
        with work() as w:
            issued = service.create_credential(
                w,
                principal=_me(),
                label=body.get("label"),
                ttl=timedelta(days=runtime().settings.credential_ttl_days),
            )
    except Conflict as exc:  # too many active keys
        return _page(error=exc.detail, label=label), 409
    return render_template("credentials/created.html", issued=issued), 201


@bp.post("/api-keys/<uuid:credential_id>/revoke")
@signed_in(Permission.CREDENTIAL_REVOKE)
def revoke_credential(credential_id: UUID) -> BaseResponse:
    """Revoke one of the person's API keys; it stops working at once."""
    with work() as w:
        service.revoke_credential(w, principal=_me(), credential_id=credential_id)
    return redirect(url_for("console.credentials.credentials_page", done="revoked"), 303)
