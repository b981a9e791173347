"""The application's error hierarchy: one root, no HTTP. ``api/errors.py`` maps it to problems."""

from __future__ import annotations

from collections.abc import Mapping

__all__ = [
    "Conflict",
    "GovernanceError",
    "InvalidInput",
    "NotFound",
    "PermissionDenied",
    "PolicyViolation",
    "ServiceUnavailable",
    "Unauthenticated",
]


class GovernanceError(Exception):
    """Root of every error a governance service raises on purpose.

    ``code`` is a stable, machine-readable name (it becomes the problem ``type``); ``detail`` is
    one sentence for a person, saying what to do where that helps.
    """

    code = "governance-error"

    def __init__(self, detail: str, *, code: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        if code is not None:
            self.code = code


class NotFound(GovernanceError):
    """The object does not exist, or the caller may not know that it does."""

    code = "not-found"


class Unauthenticated(GovernanceError):
    """No valid credential was presented."""

    code = "unauthenticated"


class PermissionDenied(GovernanceError):
    """The caller is known but its role or status does not allow the action."""

    code = "forbidden"


class Conflict(GovernanceError):
    """The action clashes with the object's current state or with another object."""

    code = "conflict"


class PolicyViolation(GovernanceError):
    """The action is well-formed but the rules forbid it (expired basis, blocked site, ...)."""

    code = "policy-violation"


class InvalidInput(GovernanceError):
    """Input that passed the schema but fails a domain check, with per-field messages."""

    code = "invalid-input"

    def __init__(
        self, detail: str, *, fields: Mapping[str, list[str]] | None = None, code: str | None = None
    ) -> None:
        super().__init__(detail, code=code)
        self.fields = dict(fields or {})


class ServiceUnavailable(GovernanceError):
    """A dependency (ledger, index, model) cannot serve now; retrying later may work."""

    code = "service-unavailable"
