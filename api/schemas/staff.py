"""Schemas of staff creation: oversight and curator accounts, which belong to no agency."""

from __future__ import annotations

import marshmallow as ma

from api.schemas.fields import PersonSchema, RoleChoice, reason_text
from governance.identity.permissions import Role

__all__ = ["StaffCreateSchema"]


class StaffCreateSchema(ma.Schema):
    role = RoleChoice(Role.OVERSIGHT, Role.CURATOR, required=True)
    person = ma.fields.Nested(PersonSchema, required=True)
    reason = reason_text(
        metadata={"description": "Why the account is needed (required for oversight)."}
    )
