"""The problem types of the API: one table for the error handlers, the OpenAPI and the docs.

Each row names a problem's ``type`` code, HTTP status, written title, the members it adds to
RFC 9457's (its extensions), and which operations can return it. ``api/errors.py`` takes the
titles of the codes errors are raised with from here (its table of error classes agrees with
the rows of their own codes; a test holds them to it), ``api/spec.py`` documents each
operation's problems from here, and ``docs/problems.md`` is rendered from here (a test fails
when it is stale).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import marshmallow as ma

__all__ = [
    "PROBLEMS",
    "PROBLEM_BASE",
    "FieldErrorSchema",
    "Operation",
    "ProblemSchema",
    "ProblemType",
    "problems_for",
    "render_markdown",
]

PROBLEM_BASE = "/problems/"


class FieldErrorSchema(ma.Schema):
    """One invalid field: where it was sent, its name, and what is wrong with it."""

    in_ = ma.fields.String(
        data_key="in",
        required=True,
        validate=ma.validate.OneOf(("json", "query", "path", "form", "files", "multipart")),
        metadata={"description": "Where the field was sent."},
    )
    field = ma.fields.String(required=True, metadata={"description": "Dotted field name."})
    detail = ma.fields.String(required=True)


class ProblemSchema(ma.Schema):
    """An RFC 9457 problem; each type may add the members named in its description."""

    type = ma.fields.String(
        required=True,
        metadata={
            "description": "`/problems/<code>` (see docs/problems.md), or `about:blank`.",
            "format": "uri-reference",
        },
    )
    title = ma.fields.String(required=True)
    status = ma.fields.Integer(required=True, validate=ma.validate.Range(min=400, max=599))
    detail = ma.fields.String(required=True)
    instance = ma.fields.String(
        required=True, allow_none=True, metadata={"format": "uri-reference"}
    )
    request_id = ma.fields.String(
        required=True,
        allow_none=True,
        metadata={"description": "Quote it to the operators: it names the request in the logs."},
    )
    errors = ma.fields.List(
        ma.fields.Nested(FieldErrorSchema),
        metadata={"description": "The invalid fields, for validation problems."},
    )

    class Meta:
        unknown = ma.INCLUDE


class FaceChoiceSchema(ma.Schema):
    """One of the faces found in a probe with several: resend with its index or box."""

    index = ma.fields.Integer(required=True)
    box = ma.fields.List(ma.fields.Float(), required=True)
    detection_score = ma.fields.Float()


@dataclass(frozen=True, slots=True)
class Extension:
    """Members a group of problem types adds to RFC 9457's, documented as one schema."""

    name: str
    fields: Mapping[str, ma.fields.Field[Any]]


_ERRORS = {"errors": ma.fields.List(ma.fields.Nested(FieldErrorSchema), required=True)}
_FACES = Extension(
    "MultipleFacesProblem",
    {**_ERRORS, "faces": ma.fields.List(ma.fields.Nested(FaceChoiceSchema), required=True)},
)
_BASIS = Extension(
    "LegalBasisProblem",
    {
        "legal_basis_id": ma.fields.UUID(required=True),
        "legal_basis_state": ma.fields.String(
            required=True,
            validate=ma.validate.OneOf(
                ("pending", "rejected", "expired", "revoked", "lapsed", "exhausted")
            ),
        ),
    },
)
_FLOOR = Extension(
    "ThresholdProblem",
    {
        **_ERRORS,
        "threshold_floor": ma.fields.Float(required=True),
        "threshold_floor_far": ma.fields.Float(required=True),
    },
)
_INVALID = Extension("ValidationProblem", _ERRORS)


@dataclass(frozen=True, slots=True)
class ProblemType:
    """One problem type. ``on`` selects the operations that can return it:

    ``*`` every operation; ``secured`` those that need a key; ``input`` those with a body or
    query parameters; ``path`` those with path parameters; ``upload`` multipart uploads;
    ``costly`` the rate-limited costly ones; otherwise ``<blueprint>`` or
    ``<blueprint>:<METHOD>`` or ``<blueprint>.<View>:<METHOD>``; ``console`` the console's
    pages (no API operation).
    """

    code: str
    status: int
    title: str
    on: tuple[str, ...]
    extensions: Extension | None = None
    generic: bool = False  # an HTTP error of Flask or its extensions: type about:blank

    @property
    def type_uri(self) -> str:
        return "about:blank" if self.generic else PROBLEM_BASE + self.code


_P = ProblemType
# Selects no API operation: the problem types only the console's pages answer.
CONSOLE = "console"
_BASES = ("searches:POST", "legal_bases:POST")
_DECIDE = (
    "registrations:POST",
    "account_requests:POST",
    "legal_bases:POST",
    "proposals:POST",
    "erasures:POST",
)

