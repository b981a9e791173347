"""Every error the API returns is an RFC 9457 problem (``application/problem+json``).

One table maps domain errors to HTTP; HTTP errors raised by Flask, webargs or flask-limiter
keep their status and gain the same shape. Unknown exceptions become a generic 500 that names
the request id and nothing else.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import quote

from flask import Flask, Response, g, json, request
from werkzeug.exceptions import HTTPException

from api.problems import PROBLEM_BASE, PROBLEMS
from biometrics.errors import (
    BiometricsError,
    ImageTooLarge,
    InvalidImage,
    ModelError,
    NoFaceFound,
    PackError,
    UnsupportedImageType,
)
from biometrics.index import IndexUnavailable
from governance.core.errors import (
    Conflict,
    GovernanceError,
    InvalidInput,
    NotFound,
    PermissionDenied,
    PolicyViolation,
    ServiceUnavailable,
    Unauthenticated,
)

__all__ = [
    "PROBLEM_MEDIA_TYPE",
    "install_error_handlers",
    "problem_code",
    "problem_response",
    "title_of",
]

PROBLEM_MEDIA_TYPE = "application/problem+json"

log = logging.getLogger("facewarden.api")

# Domain error class -> HTTP status. The most specific class wins (looked up along the MRO).
STATUS_BY_ERROR: Mapping[type[Exception], int] = {
    NotFound: 404,
    Unauthenticated: 401,
    PermissionDenied: 403,
    Conflict: 409,
    PolicyViolation: 403,
    InvalidInput: 422,
    ServiceUnavailable: 503,
    GovernanceError: 400,
    UnsupportedImageType: 415,
    ImageTooLarge: 413,
    InvalidImage: 422,
    NoFaceFound: 422,
    IndexUnavailable: 503,
    ModelError: 503,
    PackError: 503,
    BiometricsError: 422,
}

# Problem type codes of the biometrics errors (governance errors carry their own ``code``).
CODE_BY_ERROR: Mapping[type[Exception], str] = {
    UnsupportedImageType: "unsupported-image-type",
    ImageTooLarge: "image-too-large",
    InvalidImage: "invalid-image",
    NoFaceFound: "no-face",
    IndexUnavailable: "vector-index-unavailable",
    ModelError: "model-unavailable",
    PackError: "model-unavailable",
    BiometricsError: "biometrics-error",
}

# Problem titles, written for people (RFC 9457 §3.1.3): by problem code first, then by error
# class along the MRO. Never a docstring, which is written for the code's readers.
TITLE_BY_CODE: Mapping[str, str] = {p.code: p.title for p in PROBLEMS if not p.generic}
TITLE_BY_ERROR: Mapping[type[Exception], str] = {
    NotFound: "Not found",
    Unauthenticated: "Authentication required",
    PermissionDenied: "Forbidden",
    Conflict: "Conflict with the current state",
    PolicyViolation: "Not allowed by the rules",
    InvalidInput: "Invalid input",
    ServiceUnavailable: "Service unavailable",
    GovernanceError: "Request refused",
    NoFaceFound: "No face found",
    InvalidImage: "Unreadable image",
    IndexUnavailable: "Vector index unavailable",
    ModelError: "Face models unavailable",
    PackError: "Face models unavailable",
    BiometricsError: "Face analysis failed",
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


def problem_code(error: GovernanceError | BiometricsError) -> str:
    """The stable name of a domain error: the last segment of its problem ``type``."""
    code: str | None = getattr(error, "code", None)
    return code or next(CODE_BY_ERROR[c] for c in type(error).__mro__ if c in CODE_BY_ERROR)


def _status_for(error: Exception) -> int:
    for cls in type(error).__mro__:
        if cls in STATUS_BY_ERROR:
            return STATUS_BY_ERROR[cls]
    return 500


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


def _handle_domain_error(error: GovernanceError | BiometricsError) -> Response:
    status = _status_for(error)
    code = problem_code(error)
    extra: dict[str, Any] = {}
    if isinstance(error, InvalidInput) and error.fields:
        extra["errors"] = [
            {"in": _location_of(name), "field": name, "detail": msg}
            for name, msgs in error.fields.items()
            for msg in msgs
        ]
    more = getattr(error, "problem_extra", None)
    if isinstance(more, Mapping):
        extra.update(more)
    return problem_response(
        status,
        detail=getattr(error, "detail", None) or str(error),
        type_=PROBLEM_BASE + code,
        title=title_of(error),
        extra=extra,
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


def title_of(error: GovernanceError | BiometricsError) -> str:
    """The written title of a domain error's problem: by its code, else by its class."""
    code = problem_code(error)
    if code in TITLE_BY_CODE:
        return TITLE_BY_CODE[code]
    return next(TITLE_BY_ERROR[c] for c in type(error).__mro__ if c in TITLE_BY_ERROR)


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
    app.register_error_handler(GovernanceError, _handle_domain_error)
    app.register_error_handler(BiometricsError, _handle_domain_error)
    app.register_error_handler(HTTPException, _handle_http_exception)
    app.register_error_handler(Exception, _handle_unexpected)
