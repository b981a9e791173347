"""The console's protections: the session cookie, CSRF tokens, a strict CSP, signed-in views.

- The session token lives only in ``__Host-fw_session`` (``Secure``, ``HttpOnly``,
  ``SameSite=Strict``, ``Path=/``), checked on every request as an API key is
  (``governance.identity.sessions``).
- Every unsafe request carries the CSRF token of ``__Host-fw_csrf`` back, in the form field
  ``csrf_token`` or the ``X-CSRF-Token`` header (a double-submitted cookie that no other site
  and no sibling domain can set: the ``__Host-`` prefix), and an ``Origin``, when the browser
  sends one, that is the service's own.
- Pages may load only this service's own scripts, styles and images; no inline script runs.
"""

from __future__ import annotations

import functools
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar, cast
from urllib.parse import urlsplit

from flask import Blueprint, Response, g, redirect, request, url_for
from werkzeug.exceptions import Forbidden

from api.context import runtime, work
from governance.core.errors import Unauthenticated
from governance.identity.credentials import SuspendedCaller
from governance.identity.permissions import Permission
from governance.identity.principals import Principal, require_scope
from governance.identity.sessions import SESSION_LIFETIME, authenticate_session, end_session

__all__ = [
    "ANYONE",
    "CONSOLE_CSP",
    "CSRF_COOKIE",
    "GUARD_ATTRIBUTE",
    "SESSION_COOKIE",
    "SIGNED_IN",
    "anyone",
    "console_principal",
    "csrf_token",
    "end_cookie",
    "install_security",
    "safe_next",
    "signed_in",
    "start_cookie",
]

F = TypeVar("F", bound=Callable[..., Any])

SESSION_COOKIE = "__Host-fw_session"
CSRF_COOKIE = "__Host-fw_csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
CONSOLE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
_UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# Set on every console view: ``ANYONE``, ``SIGNED_IN``, or the Permission it requires; the
# console's route test reads it, so no page is left unguarded by oversight.
GUARD_ATTRIBUTE = "console_guard"
ANYONE = "anyone"
SIGNED_IN = "signed-in"


@dataclass(slots=True)
class _State:
    """What the console knows of the request: its CSRF token and principal, and the cookies
    the answer sets (``None``: unchanged; ``""``: cleared)."""

    csrf: str
    new_csrf: bool
    principal: Principal | None = None
    session_cookie: str | None = None


def install_security(blueprint: Blueprint) -> None:
    """Check every request to ``blueprint`` (and the blueprints nested in it)."""
    blueprint.before_request(_before)
    blueprint.after_request(_after)


def _state() -> _State:
    state: _State = g.console
    return state


def _before() -> None:
    token = request.cookies.get(CSRF_COOKIE, "")
    new = len(token) != 43  # token_urlsafe(32)
    g.console = _State(csrf=secrets.token_urlsafe(32) if new else token, new_csrf=new)
    if request.method in _UNSAFE:
        _check_csrf(token)
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        try:
            with work() as w:
                principal = authenticate_session(w, token=cookie)
        except Unauthenticated:  # ended, idle or past its lifetime: signed out
            _state().session_cookie = ""
        except SuspendedCaller as exc:  # its account or agency is suspended: ended for good
            with work() as w:
                end_session(w, principal=exc.principal)
            _state().session_cookie = ""
        else:
            g.principal = _state().principal = principal


def _check_csrf(cookie: str) -> None:
    sent = request.form.get(CSRF_FIELD) or request.headers.get(CSRF_HEADER) or ""
    if not cookie or not hmac.compare_digest(sent.encode(), cookie.encode()):
        raise Forbidden(
            "This form has expired or did not come from this service. Go back, reload the "
            "page and send it again."
        )
    origin = request.headers.get("Origin")
    if origin and origin != _own_origin():
        raise Forbidden("This form was sent from another site; it was not accepted.")


def _own_origin() -> str:
    url = urlsplit(runtime().settings.public_url)
    return f"{url.scheme}://{url.netloc}"


def _after(response: Response) -> Response:
    state: _State | None = g.get("console")
    response.headers["Content-Security-Policy"] = CONSOLE_CSP
    response.headers["Cache-Control"] = "no-store"
    # The console's own forms must send their real Origin (under no-referrer a browser sends
    # "null", which the check above refuses); nothing leaves for another site.
    response.headers["Referrer-Policy"] = "same-origin"
    if state is None:
        return response
    if state.new_csrf:
        _cookie(response, CSRF_COOKIE, state.csrf, max_age=None)
    if state.session_cookie == "":
        response.delete_cookie(SESSION_COOKIE, path="/", secure=True, httponly=True)
    elif state.session_cookie:
        _cookie(
            response,
            SESSION_COOKIE,
            state.session_cookie,
            max_age=int(SESSION_LIFETIME.total_seconds()),
        )
    return response


def _cookie(response: Response, name: str, value: str, *, max_age: int | None) -> None:
    response.set_cookie(
        name, value, max_age=max_age, path="/", secure=True, httponly=True, samesite="Strict"
    )


def csrf_token() -> str:
    """The token every form of the page sends back (a template global)."""
    return _state().csrf


def console_principal() -> Principal | None:
    """The signed-in person, or None."""
    state: _State | None = g.get("console")
    return state.principal if state else None


def start_cookie(token: str) -> None:
    """Set the session cookie of a session just started, on this request's answer."""
    _state().session_cookie = token


def end_cookie() -> None:
    """Clear the session cookie on this request's answer."""
    _state().session_cookie = ""


def safe_next(target: str | None) -> str:
    """Where to go after signing in: a path of the console, never another site."""
    if target and target.startswith("/console/") and not target.startswith("/console//"):
        return target
    return url_for("console.pages.home")


def signed_in(permission: Permission | None = None) -> Callable[[F], F]:
    """Guard a page: a signed-in person (else the sign-in page, coming back here after), whose
    role has ``permission`` (else 403)."""

    def decorator(view: F) -> F:
        @functools.wraps(view)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            principal = console_principal()
            if principal is None:
                return redirect(url_for("console.signing.sign_in_page", next=request.path), 303)
            if permission is not None:
                require_scope(principal, permission)
            return view(*args, **kwargs)

        setattr(guarded, GUARD_ATTRIBUTE, permission or SIGNED_IN)
        return cast(F, guarded)

    return decorator


def anyone(view: F) -> F:
    """Mark a page as open to visitors who are not signed in (sign-in, registration, claim)."""
    setattr(view, GUARD_ATTRIBUTE, ANYONE)
    return view
