"""Rate limits (flask-limiter): registrations per client, failed authentications, costly work.

The storage is ``settings.ratelimit_storage_uri`` (``memory://`` for one process; a Redis or
Memcached URI when several workers must share counts). Counts use the limiter's own strategy
and storage; a refused client gets 429 with ``Retry-After`` until its window passes.

Failed authentications are counted where they cannot hurt a bystander: a wrong secret (or a
revoked or expired key) against the key's lookup id, whatever the address, so a key under brute
force is locked everywhere; a key that does not exist against the client address, so garbage
from one address never locks out a valid key sent from the same address. Costly requests
(searches, enrolments, erasures and their previews) are counted per credential and per
account, suspended callers included, before any image is read or any refusal is recorded.
"""

from __future__ import annotations

import logging
import math
import time

from flask import Flask, Response
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from limits import RateLimitItem, parse
from werkzeug.exceptions import TooManyRequests

from api.context import runtime
from api.settings import Settings
from governance.identity.principals import Principal

__all__ = [
    "check_address_failures",
    "check_costly_request",
    "check_key_failures",
    "client_address",
    "init_rate_limits",
    "limiter",
    "record_address_failure",
    "record_key_failure",
    "registration_limit",
]

_ADDRESS_FAILURES = "auth-failure"
_KEY_FAILURES = "auth-failure-key"
_COSTLY_PER_CREDENTIAL = "costly-credential"
_COSTLY_PER_ACCOUNT = "costly-account"

log = logging.getLogger("facewarden.api")


def client_address() -> str:
    """The client's address as the WSGI server (or one trusted proxy hop) reports it."""
    return str(get_remote_address())


# One limiter per process, bound to each app by ``init_rate_limits`` (flask-limiter's pattern
# for application factories); limits read the current app's settings when a request arrives.
limiter = Limiter(client_address, headers_enabled=True, strategy="moving-window")


def init_rate_limits(app: Flask, settings: Settings) -> None:
    """Bind the limiter to ``app`` with the storage named by the settings."""
    app.config["RATELIMIT_STORAGE_URI"] = settings.ratelimit_storage_uri
    app.config["RATELIMIT_HEADERS_ENABLED"] = True
    # Registered first so it runs last (Flask runs after-request hooks in reverse), once the
    # limiter has added its headers.
    app.after_request(_retry_after_only_on_refusals)
    limiter.init_app(app)


def _retry_after_only_on_refusals(response: Response) -> Response:
    """Keep ``Retry-After`` for 429 and 503: on a success it would tell a client to wait."""
    if response.status_code not in (429, 503):
        response.headers.pop("Retry-After", None)
    return response


def registration_limit() -> str:
    """The per-client limit on registration submissions (``settings.registration_rate_limit``)."""
    return runtime().settings.registration_rate_limit


def _refuse_when_spent(item: RateLimitItem, namespace: str, key: str, what: str) -> None:
    """Raise TooManyRequests (429, with Retry-After) when ``key`` has no request left."""
    if not limiter.limiter.test(item, namespace, key):
        raise _too_many(item, namespace, key, what)


def _too_many(item: RateLimitItem, namespace: str, key: str, what: str) -> TooManyRequests:
    stats = limiter.limiter.get_window_stats(item, namespace, key)
    retry_after = max(1, math.ceil(stats.reset_time - time.time()))
    return TooManyRequests(description=f"{what}; at most {item}", retry_after=retry_after)


def _failure_item() -> RateLimitItem:
    return parse(runtime().settings.auth_failure_rate_limit)


def check_address_failures() -> None:
    """Refuse a client address that presented too many unknown keys or wrong claim secrets.

    Raises TooManyRequests (429) carrying Retry-After.
    """
    _refuse_when_spent(
        _failure_item(),
        _ADDRESS_FAILURES,
        client_address(),
        "too many failed authentications from this address",
    )


def record_address_failure() -> None:
    """Count one unknown key or wrong claim secret against the client address."""
    limiter.limiter.hit(_failure_item(), _ADDRESS_FAILURES, client_address())


def check_key_failures(lookup_id: str) -> None:
    """Refuse a key whose lookup id was presented with a wrong secret too often, from anywhere.

    Raises TooManyRequests (429) carrying Retry-After.
    """
    _refuse_when_spent(
        _failure_item(),
        _KEY_FAILURES,
        lookup_id,
        "too many failed authentications of this key; it is locked until the window passes",
    )


def record_key_failure(lookup_id: str) -> None:
    """Count one failed authentication (wrong secret, revoked or expired) against a key id."""
    limiter.limiter.hit(_failure_item(), _KEY_FAILURES, lookup_id)


def check_costly_request(principal: Principal) -> None:
    """Spend one costly request of the caller's credential and account, or refuse it.

    Raises TooManyRequests (429) carrying Retry-After. A request the account's budget refuses
    has spent one of its credential's: the error is on the side of fewer requests.
    """
    settings = runtime().settings
    budgets = (
        (
            parse(settings.search_rate_limit),
            _COSTLY_PER_CREDENTIAL,
            str(principal.credential_id),
            "too many searches, enrolments or erasures with this API key",
        ),
        (
            parse(settings.account_rate_limit),
            _COSTLY_PER_ACCOUNT,
            str(principal.account_id),
            "too many searches, enrolments or erasures by this account",
        ),
    )
    # hit() tests and spends in one step (under the storage's lock, or one Redis script), so
    # concurrent requests cannot all pass a test made before any of them spent.
    for item, namespace, key, what in budgets:
        if not limiter.limiter.hit(item, namespace, key):
            log.warning(
                "costly request rate-limited",
                extra={"credential_id": str(principal.credential_id)},
            )
            raise _too_many(item, namespace, key, what)