PROBLEMS: tuple[ProblemType, ...] = (
    # Generic HTTP errors (Flask, webargs, flask-limiter): type about:blank.
    _P("bad-request", 400, "Bad request", ("*",), generic=True),
    _P("content-too-large", 413, "Content too large", ("input",), generic=True),
    _P("too-many-requests", 429, "Too many requests", ("secured", "public"), generic=True),
    _P("validation-error", 422, "Validation failed", ("input",), _INVALID),
    # Authentication and permission.
    _P("missing-credential", 401, "API key required", ("secured",)),
    _P("malformed-credential", 401, "Malformed Authorization header", ("secured",)),
    _P("invalid-credential", 401, "Invalid API key", ("secured",)),
    _P("credential-expired", 401, "API key expired", ("secured",)),
    _P("credential-revoked", 401, "API key revoked", ("secured",)),
    _P("forbidden", 403, "Forbidden", ("secured",)),
    _P("account-suspended", 403, "Account suspended", ("secured",)),
    _P("agency-suspended", 403, "Agency suspended", ("secured", "account_requests:POST")),
    _P("not-found", 404, "Not found", ("path",)),
    # Identity: registrations, account requests, claims, accounts, credentials.
    _P("duplicate-registration", 409, "Registration already made", ("registrations:POST",)),
    _P("duplicate-request", 409, "Request already made", ("account_requests:POST",)),
    _P("already-decided", 409, "Already decided", _DECIDE),
    _P("four-eyes-required", 403, "A second person must take this decision", _DECIDE),
    _P(
        "two-administrators-required",
        403,
        "This act needs two administrators",
        ("proposals:POST", "agencies:POST", "accounts:POST", "source_policies:POST"),
    ),
    _P("duplicate-proposal", 409, "The same act is already proposed", ("proposals:POST",)),
    _P("already-claimed", 409, "Already claimed", ("registrations:POST", "account_requests:POST")),
    _P(
        "claim-expired",
        403,
        "The claim secret has expired",
        ("registrations:POST", "account_requests:POST"),
    ),
    _P("not-approved", 409, "Not approved", ("registrations:POST", "account_requests:POST")),
    _P(
        "wrong-claim-secret",
        403,
        "The claim id or the claim secret is wrong",
        ("registrations:POST", "account_requests:POST"),
    ),
    _P(
        "person-has-account",
        409,
        "The person already holds an active account in this agency",
        ("account_requests:POST", "staff:POST"),
    ),
    _P("own-account", 403, "Not on your own account", ("accounts:POST",)),
    _P("already-active", 409, "Already active", ("accounts:POST", "agencies:POST")),
    _P("already-suspended", 409, "Already suspended", ("accounts:POST", "agencies:POST")),
    _P("already-revoked", 409, "Already revoked", ("credentials:DELETE",)),
    _P("too-many-credentials", 409, "Too many API keys", ("credentials:POST",)),
    # The console's passkeys and sessions (its pages, and the JSON its script asks for).
    _P("passkey-rejected", 401, "Passkey not accepted", (CONSOLE,)),
    _P("invalid-passkey", 422, "Unreadable passkey answer", (CONSOLE,)),
    _P("passkey-enrolled", 409, "Passkey already enrolled", (CONSOLE,)),
    _P("last-passkey", 409, "Last passkey of the account", (CONSOLE,)),
    _P("session-idle", 401, "Session ended for inactivity", (CONSOLE,)),
    _P("conflict", 409, "Conflict with the current state", ("*",)),
    _P("policy-violation", 403, "Not allowed by the rules", ("*",)),
    _P("invalid-input", 422, "Invalid input", ("input",), _INVALID),
    # Legal bases.
    _P("legal-basis-not-found", 404, "No such legal basis", _BASES),
    _P("legal-basis-pending", 403, "Legal basis not yet approved", _BASES, _BASIS),
    _P("legal-basis-rejected", 403, "Legal basis rejected", _BASES, _BASIS),
    _P("legal-basis-expired", 403, "Legal basis expired", _BASES, _BASIS),
    _P("legal-basis-revoked", 403, "Legal basis revoked", _BASES, _BASIS),
    _P("legal-basis-lapsed", 403, "Legal basis lapsed", _BASES, _BASIS),
    _P("legal-basis-exhausted", 403, "Legal basis has no searches left", _BASES, _BASIS),
    _P("legal-basis-not-urgent", 409, "Legal basis is not urgent", ("legal_bases:POST",)),
    _P("already-ratified", 409, "Already ratified", ("legal_bases:POST",)),
    # Gallery, images and faces.
    _P("image-too-large", 413, "Image too large", ("upload",)),
    _P("unsupported-image-type", 415, "Unsupported image type", ("upload",)),
    _P("invalid-image", 422, "Unreadable image", ("upload",)),
    _P("no-face", 422, "No face found", ("upload",)),
    _P("photo-already-enrolled", 409, "Photo already enrolled", ("gallery:POST",)),
    _P("source-blocked", 403, "Source site blocked", ("gallery:POST",)),
    _P(
        "multiple-faces",
        422,
        "Several faces in the probe",
        ("searches:POST", "erasures:POST"),
        _FACES,
    ),
    # Searches and reviews.
    _P(
        "probe-quality-too-low",
        422,
        "Probe face too small or unclear",
        ("searches:POST",),
        _INVALID,
    ),
    _P(
        "threshold-below-floor",
        422,
        "Threshold below the calibrated floor",
        ("searches:POST",),
        _FLOOR,
    ),
    _P("reviewer-is-searcher", 403, "The searcher cannot review", ("searches:POST",)),
    _P("already-reviewed", 409, "Already reviewed", ("searches:POST",)),
    _P("results-deleted", 409, "Search results deleted", ("searches",)),
    # The ledger.
    _P("ledger-empty", 404, "The ledger is empty", ("ledger",)),
    _P("entry-not-found", 404, "No such ledger entry", ("ledger",)),
    _P("checkpoint-not-found", 404, "No such checkpoint", ("ledger",)),
    _P("tree-size-not-reached", 422, "Tree size not reached", ("ledger",)),
    _P("tile-not-found", 404, "No such tile", ("ledger",)),
    # Service state: any operation may meet them.
    _P("database-unavailable", 503, "Database unavailable", ("*",)),
    _P("ledger-unavailable", 503, "The ledger cannot record now", ("*",)),
    _P("ledger-key-unavailable", 503, "The ledger signing key cannot be read", ("*",)),
    _P(
        "ledger-inconsistent",
        503,
        "The ledger's database does not extend what was signed",
        ("*",),
    ),
    _P("service-unavailable", 503, "Service unavailable", ("*",)),
    _P(
        "rate-limit-store-unavailable",
        503,
        "Rate-limit store unavailable",
        ("secured", "registrations:POST", "account_requests:POST"),
    ),
    _P("model-unavailable", 503, "Face models unavailable", ("upload",)),
    _P("vector-index-unavailable", 503, "Vector index unavailable", ("upload",)),
    _P("internal-error", 500, "Internal server error", ("*",), generic=True),
)


