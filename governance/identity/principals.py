"""Who is acting: the authenticated ``Principal``, its ledger ``Actor``, and agency isolation.

A principal reaches a service only after ``api.auth`` has checked its credential, account and
agency on this very request; the service then asks ``visible`` whether an object is within the
principal's scope, and answers NotFound when it is not, so another agency's objects stay unseen;
a listing keeps only the rows within that scope (``reachable``).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, TypeVar
from uuid import UUID

from sqlalchemy import Select
from sqlalchemy.orm import InstrumentedAttribute

from governance.core.errors import NotFound, PermissionDenied, PolicyViolation
from governance.identity.permissions import Permission, Role, Scope, scope_for
from ledger.entry import Actor

__all__ = [
    "CLI_ACTOR",
    "Principal",
    "TwoAdministratorsRequired",
    "actor_of",
    "applicant_actor",
    "reachable",
    "reason_digest",
    "require_scope",
    "visible",
]

Q = TypeVar("Q", bound=Select[Any])

# Acts started from the operator's command line (``facewarden admin create``).
CLI_ACTOR = Actor(kind="system", id="cli", agency=None)


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller: its account, role, agency (None for platform roles), credential."""

    account_id: UUID
    role: Role
    agency_id: UUID | None
    credential_id: UUID


def actor_of(principal: Principal) -> Actor:
    """The ledger actor for acts of ``principal`` (ids only, never names)."""
    return Actor(
        kind="account",
        id=str(principal.account_id),
        agency=str(principal.agency_id) if principal.agency_id else None,
    )


def applicant_actor(kind: str, object_id: UUID) -> Actor:
    """The ledger actor of an unauthenticated act, named by the object it concerns."""
    return Actor(kind=kind, id=str(object_id), agency=None)


class TwoAdministratorsRequired(PolicyViolation):
    """The act would silence oversight: one administrator proposes it, another confirms"""

    code = "two-administrators-required"

    def __init__(self, act: str) -> None:
        super().__init__(
            f"{act} needs two administrators: propose it at POST /v1/proposals with a reason; "
            "a different administrator confirms it."
        )


def reason_digest(reason: str) -> str:
    """SHA-256 (hex) of a decision's reason: the ledger commits to the text, which may name
    people, while the text itself stays in the database.
    """
    return hashlib.sha256(reason.encode("utf-8")).hexdigest()


def require_scope(principal: Principal, permission: Permission) -> Scope:
    """The scope ``principal`` holds ``permission`` in.

    Raises PermissionDenied when its role lacks the permission.
    """
    scope = scope_for(principal.role, permission)
    if scope is None:
        raise PermissionDenied(
            f"The {principal.role.value} role may not do this ({permission.value}).",
            code="forbidden",
        )
    return scope


def visible(
    principal: Principal,
    permission: Permission,
    *,
    agency_id: UUID | None,
    account_id: UUID | None = None,
    what: str = "object",
) -> None:
    """Check that an object of ``agency_id`` (owned by ``account_id``) is within reach.

    Raises PermissionDenied without the permission, NotFound when the object is outside the
    principal's scope (another agency's, or another person's), so its existence stays hidden.
    """
    scope = require_scope(principal, permission)
    if scope is Scope.ANY:
        return
    if scope is Scope.AGENCY and agency_id is not None and agency_id == principal.agency_id:
        return
    if scope is Scope.SELF and account_id is not None and account_id == principal.account_id:
        return
    raise NotFound(f"No such {what}.")


def reachable(
    query: Q,
    principal: Principal,
    permission: Permission,
    *,
    agency: InstrumentedAttribute[Any],
    account: InstrumentedAttribute[Any] | None = None,
) -> Q:
    """``query`` narrowed to the rows within the principal's reach for ``permission``: all of
    them in scope any; with scope self, those whose ``account`` is the principal's (when the
    rows have one); otherwise those whose ``agency`` is the principal's.

    Raises PermissionDenied without the permission.
    """
    scope = require_scope(principal, permission)
    if scope is Scope.ANY:
        return query
    if scope is Scope.SELF and account is not None:
        return query.where(account == principal.account_id)
    return query.where(agency == principal.agency_id)
