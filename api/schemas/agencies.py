"""Schemas of agencies."""

from __future__ import annotations

import marshmallow as ma

from api.schemas.fields import PageQuerySchema, page_schema
from governance.identity.agencies import AgencyKind

__all__ = ["AgencyPageSchema", "AgencyQuerySchema", "AgencySchema"]


class AgencySchema(ma.Schema):
    id = ma.fields.UUID(required=True)
    name = ma.fields.String(required=True)
    kind = ma.fields.Enum(AgencyKind, by_value=True, required=True)
    country = ma.fields.String(required=True)
    jurisdiction = ma.fields.String(required=True)
    status = ma.fields.String(required=True)
    status_reason = ma.fields.String(allow_none=True)
    created_at = ma.fields.DateTime(required=True)
    status_changed_at = ma.fields.DateTime(required=True)


AgencyPageSchema = page_schema(AgencySchema, "AgencyPage")


class AgencyQuerySchema(PageQuerySchema):
    status = ma.fields.String(validate=ma.validate.OneOf(["active", "suspended"]))
