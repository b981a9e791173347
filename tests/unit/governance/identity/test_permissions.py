"""The permission table: complete, consistent with the roles, and documented as generated."""

from __future__ import annotations

from pathlib import Path

from governance.identity.permissions import (
    AGENCY_ROLES,
    PERMISSIONS,
    PLATFORM_ROLES,
    Permission,
    Role,
    Scope,
    permission_table_markdown,
    scope_for,
)

DOC = Path(__file__).resolve().parents[4] / "docs" / "permissions.md"
BEGIN, END = "<!-- BEGIN GENERATED TABLE -->", "<!-- END GENERATED TABLE -->"


def test_every_permission_is_granted_to_someone() -> None:
    assert set(PERMISSIONS) == set(Permission)
    assert all(PERMISSIONS[p] for p in Permission)


def test_roles_partition_into_agency_and_platform_roles() -> None:
    assert set(Role) == AGENCY_ROLES | PLATFORM_ROLES
    assert not AGENCY_ROLES & PLATFORM_ROLES


def test_platform_roles_never_hold_an_agency_scope() -> None:
    for permission, grants in PERMISSIONS.items():
        for role in PLATFORM_ROLES:
            assert grants.get(role) is not Scope.AGENCY, (permission, role)


def test_oversight_only_reads() -> None:
    # Oversight may manage its own keys, nothing else that changes state.
    writes = {p for p in Permission if p.value.split(":")[1] not in ("read",)}
    own_keys = {Permission.CREDENTIAL_ISSUE, Permission.CREDENTIAL_REVOKE}
    for permission in writes - own_keys:
        assert scope_for(Role.OVERSIGHT, permission) is None, permission
    for permission in own_keys:
        assert scope_for(Role.OVERSIGHT, permission) is Scope.SELF


def test_only_admins_decide() -> None:
    for permission in (
        Permission.REGISTRATION_REVIEW,
        Permission.ACCOUNT_REQUEST_DECIDE,
        Permission.ACCOUNT_SUSPEND,
        Permission.AGENCY_SUSPEND,
        Permission.STAFF_CREATE,
    ):
        assert set(PERMISSIONS[permission]) == {Role.ADMIN}


def test_the_table_is_immutable() -> None:
    try:
        PERMISSIONS[Permission.AGENCY_READ][Role.CURATOR] = Scope.ANY  # type: ignore[index]
    except TypeError:
        return
    raise AssertionError("PERMISSIONS must be read-only")


def test_docs_hold_the_current_generated_table() -> None:
    text = DOC.read_text(encoding="utf-8")
    start, end = text.index(BEGIN) + len(BEGIN), text.index(END)
    assert text[start:end].strip() == permission_table_markdown().strip(), (
        "docs/permissions.md is stale: paste permission_table_markdown() between the markers"
    )
