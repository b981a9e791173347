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
from typing import Any
from urllib.parse import urlsplit

from flask import Flask, Response
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from limits import RateLimitItem, parse
from limits.errors import StorageError
from werkzeug.exceptions import TooManyRequests

from api.context import runtime
from api.settings import Settings
from governance.core.errors import ServiceUnavailable
from governance.identity.principals import Principal

__all__ = [
    "RateLimitStoreUnavailable",
    "check_address_failures",
    "check_costly_request",
    "check_key_failures",
    "check_store",
    "client_address",
    "init_rate_limits",
    "limiter",
    "record_address_failure",
    "record_key_failure",
    "registration_limit",
    "store_unavailable",
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
# Its storage is the process's too: the last app bound names it (a service makes one app).
limiter = Limiter(client_address, headers_enabled=True, strategy="moving-window")


class RateLimitStoreUnavailable(ServiceUnavailable):
    """The rate-limit store (Redis) did not answer in time, so the request was not served.

    Refusing is the choice made for every request that consults a limit, rather than serving
    it unlimited ("fail open") or counting in each worker's memory meanwhile:

    - every request with a key first asks whether that key is locked after failed
      authentications, and every unknown key is counted against its address; registrations
      and claims are counted per address. Served unlimited, they would let a client that has
      no key guess secrets and flood the database at the full rate of the workers: exactly
      what the limits are there to stop, and silently, since nothing would say so;
    - counting in memory would multiply every limit by the number of workers, unlock the keys
      locked everywhere, and forget each count when the store returns;
    - a refusal is bounded (``FACEWARDEN_RATELIMIT_STORAGE_TIMEOUT_SECONDS``), visible (a 503
      naming the store, and ``/readyz``'s ``rate_limits`` check) and over as soon as the store
      answers again. What consults no limit (``/healthz``, ``/readyz``, the specification)
      is served throughout.
    """

    code = "rate-limit-store-unavailable"


def store_unavailable(exc: StorageError) -> RateLimitStoreUnavailable:
    """The refusal of a request whose limits the store could not check (``exc`` says why)."""
    log.warning("rate-limit store unavailable: %s", exc.storage_error)
    timeout = runtime().settings.ratelimit_storage_timeout_seconds
    return RateLimitStoreUnavailable(
        "the rate-limit store (FACEWARDEN_RATELIMIT_STORAGE_URI) did not answer within "
        f"FACEWARDEN_RATELIMIT_STORAGE_TIMEOUT_SECONDS={timeout} s "
        f"({type(exc.storage_error).__name__}), so this request, whose limits it keeps, was not "
        "served; retry later, and operators: check that Redis runs and is reachable"
    )


def storage_options(settings: Settings) -> dict[str, Any]:
    """The storage's options: errors wrapped in ``StorageError``; for Redis, bounded waits.

    redis-py waits for ever by default, and retries a failed command; here a connection or a
    command that takes longer than the timeout fails at once, so a request waits at most
    ``FACEWARDEN_RATELIMIT_STORAGE_TIMEOUT_SECONDS`` for each round trip before its 503. A
    connection the store closed (a restart) is replaced by the pool's own health check.
    """
    options: dict[str, Any] = {"wrap_exceptions": True}
    if urlsplit(settings.ratelimit_storage_uri).scheme.startswith("redis"):
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        timeout = settings.ratelimit_storage_timeout_seconds
        options.update(
            socket_connect_timeout=timeout, socket_timeout=timeout, retry=Retry(NoBackoff(), 0)
        )
    return options


def check_store() -> str:
    """The ``/readyz`` check of a shared store: one round trip. Raises StorageError."""
    storage = limiter.limiter.storage
    if not storage.check():  # limits' own probe (a Redis PING) answers False, never raises
        raise StorageError(ConnectionError(f"{type(storage).__name__} does not answer"))
    return f"{type(storage).__name__} answers"


def init_rate_limits(app: Flask, settings: Settings) -> None:
    """Bind the limiter to ``app`` with the storage named by the settings."""
    app.config["RATELIMIT_STORAGE_URI"] = settings.ratelimit_storage_uri
    app.config["RATELIMIT_STORAGE_OPTIONS"] = storage_options(settings)
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


def check_costly_request(principal: Principal, cost: int = 1) -> None:
    """Spend ``cost`` costly requests of the caller's credential and account, or refuse them.

    ``cost`` is how many units of work the request does (the photos of a batch upload, each of
    which the API would charge as one enrolment). Raises TooManyRequests (429) carrying
    Retry-After, when fewer than ``cost`` remain (nothing is then spent of that budget). A
    request the account's budget refuses has spent its cost of its credential's: the error is
    on the side of fewer requests.
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
        if not limiter.limiter.hit(item, namespace, key, cost=cost):
            log.warning(
                "costly request rate-limited",
                extra={"credential_id": str(principal.credential_id)},
            )
            raise _too_many(item, namespace, key, what)
