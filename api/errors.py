"""Every error the API returns is an RFC 9457 problem (``application/problem+json``).

One table maps domain errors to HTTP; HTTP errors raised by Flask, webargs or flask-limiter
keep their status and gain the same shape. Unknown exceptions become a generic 500 that names
the request id and nothing else.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from flask import Flask, Response, g, json, request
from limits.errors import StorageError
from werkzeug.exceptions import HTTPException

from api.problems import PROBLEM_BASE, PROBLEMS
from api.ratelimit import RateLimitStoreUnavailable, store_unavailable
from biometrics.errors import (
    BiometricsError,
    DomainError,
    ImageTooLarge,
    IndexUnavailable,
    InvalidImage,
    ModelError,
    NoFaceFound,
    PackError,
    UnsupportedImageType,
)
from governance.core.db import DatabaseUnavailable
from governance.core.errors import (
    Conflict,
    InvalidInput,
    NotFound,
    PermissionDenied,
    PolicyViolation,
    ServiceUnavailable,
    Unauthenticated,
)
from governance.core.recording import LedgerUnavailable

__all__ = [
    "ANSWERS",
    "PROBLEM_MEDIA_TYPE",
    "TITLE_BY_CODE",
    "Answer",
    "answer_for",
    "install_error_handlers",
    "problem_response",
    "title_of",
]

PROBLEM_MEDIA_TYPE = "application/problem+json"

log = logging.getLogger("facewarden.api")


@dataclass(frozen=True, slots=True)
class Answer:
    """How the API answers a domain error class: its HTTP status and the title of its problem.

    The problem's ``type`` is ``/problems/<code>``, the error's ``code``.
    """

    status: int
    title: str


# Domain error class -> its answer; the most specific class wins (looked up along the MRO).
# Titles are written for people (RFC 9457 §3.1.3), never a docstring, which is written for the
# code's readers. An error raised with a code of its own (``code="already-decided"``) takes that
# code's title from api/problems.py.
ANSWERS: Mapping[type[DomainError], Answer] = {
    NotFound: Answer(404, "Not found"),
    Unauthenticated: Answer(401, "Authentication required"),
    PermissionDenied: Answer(403, "Forbidden"),
    Conflict: Answer(409, "Conflict with the current state"),
    PolicyViolation: Answer(403, "Not allowed by the rules"),
    InvalidInput: Answer(422, "Invalid input"),
    DatabaseUnavailable: Answer(503, "Database unavailable"),
    LedgerUnavailable: Answer(503, "The ledger cannot record now"),
    RateLimitStoreUnavailable: Answer(503, "Rate-limit store unavailable"),
    ServiceUnavailable: Answer(503, "Service unavailable"),
    UnsupportedImageType: Answer(415, "Unsupported image type"),
    ImageTooLarge: Answer(413, "Image too large"),
    InvalidImage: Answer(422, "Unreadable image"),
    NoFaceFound: Answer(422, "No face found"),
    IndexUnavailable: Answer(503, "Vector index unavailable"),
    ModelError: Answer(503, "Face models unavailable"),
    PackError: Answer(503, "Face models unavailable"),
    BiometricsError: Answer(422, "Face analysis failed"),
    DomainError: Answer(400, "Request refused"),
}

# Written titles by problem code: those of the classes' own codes and of the problem types
# api/problems.py lists (where both name a code, they agree).
TITLE_BY_CODE: Mapping[str, str] = {
    **{cls.code: answer.title for cls, answer in ANSWERS.items()},
    **{p.code: p.title for p in PROBLEMS if not p.generic},
}

_TITLES = {
    400: "Bad request",
    401: "Authentication required",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Content too large",
    415: "Unsupported media type",
    422: "Unprocessable content",
    429: "Too many requests",
    500: "Internal server error",
    503: "Service unavailable",
}


RETRY_UNAVAILABLE_SECONDS = 5


def problem_response(
    status: int,
    *,
    detail: str,
    type_: str = "about:blank",
    title: str | None = None,
    extra: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response:
    """Build a problem+json response carrying the current request id."""
    body: dict[str, Any] = {
        "type": type_,
        "title": title or _TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
        # A URI reference (RFC 3986): the path as sent, percent-encoded where it must be.
        "instance": quote(request.path, safe="/:@!$&'()*+,;=-._~") if request else None,
        "request_id": g.get("request_id"),
    }
    if extra:
        body.update(extra)
    response = Response(json.dumps(body), status=status, mimetype=PROBLEM_MEDIA_TYPE)
    for key, value in (headers or {}).items():
        response.headers[key] = value
    if status == 401:
        response.headers.setdefault("WWW-Authenticate", 'Bearer realm="facewarden"')
    return response


def answer_for(error: DomainError) -> Answer:
    """The answer to ``error``: that of the most specific class in ``ANSWERS``."""
    return next(ANSWERS[c] for c in type(error).__mro__ if c in ANSWERS)


def title_of(error: DomainError) -> str:
    """The written title of a domain error's problem: its code's, else its class's."""
    return TITLE_BY_CODE.get(error.code) or answer_for(error).title


