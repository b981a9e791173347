"""Schemas of accounts."""

from __future__ import annotations

import marshmallow as ma

from api.schemas.fields import PageQuerySchema, StandingSchema, page_schema
from governance.identity.permissions import Role

__all__ = ["AccountPageSchema", "AccountQuerySchema", "AccountSchema"]


class AccountSchema(StandingSchema):
    id = ma.fields.UUID(required=True)
    role = ma.fields.Enum(Role, by_value=True, required=True)
    agency_id = ma.fields.UUID(allow_none=True)
    name = ma.fields.String(required=True)
    email = ma.fields.String(required=True)
    phone = ma.fields.String(allow_none=True)
    job_title = ma.fields.String(allow_none=True)


AccountPageSchema = page_schema(AccountSchema, "AccountPage")


class AccountQuerySchema(PageQuerySchema):
    agency_id = ma.fields.UUID()
    role = ma.fields.Enum(Role, by_value=True)
    status = ma.fields.String(validate=ma.validate.OneOf(["active", "suspended"]))
