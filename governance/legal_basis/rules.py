"""The rules every act on a legal basis applies: who may reach it, what is valid, why it is refused.

Another agency's basis answers ``legal-basis-not-found``, exactly like a basis that does not
exist. Refusals because of a basis's state carry a distinct problem type per state.
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from sqlalchemy.orm import Session

from governance.core.errors import NotFound, PermissionDenied, PolicyViolation
from governance.identity.permissions import Permission
from governance.identity.persons import same_person
from governance.identity.principals import Principal, require_scope, visible
from governance.legal_basis.deadlines import Standing, read_standing
from governance.legal_basis.models import LegalBasis
from governance.legal_basis.values import Authorisation, AuthorisationKind, BasisPolicy

__all__ = [
    "BasisUnusable",
    "authorisation_errors",
    "not_found",
    "reach",
    "reach_standing",
    "second_person",
]

_REFUSALS = {
    "pending": "It awaits the approval of a supervisor who is not its author.",
    "rejected": "It was rejected; record a new legal basis.",
    "expired": "Its authorisation has expired; record a new legal basis.",
    "revoked": "It was revoked by a supervisor.",
    "lapsed": (
        "Its urgent authorisation was not ratified in time, or ratification was refused; "
        "the results of its searches were deleted."
    ),
    "exhausted": "It has no searches left; record a new legal basis to search again.",
}


class BasisUnusable(PolicyViolation):
    """The legal basis cannot be used or decided in its current state.

    ``code`` names the state: ``legal-basis-pending``, ``-rejected``, ``-expired``, ``-revoked``,
    ``-lapsed`` or ``-exhausted``.
    """

    def __init__(self, basis_id: UUID, state: str) -> None:
        super().__init__(
            f"Legal basis {basis_id} is {state}. {_REFUSALS[state]}",
            code=f"legal-basis-{state}",
            extra={"legal_basis_id": str(basis_id), "legal_basis_state": state},
        )
        self.state = state


def not_found() -> NotFound:
    """The one answer for a basis that does not exist or belongs to another agency."""
    return NotFound("No such legal basis.", code="legal-basis-not-found")


def reach(
    session: Session,
    principal: Principal,
    permission: Permission,
    basis_id: UUID,
    *,
    lock: bool = False,
) -> LegalBasis:
    """Load a basis the principal may act on with ``permission`` (``lock``: FOR UPDATE).

    Raises PermissionDenied (the role lacks the permission), NotFound (legal-basis-not-found).
    """
    require_scope(principal, permission)
    # Row lock on PostgreSQL so two concurrent decisions cannot both pass their checks;
    # SQLite units of work already hold the database write lock.
    row = session.get(LegalBasis, basis_id, with_for_update=lock)
    if row is None:
        raise not_found()
    _within_reach(principal, permission, row.agency_id)
    return row


def reach_standing(
    session: Session, principal: Principal, permission: Permission, basis_id: UUID
) -> Standing:
    """``reach`` for reading only what deciding a search needs, with one Core query.

    Raises PermissionDenied, NotFound (legal-basis-not-found).
    """
    require_scope(principal, permission)
    standing = read_standing(session, basis_id)
    if standing is None:
        raise not_found()
    _within_reach(principal, permission, standing.agency_id)
    return standing


def _within_reach(principal: Principal, permission: Permission, agency_id: UUID) -> None:
    try:
        visible(principal, permission, agency_id=agency_id, what="legal basis")
    except NotFound as exc:  # another agency's basis: as if it did not exist
        raise not_found() from exc


def second_person(session: Session, principal: Principal, row: LegalBasis, act: str) -> None:
    """Refuse the author of ``row`` a decision only a second person may take: persons are
    compared, so the author's other account (one person, two accounts) is refused too.

    Raises PermissionDenied (four-eyes-required).
    """
    if same_person(session, row.created_by, principal.account_id):
        raise PermissionDenied(
            f"A supervisor other than the author must {act} this legal basis (four eyes).",
            code="four-eyes-required",
        )


def authorisation_errors(
    auth: Authorisation,
    *,
    policy: BasisPolicy,
    now: datetime,
    prefix: str = "",
    not_before: datetime | None = None,
) -> dict[str, list[str]]:
    """Per-field problems of an authorisation at ``now`` (empty when valid): aware dates,
    issued_at <= now < expires_at, validity within the policy, reference and authority
    present, or absent for an urgent one. ``prefix`` dots the field names.
    """
    errors: dict[str, list[str]] = {}
    for name, value in (("issued_at", auth.issued_at), ("expires_at", auth.expires_at)):
        if value.tzinfo is None or value.utcoffset() is None:
            errors[prefix + name] = ["Must carry a UTC offset."]
    if errors:
        return errors
    if auth.issued_at > now:
        errors[prefix + "issued_at"] = ["Must not be in the future."]
    elif not_before is not None and auth.issued_at < not_before:
        errors[prefix + "issued_at"] = ["Must not be before the legal basis was recorded."]
    if auth.expires_at <= now:
        errors[prefix + "expires_at"] = ["Must be in the future."]
    elif auth.expires_at - auth.issued_at > policy.max_validity:
        days = policy.max_validity.days
        errors[prefix + "expires_at"] = [f"Must be at most {days} days after issued_at."]
    named = {"reference": auth.reference, "authority": auth.authority}
    for name, text in named.items():
        if auth.kind is AuthorisationKind.URGENT and text is not None:
            errors[prefix + name] = [
                "Must be absent for an urgent authorisation: ratification attaches it."
            ]
        elif auth.kind is not AuthorisationKind.URGENT and not text:
            errors[prefix + name] = [f"Required for a {auth.kind.value} authorisation."]
    return errors
