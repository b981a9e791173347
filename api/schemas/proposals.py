"""Schemas of proposals: acts that one administrator proposes and another confirms."""

from __future__ import annotations

import marshmallow as ma

from api.schemas.fields import DecidedSchema, PageQuerySchema, page_schema, reason_text
from governance.identity.proposals import ProposedAct

__all__ = [
    "ProposalCreateSchema",
    "ProposalPageSchema",
    "ProposalQuerySchema",
    "ProposalSchema",
]


class ProposalCreateSchema(ma.Schema):
    action = ma.fields.Enum(ProposedAct, by_value=True, required=True)
    target_id = ma.fields.UUID(
        required=True, metadata={"description": "The account, credential or agency acted on."}
    )
    reason = reason_text(required=True)


class ProposalSchema(DecidedSchema):
    id = ma.fields.UUID(required=True)
    action = ma.fields.Enum(ProposedAct, by_value=True, required=True)
    target_id = ma.fields.UUID(required=True)
    status = ma.fields.String(required=True)
    reason = ma.fields.String(required=True)
    proposed_by = ma.fields.UUID(required=True)
    proposed_at = ma.fields.DateTime(required=True)


ProposalPageSchema = page_schema(ProposalSchema, "ProposalPage")


class ProposalQuerySchema(PageQuerySchema):
    status = ma.fields.String(validate=ma.validate.OneOf(["pending", "confirmed", "rejected"]))
