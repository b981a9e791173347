"""Schemas of agencies."""

from __future__ import annotations

import marshmallow as ma

from api.schemas.fields import PageQuerySchema, StandingSchema, page_schema
from governance.identity.agencies import AgencyKind

__all__ = ["AgencyDetailsViewSchema", "AgencyPageSchema", "AgencyQuerySchema", "AgencySchema"]


class AgencyDetailsViewSchema(ma.Schema):
    name = ma.fields.String(required=True)
    kind = ma.fields.Enum(AgencyKind, by_value=True, required=True)
    country = ma.fields.String(required=True)
    jurisdiction = ma.fields.String(required=True)


class AgencySchema(AgencyDetailsViewSchema, StandingSchema):
    """An agency: the details it registered with, and its standing."""

    id = ma.fields.UUID(required=True)


AgencyPageSchema = page_schema(AgencySchema, "AgencyPage")


class AgencyQuerySchema(PageQuerySchema):
    status = ma.fields.String(validate=ma.validate.OneOf(["active", "suspended"]))
