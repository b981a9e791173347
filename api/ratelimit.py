"""Rate limits (flask-limiter): registrations per client, and failed authentications per client.

The storage is ``settings.ratelimit_storage_uri`` (``memory://`` for one process; a Redis or
Memcached URI when several workers must share counts). Failed authentications are *counted*
with the limiter's own strategy and storage, so a client that keeps presenting bad keys or
wrong claim secrets gets 429 with ``Retry-After`` until its window passes.
"""

from __future__ import annotations

import math
import time

from flask import Flask
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from limits import RateLimitItem, parse
from werkzeug.exceptions import TooManyRequests

from api.context import runtime
from api.settings import Settings

__all__ = [
    "check_auth_failures",
    "client_address",
    "init_rate_limits",
    "limiter",
    "record_auth_failure",
    "registration_limit",
]

_AUTH_FAILURE_NAMESPACE = "auth-failure"


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
    limiter.init_app(app)


def registration_limit() -> str:
    """The per-client limit on registration submissions (``settings.registration_rate_limit``)."""
    return runtime().settings.registration_rate_limit


def _failure_item() -> RateLimitItem:
    return parse(runtime().settings.auth_failure_rate_limit)


def check_auth_failures() -> None:
    """Refuse a client that has failed to authenticate too often in the current window.

    Raises TooManyRequests (429) carrying Retry-After.
    """
    item, key = _failure_item(), client_address()
    if limiter.limiter.test(item, _AUTH_FAILURE_NAMESPACE, key):
        return
    stats = limiter.limiter.get_window_stats(item, _AUTH_FAILURE_NAMESPACE, key)
    retry_after = max(1, math.ceil(stats.reset_time - time.time()))
    raise TooManyRequests(
        description=f"too many failed authentications; at most {item}",
        retry_after=retry_after,
    )


def record_auth_failure() -> None:
    """Count one failed authentication (bad key, wrong claim secret) against the client."""
    limiter.limiter.hit(_failure_item(), _AUTH_FAILURE_NAMESPACE, client_address())
