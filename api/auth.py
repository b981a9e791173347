"""Authentication and authorization of requests: ``Authorization: Bearer fw_<id>_<secret>``.

``require(Permission.X)`` guards a view: it authenticates the key (on every request, against
the database; nothing is cached), puts the ``Principal`` on ``flask.g.principal``, and refuses a
role without the permission (403). Services then apply the permission's scope, so another
agency's objects answer 404. Keys are accepted only in the header: a key in the query string
is refused with 400 before any view runs (query strings end up in logs and browser history).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar, cast

from flask import Flask, g, request
from flask_smorest import Blueprint
from werkzeug.exceptions import BadRequest

from api.context import work
from api.ratelimit import (
    check_address_failures,
    check_costly_request,
    check_key_failures,
    record_address_failure,
    record_key_failure,
)
from governance.core.errors import PermissionDenied, Unauthenticated
from governance.identity.credentials import SuspendedCaller, UnknownCredential, authenticate
from governance.identity.permissions import Permission
from governance.identity.principals import Principal, require_scope
from governance.identity.tokens import parse_api_key

__all__ = [
    "BEARER",
    "PUBLIC_ATTRIBUTE",
    "REQUIRED_ATTRIBUTE",
    "authenticate_request",
    "check_key_failures_of",
    "counting_key_failures",
    "current_principal",
    "install_auth",
    "public",
    "require",
    "with_claim_attempt",
]

F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")

BEARER: list[dict[str, list[str]]] = [{"bearer": []}]
# Set on guarded views; the role-matrix test and the docs read them.
REQUIRED_ATTRIBUTE = "required_permission"
PUBLIC_ATTRIBUTE = "public_endpoint"

_QUERY_CREDENTIAL_NAMES = frozenset(
    {
        "api_key",
        "apikey",
        "api-key",
        "key",
        "token",
        "access_token",
        "auth",
        "authorization",
        "bearer",
        "credential",
        "claim_secret",
    }
)


def install_auth(app: Flask) -> None:
    """Refuse credentials in query strings on every route, before any view runs."""
    app.before_request(_refuse_credentials_in_query)


def _refuse_credentials_in_query() -> None:
    for name, value in request.args.items(multi=True):
        if name.lower() in _QUERY_CREDENTIAL_NAMES or "fw_" in value or "fwc_" in value:
            raise BadRequest(
                description=(
                    "Credentials are accepted only in the Authorization header "
                    "(Authorization: Bearer fw_...), never in the query string; this key "
                    "should now be considered exposed and revoked."
                )
            )


def authenticate_request() -> Principal:
    """Authenticate the current request and remember its principal on ``g.principal``.

    A key id that failed too often is refused whatever the address; unknown keys are counted
    against the address, and only they are refused there once it has sent too many, so a
    valid key keeps working from an address that also sends garbage (``api.ratelimit``).
    Raises Unauthenticated (401) without or with a bad key, TooManyRequests (429) after too
    many failures, PermissionDenied (403) for a suspended account or agency.
    """
    header = request.headers.get("Authorization", "")
    if not header:
        raise Unauthenticated(
            "Send an API key as `Authorization: Bearer fw_...`.", code="missing-credential"
        )
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        _unknown_key()
        raise Unauthenticated(
            "Only `Authorization: Bearer fw_...` is accepted.", code="malformed-credential"
        )
    key = parse_api_key(token)
    if key is not None:
        check_key_failures(key.lookup_id)
    try:
        with work() as w:
            principal = authenticate(w, token=token)
    except UnknownCredential:
        _unknown_key()
        raise
    except Unauthenticated:
        if key is not None:  # a wrong secret, or a revoked or expired key: this key's count
            record_key_failure(key.lookup_id)
        raise
    g.principal = principal
    return principal


def _unknown_key() -> None:
    """Count a key no credential has against the address; refuse once it sent too many."""
    check_address_failures()
    record_address_failure()


def current_principal() -> Principal:
    """The principal ``require`` authenticated for this request."""
    principal: Principal = g.principal
    return principal


def require(
    permission: Permission,
    *,
    on_suspended: Callable[[Principal, SuspendedCaller], None] | None = None,
    costly: bool = False,
) -> Callable[[F], F]:
    """Guard a view: authenticate, then refuse roles that lack ``permission`` (403).

    ``on_suspended`` is told when a valid key of a suspended account or agency is refused, so
    a view can put the refused attempt on record. A ``costly`` view (it decodes images or may
    record a refusal) spends one request of the caller's per-credential and per-account rate
    limits first, suspended callers included, and answers 429 when they are spent.
    """

    def decorator(view: F) -> F:
        @functools.wraps(view)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            try:
                principal = authenticate_request()
            except SuspendedCaller as exc:
                if costly:
                    check_costly_request(exc.principal)
                if on_suspended is not None:
                    on_suspended(exc.principal, exc)
                raise
            require_scope(principal, permission)
            if costly:
                check_costly_request(principal)
            return view(*args, **kwargs)

        setattr(guarded, REQUIRED_ATTRIBUTE, permission)
        return cast(F, Blueprint.doc(security=BEARER)(guarded))

    return decorator


def public(view: F) -> F:
    """Mark a view as reachable without a key (registration, claims)."""

    @functools.wraps(view)
    def open_view(*args: Any, **kwargs: Any) -> Any:
        return view(*args, **kwargs)

    setattr(open_view, PUBLIC_ATTRIBUTE, True)
    return cast(F, Blueprint.doc(security=[])(open_view))


def check_key_failures_of(token: str) -> None:
    """Refuse, before any lookup, a key sent with a wrong secret too often, or any key from an
    address that sent too many unknown ones (as ``authenticate_request`` does).

    Raises TooManyRequests (429).
    """
    key = parse_api_key(token)
    if key is None:
        check_address_failures()
    else:
        check_key_failures(key.lookup_id)


def counting_key_failures(token: str, call: Callable[[], T]) -> T:
    """Run ``call``, which authenticates ``token`` as an API key, counting a failure as
    ``authenticate_request`` does: an unknown key against the address, a wrong secret (or a
    revoked or expired key) against the key. Raises what ``call`` raises.
    """
    try:
        return call()
    except UnknownCredential:
        _unknown_key()
        raise
    except Unauthenticated:
        key = parse_api_key(token)
        if key is not None:
            record_key_failure(key.lookup_id)
        raise


def with_claim_attempt(call: Callable[[], T]) -> T:
    """Run a claim, counting a wrong claim secret as a failed authentication of the client.

    Raises TooManyRequests (429) after too many failures, and whatever ``call`` raises.
    """
    check_address_failures()
    try:
        return call()
    except PermissionDenied:
        record_address_failure()
        raise
