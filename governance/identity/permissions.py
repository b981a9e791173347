"""The one permission table: which role may do what, and over whose objects.

Views ask ``scope_for(role, permission)`` through ``api.auth.require``; services use the same
scope to keep every agency inside its own data. ``docs/permissions.md`` is generated from
``PERMISSIONS`` by ``permission_table_markdown`` (a test fails when the document is stale).
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from types import MappingProxyType

__all__ = [
    "AGENCY_ROLES",
    "PERMISSIONS",
    "PLATFORM_ROLES",
    "Permission",
    "Role",
    "Scope",
    "permission_table_markdown",
    "scope_for",
]


class Role(StrEnum):
    """What an account is for. Agency roles belong to one agency; platform roles to none."""

    ADMIN = "admin"
    OVERSIGHT = "oversight"
    SUPERVISOR = "supervisor"
    INVESTIGATOR = "investigator"
    CURATOR = "curator"


AGENCY_ROLES = frozenset({Role.SUPERVISOR, Role.INVESTIGATOR})
PLATFORM_ROLES = frozenset({Role.ADMIN, Role.OVERSIGHT, Role.CURATOR})


class Scope(StrEnum):
    """Whose objects a granted permission reaches."""

    ANY = "any"  # every object, whatever its agency
    AGENCY = "agency"  # objects of the caller's own agency; others answer 404
    SELF = "self"  # the caller's own account and credentials; others answer 404


class Permission(StrEnum):
    """An action a view may require. The value is the name used in the docs."""

    REGISTRATION_REVIEW = "registration:review"
    ACCOUNT_REQUEST_CREATE = "account_request:create"
    ACCOUNT_REQUEST_READ = "account_request:read"
    ACCOUNT_REQUEST_DECIDE = "account_request:decide"
    STAFF_CREATE = "staff:create"
    ACCOUNT_READ = "account:read"
    ACCOUNT_SUSPEND = "account:suspend"
    AGENCY_READ = "agency:read"
    AGENCY_SUSPEND = "agency:suspend"
    PROPOSAL_READ = "proposal:read"
    PROPOSAL_DECIDE = "proposal:decide"
    CREDENTIAL_READ = "credential:read"
    CREDENTIAL_ISSUE = "credential:issue"
    CREDENTIAL_REVOKE = "credential:revoke"
    GALLERY_ENROLL = "gallery:enroll"
    GALLERY_READ = "gallery:read"
    SOURCE_POLICY_SET = "source_policy:set"
    SOURCE_POLICY_READ = "source_policy:read"
    ERASURE = "erasure:run"
    LEGAL_BASIS_CREATE = "legal_basis:create"
    LEGAL_BASIS_READ = "legal_basis:read"
    LEGAL_BASIS_DECIDE = "legal_basis:decide"
    LEGAL_BASIS_RATIFY = "legal_basis:ratify"
    LEGAL_BASIS_REVOKE = "legal_basis:revoke"
    LEGAL_BASIS_USE = "legal_basis:use"
    SEARCH_RUN = "search:run"
    SEARCH_READ = "search:read"
    SEARCH_REVIEW = "search:review"
    CANDIDATE_VIEW = "search:view_candidate"
    LEDGER_READ = "ledger:read"
    OVERSIGHT_REPORT = "report:read"


_A, _O, _S, _I, _C = Role.ADMIN, Role.OVERSIGHT, Role.SUPERVISOR, Role.INVESTIGATOR, Role.CURATOR

_TABLE: dict[Permission, dict[Role, Scope]] = {
    Permission.REGISTRATION_REVIEW: {_A: Scope.ANY},
    Permission.ACCOUNT_REQUEST_CREATE: {_S: Scope.AGENCY},
    Permission.ACCOUNT_REQUEST_READ: {_A: Scope.ANY, _S: Scope.AGENCY},
    Permission.ACCOUNT_REQUEST_DECIDE: {_A: Scope.ANY},
    Permission.STAFF_CREATE: {_A: Scope.ANY},
    Permission.ACCOUNT_READ: {
        _A: Scope.ANY,
        _O: Scope.ANY,
        _S: Scope.AGENCY,
        _I: Scope.SELF,
        _C: Scope.SELF,
    },
    Permission.ACCOUNT_SUSPEND: {_A: Scope.ANY},
    Permission.AGENCY_READ: {_A: Scope.ANY, _O: Scope.ANY, _S: Scope.AGENCY, _I: Scope.AGENCY},
    Permission.AGENCY_SUSPEND: {_A: Scope.ANY},
    Permission.PROPOSAL_READ: {_A: Scope.ANY, _O: Scope.ANY},
    Permission.PROPOSAL_DECIDE: {_A: Scope.ANY},
    Permission.CREDENTIAL_READ: {
        _A: Scope.ANY,
        _O: Scope.SELF,
        _S: Scope.SELF,
        _I: Scope.SELF,
        _C: Scope.SELF,
    },
    Permission.CREDENTIAL_ISSUE: {r: Scope.SELF for r in Role},
    Permission.CREDENTIAL_REVOKE: {
        _A: Scope.ANY,
        _O: Scope.SELF,
        _S: Scope.SELF,
        _I: Scope.SELF,
        _C: Scope.SELF,
    },
    Permission.GALLERY_ENROLL: {_C: Scope.ANY},
    # Provenance (source URLs, subject references) is the curators' alone: an admin who can
    # compare a probe with the gallery (erasure:run) must not turn a face id into a person.
    Permission.GALLERY_READ: {_C: Scope.ANY},
    Permission.SOURCE_POLICY_SET: {_A: Scope.ANY},
    Permission.SOURCE_POLICY_READ: {_A: Scope.ANY, _O: Scope.ANY, _C: Scope.ANY},
    Permission.ERASURE: {_A: Scope.ANY},
    Permission.LEGAL_BASIS_CREATE: {_S: Scope.AGENCY, _I: Scope.AGENCY},
    Permission.LEGAL_BASIS_READ: {_O: Scope.ANY, _S: Scope.AGENCY, _I: Scope.AGENCY},
    Permission.LEGAL_BASIS_DECIDE: {_S: Scope.AGENCY},
    Permission.LEGAL_BASIS_RATIFY: {_S: Scope.AGENCY},
    Permission.LEGAL_BASIS_REVOKE: {_S: Scope.AGENCY},
    Permission.LEGAL_BASIS_USE: {_S: Scope.AGENCY, _I: Scope.AGENCY},
    Permission.SEARCH_RUN: {_S: Scope.AGENCY, _I: Scope.AGENCY},
    Permission.SEARCH_READ: {_S: Scope.AGENCY, _I: Scope.AGENCY},
    Permission.SEARCH_REVIEW: {_S: Scope.AGENCY, _I: Scope.AGENCY},
    Permission.CANDIDATE_VIEW: {_S: Scope.AGENCY, _I: Scope.AGENCY},
    Permission.LEDGER_READ: {_A: Scope.ANY, _O: Scope.ANY},
    Permission.OVERSIGHT_REPORT: {_A: Scope.ANY, _O: Scope.ANY},
}

PERMISSIONS: Mapping[Permission, Mapping[Role, Scope]] = MappingProxyType(
    {p: MappingProxyType(dict(_TABLE.get(p, {}))) for p in Permission}
)

_DESCRIPTIONS: Mapping[Permission, str] = {
    Permission.REGISTRATION_REVIEW: "List, read, approve and reject agency registrations",
    Permission.ACCOUNT_REQUEST_CREATE: "Ask for another account in one's agency",
    Permission.ACCOUNT_REQUEST_READ: "List and read account requests",
    Permission.ACCOUNT_REQUEST_DECIDE: "Approve or reject account requests",
    Permission.STAFF_CREATE: "Create oversight and curator accounts",
    Permission.ACCOUNT_READ: "List and read accounts",
    Permission.ACCOUNT_SUSPEND: "Suspend and reinstate accounts (oversight: by a proposal)",
    Permission.AGENCY_READ: "List and read agencies",
    Permission.AGENCY_SUSPEND: "Suspend (with a confirmed proposal) and reinstate agencies",
    Permission.PROPOSAL_READ: "List and read proposals of acts that need two administrators",
    Permission.PROPOSAL_DECIDE: "Propose such an act, or confirm or reject another's proposal",
    Permission.CREDENTIAL_READ: "List and read API credentials (never their secrets)",
    Permission.CREDENTIAL_ISSUE: "Create another API credential for oneself (rotation)",
    Permission.CREDENTIAL_REVOKE: "Revoke API credentials",
    Permission.GALLERY_ENROLL: "Enrol gallery photos with their provenance",
    Permission.GALLERY_READ: (
        "List and read gallery photos with their provenance (source URL, subject reference), "
        "faces and thumbnails"
    ),
    Permission.SOURCE_POLICY_SET: "Block or allow a source site (a block purges its faces)",
    Permission.SOURCE_POLICY_READ: "List and read source-site policies",
    Permission.ERASURE: (
        "Erase a data subject's photos by photo or source URL; by probe: preview under a "
        "data-subject request (recorded), confirmed by a second admin"
    ),
    Permission.LEGAL_BASIS_CREATE: "Record a legal basis (case, offence, authorisation, quota)",
    Permission.LEGAL_BASIS_READ: "List and read legal bases, their state and remaining searches",
    Permission.LEGAL_BASIS_DECIDE: "Approve or reject a legal basis someone else recorded",
    Permission.LEGAL_BASIS_RATIFY: "Record whether an urgent basis was ratified or refused",
    Permission.LEGAL_BASIS_REVOKE: "Revoke a legal basis at once",
    Permission.LEGAL_BASIS_USE: "Spend searches of an approved legal basis (the search service)",
    Permission.SEARCH_RUN: "Run a face search under an approved legal basis of one's agency",
    Permission.SEARCH_READ: "List and read the agency's searches and their review state",
    Permission.SEARCH_REVIEW: "Review candidates of a colleague's search (not one's own)",
    Permission.CANDIDATE_VIEW: "View thumbnails and photos of the agency's search candidates",
    Permission.LEDGER_READ: "Read ledger entries, checkpoints and Merkle proofs",
    Permission.OVERSIGHT_REPORT: "Read accountability reports recomputed from the ledger",
}


def scope_for(role: Role, permission: Permission) -> Scope | None:
    """How far ``role`` holds ``permission``, or None when it does not hold it."""
    return PERMISSIONS[permission].get(role)


def permission_table_markdown() -> str:
    """The permission table as Markdown, the generated part of ``docs/permissions.md``."""
    roles = list(Role)
    lines = [
        "| Permission | What it allows | " + " | ".join(r.value for r in roles) + " |",
        "|---|---|" + "---|" * len(roles),
    ]
    for permission in Permission:
        grants = PERMISSIONS[permission]
        cells = [grants[r].value if r in grants else "—" for r in roles]
        lines.append(
            f"| `{permission.value}` | {_DESCRIPTIONS[permission]} | " + " | ".join(cells) + " |"
        )
    return "\n".join(lines) + "\n"