@dataclass(frozen=True, slots=True)
class Operation:
    """What the spec says of an operation, as far as its problems go."""

    endpoint: str  # "<blueprint>.<View>"
    method: str
    secured: bool
    has_input: bool
    has_path: bool
    upload: bool
    costly: bool

    def matches(self, selector: str) -> bool:
        blueprint, _, _view = self.endpoint.partition(".")
        name, _, method = selector.partition(":")
        flags = {
            "*": True,
            "secured": self.secured,
            "public": not self.secured,
            "input": self.has_input,
            "path": self.has_path,
            "upload": self.upload,
            "costly": self.costly,
        }
        if name in flags and not method:
            return flags[name]
        if method and method != self.method:
            return False
        return name in (blueprint, self.endpoint)


def problems_for(operation: Operation) -> list[ProblemType]:
    """The problem types ``operation`` can return, in table order."""
    return [p for p in PROBLEMS if any(operation.matches(s) for s in p.on)]


def _field_type(field: ma.fields.Field[Any]) -> str:
    if isinstance(field, ma.fields.List):
        return "array"
    if isinstance(field, ma.fields.Float):
        return "number"
    return "string"


def render_markdown(operations: Iterable[tuple[str, str, list[ProblemType]]]) -> str:
    """``docs/problems.md``: every problem type, its status, members, and operations."""
    used: dict[str, list[str]] = {p.code: [] for p in PROBLEMS}
    for method, path, problems in operations:
        for problem in problems:
            used[problem.code].append(f"`{method} {path}`")
    lines = [
        "# Problem types",
        "",
        "Generated from `api/problems.py` by `facewarden openapi write`; do not edit.",
        "",
        "Every error is an RFC 9457 problem (`application/problem+json`) with `type`, `title`,",
        "`status`, `detail`, `instance` and `request_id`; validation problems add `errors`, a",
        "list of `{in, field, detail}`. A type is `/problems/<code>`, or `about:blank` for the",
        "HTTP errors marked generic.",
        "",
        "| Code | Status | Title | Extra members |",
        "|---|---|---|---|",
    ]
    for p in PROBLEMS:
        extra = ", ".join(
            f"`{name}` ({_field_type(field)})"
            for name, field in (p.extensions.fields if p.extensions else {}).items()
        )
        code = f"{p.code} (generic)" if p.generic else p.code
        lines.append(f"| `{code}` | {p.status} | {p.title} | {extra} |")
    lines += ["", "## Operations of each problem type", ""]
    for p in PROBLEMS:
        where = ", ".join(used[p.code]) or ("the console" if CONSOLE in p.on else "none")
        lines.append(f"- `{p.code}`: {where}")
    lines.append("")
    return "\n".join(lines)


def extension_schema(problem: ProblemType) -> type[ma.Schema] | None:
    """The members ``problem`` adds to a problem, as a schema, or None."""
    if not problem.extensions:
        return None
    return ma.Schema.from_dict(dict(problem.extensions.fields), name=problem.extensions.name)


def headers_for(status: int) -> dict[str, Any]:
    """The headers a problem of ``status`` always carries."""
    if status == 401:
        return {
            "WWW-Authenticate": {
                "description": "The scheme to authenticate with.",
                "required": True,
                "schema": {"type": "string"},
            }
        }
    if status in (429, 503):
        return {
            "Retry-After": {
                "description": "Seconds until a request may succeed again.",
                "required": status == 429,
                "schema": {"type": "integer", "minimum": 0},
            }
        }
    return {}
