"""Schemas of staff creation: oversight and curator accounts, which belong to no agency."""

from __future__ import annotations

import marshmallow as ma

from api.schemas.fields import PersonSchema, Text
from governance.permissions import Role

__all__ = ["StaffCreateSchema"]


class StaffCreateSchema(ma.Schema):
    role = ma.fields.Enum(
        Role,
        by_value=True,
        required=True,
        validate=ma.validate.OneOf([Role.OVERSIGHT, Role.CURATOR]),
    )
    person = ma.fields.Nested(PersonSchema, required=True)
    reason = Text(
        max_length=2000,
        min_length=3,
        multiline=True,
        metadata={"description": "Why the account is needed (required for oversight)."},
    )
