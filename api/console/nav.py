"""The console's navigation: each page module lists its pages, shown to the roles that may
use them."""

from __future__ import annotations

from dataclasses import dataclass

from api.console.security import console_principal
from governance.identity.permissions import Permission, scope_for

__all__ = ["NavItem", "visible"]


@dataclass(frozen=True, slots=True)
class NavItem:
    """A page in the navigation: shown to roles that hold ``permission`` (None: everyone
    signed in), in ``order``."""

    endpoint: str
    label: str
    permission: Permission | None = None
    order: int = 50


def visible(items: tuple[NavItem, ...]) -> list[NavItem]:
    """The items the signed-in person's role may use, in order (none when signed out)."""
    principal = console_principal()
    if principal is None:
        return []
    return sorted(
        (
            item
            for item in items
            if item.permission is None or scope_for(principal.role, item.permission) is not None
        ),
        key=lambda item: (item.order, item.label),
    )
