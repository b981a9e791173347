"""Signing in and out, claiming an account with a passkey, and the person's passkeys.

The browser part of a WebAuthn ceremony needs JavaScript (``static/passkeys.js``): it asks
for the ceremony's options, lets the authenticator answer, and submits the answer with the
page's form, which the view below hands to one governance function.
"""

from __future__ import annotations

import logging
from typing import Any
from uuid import UUID

from flask import Blueprint, Response, jsonify, redirect, render_template, request, url_for
from werkzeug.exceptions import BadRequest, NotFound
from werkzeug.wrappers import Response as BaseResponse

from api.auth import check_key_failures_of, counting_key_failures, with_claim_attempt
from api.console.nav import NavItem
from api.console.security import (
    anyone,
    console_principal,
    end_cookie,
    safe_next,
    signed_in,
    start_cookie,
)
from api.context import runtime, work
from api.ratelimit import check_address_failures, limiter, record_address_failure
from biometrics.errors import DomainError
from governance.core.errors import Unauthenticated
from governance.identity import passkeys, sessions
from governance.identity import sign_in as flows
from governance.identity.passkeys import Ceremony
from governance.identity.principals import Principal
from governance.identity.sessions import StartedSession

__all__ = ["NAVIGATION", "bp"]

# Sign-ins, sign-outs and their failures, in the request log (ids and codes, no names): the
# ledger records each sign-in and enrolment; this also keeps the failures.
log = logging.getLogger("facewarden.console")

bp = Blueprint("signing", __name__)
NAVIGATION = (NavItem("console.signing.passkeys_page", "Passkeys", order=90),)

# Claim links name the application as the API's paths do.
_CLAIM_PATHS = {"registrations": "registration", "account-requests": "account_request"}


def _ceremony_limit() -> str:
    return runtime().settings.auth_failure_rate_limit


def _options(ceremony: Ceremony) -> Response:
    return jsonify({"ceremony": str(ceremony.id), "options": ceremony.options})


def _form(name: str, *, limit: int = 20_000) -> str:
    value = request.form.get(name, "")
    if len(value) > limit:
        raise BadRequest(f"The field {name} is too long.")
    return value


def _ceremony_id() -> UUID:
    try:
        return UUID(_form("ceremony"))
    except ValueError as exc:
        raise BadRequest(
            "The passkey step did not finish: this page needs JavaScript and a browser "
            "that supports passkeys."
        ) from exc


@bp.get("/sign-in")
@anyone
def sign_in_page() -> str:
    """The sign-in page: one button, no name to type (passkeys are discoverable)."""
    return render_template(
        "console/sign_in.html", next=safe_next(request.args.get("next")), error=None
    )


@bp.post("/sign-in/options")
@anyone
@limiter.limit(_ceremony_limit)
def sign_in_options() -> Response:
    """A sign-in challenge, as JSON for the page's script."""
    check_address_failures()
    with work() as w:
        return _options(flows.begin_sign_in(w, runtime().passkeys))


@bp.post("/sign-in")
@anyone
def sign_in() -> Any:
    """Finish signing in with the passkey's answer; a failure is counted against the address."""
    check_address_failures()
    target = safe_next(request.form.get("next"))
    try:
        with work() as w:
            started = flows.sign_in(
                w, runtime().passkeys, ceremony_id=_ceremony_id(), response=_form("response")
            )
    except (DomainError, BadRequest) as exc:
        record_address_failure()
        _failed("sign-in", exc)
        detail = exc.detail if isinstance(exc, DomainError) else str(exc.description)
        return render_template("console/sign_in.html", next=target, error=detail), 401
    _signed_in("sign-in", started)
    return redirect(target, 303)


def _failed(what: str, exc: Exception) -> None:
    code = exc.code if isinstance(exc, DomainError) else "bad-request"
    log.warning("console %s refused", what, extra={"event": f"{what}-refused", "code": code})


def _signed_in(what: str, started: StartedSession) -> None:
    start_cookie(started.token)
    log.info(
        "console %s",
        what,
        extra={
            "event": what,
            "principal": str(started.principal.account_id),
            "session": str(started.principal.credential_id),
        },
    )


@bp.post("/sign-out")
@signed_in()
def sign_out() -> BaseResponse:
    """End this session at once."""
    principal = console_principal()
    assert principal is not None
    with work() as w:
        sessions.end_session(w, principal=principal)
    end_cookie()
    log.info(
        "console sign-out",
        extra={
            "event": "sign-out",
            "principal": str(principal.account_id),
            "session": str(principal.credential_id),
        },
    )
    return redirect(url_for("console.signing.sign_in_page", done="signed-out"), 303)


def _kind(path: str) -> str:
    kind = _CLAIM_PATHS.get(path)
    if kind is None:
        raise NotFound("No such claim link.")
    return kind


@bp.get("/claim/<what>/<uuid:claim_id>")
@anyone
def claim_page(what: str, claim_id: UUID) -> str:
    """The page the claim e-mail links to: the secret from the message, then a passkey."""
    _kind(what)
    return render_template("console/claim.html", what=what, claim_id=claim_id, error=None)


