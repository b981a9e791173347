"""Schemas of account requests: a supervisor asks for another account in its agency."""

from __future__ import annotations

import marshmallow as ma

from api.schemas.fields import (
    ApplicationViewSchema,
    PageQuerySchema,
    PersonSchema,
    PersonViewSchema,
    RoleChoice,
    page_schema,
)
from governance.identity.permissions import Role
from governance.identity.vocabulary import ApplicationStatus

__all__ = [
    "AccountRequestCreateSchema",
    "AccountRequestPageSchema",
    "AccountRequestQuerySchema",
    "AccountRequestSchema",
]


class AccountRequestCreateSchema(ma.Schema):
    role = RoleChoice(Role.INVESTIGATOR, Role.SUPERVISOR, required=True)
    person = ma.fields.Nested(PersonSchema, required=True)


class AccountRequestSchema(ApplicationViewSchema):
    requested_by = ma.fields.UUID(required=True)
    role = ma.fields.Enum(Role, by_value=True, required=True)
    person = ma.fields.Nested(PersonViewSchema, required=True)
    requested_at = ma.fields.DateTime(required=True)


AccountRequestPageSchema = page_schema(AccountRequestSchema, "AccountRequestPage")


class AccountRequestQuerySchema(PageQuerySchema):
    status = ma.fields.Enum(ApplicationStatus, by_value=True)
