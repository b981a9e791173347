"""One flask-smorest Blueprint per resource; ``BLUEPRINTS`` is the list ``create_app`` registers."""

from __future__ import annotations

from api.blueprint import Blueprint
from api.resources import (
    account_requests,
    accounts,
    agencies,
    credentials,
    erasures,
    gallery,
    health,
    ledger,
    legal_bases,
    oversight,
    proposals,
    registrations,
    searches,
    source_policies,
    staff,
)

__all__ = ["BLUEPRINTS"]

BLUEPRINTS: list[Blueprint] = [
    health.blp,
    registrations.blp,
    account_requests.blp,
    staff.blp,
    accounts.blp,
    agencies.blp,
    proposals.blp,
    credentials.blp,
    gallery.blp,
    source_policies.blp,
    erasures.blp,
    searches.blp,
    legal_bases.blp,
    ledger.blp,
    oversight.blp,
]