def _flatten(messages: Any, prefix: str = "") -> Iterator[tuple[str, str]]:
    """Turn marshmallow's nested ``{field: [msg]}`` into (dotted.field, message) pairs."""
    if isinstance(messages, Mapping):
        for key, value in messages.items():
            name = f"{prefix}.{key}" if prefix else str(key)
            yield from _flatten(value, name)
    elif isinstance(messages, list | tuple):
        for item in messages:
            yield from _flatten(item, prefix)
    else:
        yield prefix or "_schema", str(messages)


def _field_errors(messages: Mapping[str, Any]) -> list[dict[str, str]]:
    errors = []
    for location, fields in messages.items():
        for name, message in _flatten(fields):
            errors.append({"in": str(location), "field": name, "detail": message})
    return errors


def _handle_domain_error(error: DomainError) -> Response:
    extra: dict[str, Any] = {}
    if isinstance(error, InvalidInput) and error.fields:
        extra["errors"] = [
            {"in": _location_of(name), "field": name, "detail": msg}
            for name, msgs in error.fields.items()
            for msg in msgs
        ]
    extra.update(error.extra)
    status = answer_for(error).status
    return problem_response(
        status,
        detail=error.detail,
        type_=PROBLEM_BASE + error.code,
        title=title_of(error),
        extra=extra,
        # A part that is down or busy: a client's retry is welcome, after a pause.
        headers={"Retry-After": str(RETRY_UNAVAILABLE_SECONDS)} if status == 503 else None,
    )


def _location_of(name: str) -> str:
    """Where the request sent the field a domain check refused, named as webargs names it."""
    if name in (request.view_args or {}):
        return "path"
    if name in request.args:
        return "query"
    if request.mimetype == "multipart/form-data":
        return "multipart"
    if request.mimetype == "application/x-www-form-urlencoded":
        return "form"
    return "json"


def _handle_http_exception(error: HTTPException) -> Response:
    status = error.code or 500
    data = getattr(error, "data", None) or {}
    messages = data.get("messages") if isinstance(data, Mapping) else None
    if status == 422 and messages:
        errors = _field_errors(messages)
        return problem_response(
            422,
            detail=f"The request has {len(errors)} invalid field(s); see `errors`.",
            type_=PROBLEM_BASE + "validation-error",
            title="Validation failed",
            extra={"errors": errors},
        )
    headers = dict(error.get_headers()) if status in (405, 429) else {}
    headers.pop("Content-Type", None)
    detail = error.description or _TITLES.get(status, "Error")
    if status == 429:
        detail = f"Rate limit exceeded ({error.description}); retry later."
    return problem_response(status, detail=detail, headers=headers)


def _handle_storage_error(error: StorageError) -> Response:
    """The rate-limit store failed (flask-limiter's decorators or ``api.ratelimit``'s calls)."""
    return _handle_domain_error(store_unavailable(error))


def _handle_unexpected(error: Exception) -> Response:
    log.exception("unhandled error", extra={"request_id": g.get("request_id")})
    return problem_response(
        500,
        detail=(
            "An internal error occurred. Quote the request id "
            f"{g.get('request_id')} to the operators."
        ),
    )


def install_error_handlers(app: Flask) -> None:
    """Register the handlers; call after flask-smorest's ``Api`` so ours win."""
    app.register_error_handler(DomainError, _handle_domain_error)
    app.register_error_handler(HTTPException, _handle_http_exception)
    app.register_error_handler(StorageError, _handle_storage_error)
    app.register_error_handler(Exception, _handle_unexpected)
