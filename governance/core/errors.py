"""The governance error hierarchy: one root, no HTTP. ``api/errors.py`` maps it to problems.

Its root has the shape every domain error shares (``biometrics.errors.DomainError``): a stable
``code``, a ``detail`` for people and optional ``extra`` problem members, set at construction.
"""

from __future__ import annotations

from collections.abc import Mapping

from biometrics.errors import DomainError

__all__ = [
    "Conflict",
    "GovernanceError",
    "InvalidInput",
    "NotFound",
    "PermissionDenied",
    "PolicyViolation",
    "ServiceUnavailable",
    "Unauthenticated",
    "blank_fields",
]


class GovernanceError(DomainError):
    """Root of every error a governance service raises on purpose.

    ``code`` becomes the problem ``type``; ``extra`` holds the members its problem adds.
    """

    code = "governance-error"


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
        self,
        detail: str,
        *,
        fields: Mapping[str, list[str]] | None = None,
        code: str | None = None,
        extra: Mapping[str, object] | None = None,
    ) -> None:
        super().__init__(detail, code=code, extra=extra)
        self.fields = dict(fields or {})


def blank_fields(**required: tuple[str, str]) -> dict[str, list[str]]:
    """The ``InvalidInput`` field messages of the texts left blank, each given as
    ``field=(text, message)``, in their order; empty when every text holds something."""
    return {field: [message] for field, (text, message) in required.items() if not text.strip()}


class ServiceUnavailable(GovernanceError):
    """A dependency (ledger, index, model) cannot serve now; retrying later may work."""

    code = "service-unavailable"