@bp.post("/claim/<what>/<uuid:claim_id>/options")
@anyone
@limiter.limit(_ceremony_limit)
def claim_options(what: str, claim_id: UUID) -> Response:
    """Check the claim secret (a wrong one counts as a failed authentication) and answer the
    passkey's creation options."""
    kind = _kind(what)
    secret = _form("claim_secret", limit=200)

    def begin() -> Ceremony:
        with work() as w:
            return flows.begin_claim(
                w, runtime().passkeys, kind=kind, claim_id=claim_id, claim_secret=secret
            )

    return _options(with_claim_attempt(begin))


@bp.post("/claim/<what>/<uuid:claim_id>")
@anyone
def claim(what: str, claim_id: UUID) -> Any:
    """Claim the account with the passkey just made, and sign in."""
    kind = _kind(what)
    check_address_failures()
    try:
        with work() as w:
            started = flows.finish_claim(
                w,
                runtime().passkeys,
                kind=kind,
                claim_id=claim_id,
                claim_secret=_form("claim_secret", limit=200),
                ceremony_id=_ceremony_id(),
                response=_form("response"),
                label=_form("label", limit=100),
            )
    except (DomainError, BadRequest) as exc:
        record_address_failure()
        _failed("claim", exc)
        detail = exc.detail if isinstance(exc, DomainError) else str(exc.description)
        page = render_template("console/claim.html", what=what, claim_id=claim_id, error=detail)
        return page, 422 if not isinstance(exc, Unauthenticated) else 401
    _signed_in("claim", started)
    return redirect(url_for("console.pages.home", done="claimed"), 303)


@bp.get("/enrol")
@anyone
def enrol_page() -> str:
    """For holders of an API key (an administrator made on the command line, an account
    claimed through the API): enrol a passkey, once, with the key."""
    return render_template("console/enrol.html", error=None)


def _api_key() -> str:
    key = _form("api_key", limit=200)
    if key:
        check_key_failures_of(key)
    return key


@bp.post("/enrol/options")
@anyone
@limiter.limit(_ceremony_limit)
def enrol_options() -> Response:
    """Check the API key (its failures count as the API's do) and answer creation options."""
    key = _api_key()

    def begin() -> Ceremony:
        with work() as w:
            return flows.begin_with_api_key(w, runtime().passkeys, api_key=key)

    return _options(counting_key_failures(key, begin))


@bp.post("/enrol")
@anyone
def enrol() -> Any:
    """Keep the passkey made with the API key, and sign in."""
    key = _api_key()

    def finish() -> StartedSession:
        with work() as w:
            return flows.finish_with_api_key(
                w,
                runtime().passkeys,
                api_key=key,
                ceremony_id=_ceremony_id(),
                response=_form("response"),
                label=_form("label", limit=100),
            )

    try:
        started = counting_key_failures(key, finish)
    except (DomainError, BadRequest) as exc:
        _failed("enrolment", exc)
        detail = exc.detail if isinstance(exc, DomainError) else str(exc.description)
        page = render_template("console/enrol.html", error=detail)
        return page, 401 if isinstance(exc, Unauthenticated) else 422
    _signed_in("enrolment", started)
    return redirect(url_for("console.pages.home", done="enrolled"), 303)


def _me() -> Principal:
    principal = console_principal()
    assert principal is not None  # @signed_in
    return principal


@bp.get("/passkeys")
@signed_in()
def passkeys_page() -> str:
    """The person's passkeys: add one (another device), revoke one."""
    with work() as w:
        held = passkeys.list_passkeys(w, principal=_me())
    return render_template(
        "console/passkeys.html", passkeys=held, done=request.args.get("done"), error=None
    )


@bp.post("/passkeys/options")
@signed_in()
@limiter.limit(_ceremony_limit)
def passkey_options() -> Response:
    """Creation options for one more passkey of the signed-in person."""
    with work() as w:
        return _options(flows.begin_another_passkey(w, runtime().passkeys, principal=_me()))


@bp.post("/passkeys")
@signed_in()
def add_passkey() -> Any:
    """Keep the passkey the browser just made."""
    try:
        with work() as w:
            flows.finish_another_passkey(
                w,
                runtime().passkeys,
                principal=_me(),
                ceremony_id=_ceremony_id(),
                response=_form("response"),
                label=_form("label", limit=100),
            )
    except (DomainError, BadRequest) as exc:
        detail = exc.detail if isinstance(exc, DomainError) else str(exc.description)
        with work() as w:
            held = passkeys.list_passkeys(w, principal=_me())
        page = render_template("console/passkeys.html", passkeys=held, done=None, error=detail)
        return page, 422
    return redirect(url_for("console.signing.passkeys_page", done="added"), 303)


@bp.post("/passkeys/<uuid:passkey_id>/revoke")
@signed_in()
def revoke_passkey(passkey_id: UUID) -> BaseResponse:
    """Revoke one passkey (never the last)."""
    with work() as w:
        passkeys.revoke_passkey(w, principal=_me(), passkey_id=passkey_id)
    return redirect(url_for("console.signing.passkeys_page", done="revoked"), 303)
