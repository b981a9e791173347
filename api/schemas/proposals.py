"""Schemas of proposals: acts that one administrator proposes and another confirms."""

from __future__ import annotations

import marshmallow as ma

from api.schemas.fields import PageQuerySchema, Text, page_schema
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
    reason = Text(max_length=2000, min_length=3, multiline=True, required=True)


class ProposalSchema(ma.Schema):
    id = ma.fields.UUID(required=True)
    action = ma.fields.Enum(ProposedAct, by_value=True, required=True)
    target_id = ma.fields.UUID(required=True)
    status = ma.fields.String(required=True)
    reason = ma.fields.String(required=True)
    proposed_by = ma.fields.UUID(required=True)
    proposed_at = ma.fields.DateTime(required=True)
    decided_by = ma.fields.UUID(allow_none=True)
    decided_at = ma.fields.DateTime(allow_none=True)
    decision_reason = ma.fields.String(allow_none=True)


ProposalPageSchema = page_schema(ProposalSchema, "ProposalPage")


class ProposalQuerySchema(PageQuerySchema):
    status = ma.fields.String(validate=ma.validate.OneOf(["pending", "confirmed", "rejected"]))
