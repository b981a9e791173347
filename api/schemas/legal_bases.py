"""Schemas of legal bases: the record, the ratification, the view, the offence allowlist.

Types, lengths and aware timestamps are checked here; the rules that depend on the deployment
or the clock (allowed offences, dates against now, the quota cap) are the service's, and come
back as the same per-field problem.
"""

from __future__ import annotations

from typing import Any

import marshmallow as ma

from api.schemas.fields import (
    AwareDateTime,
    PageQuerySchema,
    Text,
    ValueSchema,
    page_schema,
    reason_text,
    view_schema,
)
from governance.legal_basis.values import (
    JUSTIFICATION_MIN_CHARS,
    Authorisation,
    AuthorisationKind,
    BasisDraft,
    BasisStatus,
    LapseCause,
    Ratification,
    RatificationOutcome,
)

__all__ = [
    "LegalBasisCreateSchema",
    "LegalBasisPageSchema",
    "LegalBasisQuerySchema",
    "LegalBasisSchema",
    "OffenceCategorySchema",
    "RatificationSchema",
]


def _reference(**kwargs: Any) -> Text:
    return Text(max_length=200, load_default=None, allow_none=True, **kwargs)


class AuthorisationSchema(ValueSchema):
    builds = Authorisation

    kind = ma.fields.Enum(AuthorisationKind, by_value=True, required=True)
    reference = _reference(
        metadata={"description": "The warrant or decision number; absent for `urgent`."}
    )
    authority = _reference(
        metadata={"description": "Who issued it (court, authority); absent for `urgent`."}
    )
    issued_at = AwareDateTime(required=True)
    expires_at = AwareDateTime(required=True)


class LegalBasisCreateSchema(ValueSchema):
    builds = BasisDraft

    case_number = Text(max_length=64, required=True, metadata={"example": "PJ-LYON-2026-00417"})
    offence_category = ma.fields.String(
        required=True,
        validate=ma.validate.Length(min=1, max=64),
        metadata={
            "description": "A slug from GET /v1/legal-bases/offence-categories.",
            "example": "kidnapping_hostage_taking",
        },
    )
    legal_provision = Text(
        max_length=500, required=True, metadata={"example": "Code de procédure pénale, art. 706-96"}
    )
    authorisation = ma.fields.Nested(AuthorisationSchema, required=True)
    justification = Text(
        max_length=4000,
        min_length=JUSTIFICATION_MIN_CHARS,
        multiline=True,
        required=True,
        metadata={"description": "Why a face search is necessary and proportionate here."},
    )
    max_searches = ma.fields.Integer(
        required=True,
        validate=ma.validate.Range(min=1),
        metadata={"description": "Searches allowed under this basis (capped by policy)."},
    )


class RatificationSchema(ValueSchema):
    """Granted: the authorisation's reference, authority and validity. Refused: a reason."""

    builds = Ratification

    outcome = ma.fields.Enum(RatificationOutcome, by_value=True, required=True)
    reference = _reference()
    authority = _reference()
    issued_at = AwareDateTime(load_default=None, allow_none=True)
    expires_at = AwareDateTime(load_default=None, allow_none=True)
    reason = reason_text(load_default=None, allow_none=True)


AuthorisationViewSchema = view_schema(AuthorisationSchema, "AuthorisationView")


class DecisionSchema(ma.Schema):
    at = ma.fields.DateTime(required=True)
    by = ma.fields.UUID(allow_none=True)
    reason = ma.fields.String(allow_none=True)


class RatificationViewSchema(ma.Schema):
    deadline = ma.fields.DateTime(required=True)
    outcome = ma.fields.Enum(RatificationOutcome, by_value=True, allow_none=True)
    recorded_at = ma.fields.DateTime(allow_none=True)
    recorded_by = ma.fields.UUID(allow_none=True)
    reason = ma.fields.String(allow_none=True)


class LegalBasisSchema(ma.Schema):
    """A legal basis; ``usable`` says whether a search may run under it now."""

    id = ma.fields.UUID(required=True)
    agency_id = ma.fields.UUID(required=True)
    status = ma.fields.Enum(BasisStatus, by_value=True, required=True)
    usable = ma.fields.Boolean(required=True)
    case_number = ma.fields.String(required=True)
    offence_category = ma.fields.String(required=True)
    legal_provision = ma.fields.String(required=True)
    authorisation = ma.fields.Nested(AuthorisationViewSchema, required=True)
    justification = ma.fields.String(required=True)
    max_searches = ma.fields.Integer(required=True)
    searches_used = ma.fields.Integer(required=True)
    searches_left = ma.fields.Integer(required=True)
    expires_at = ma.fields.DateTime(required=True)
    ratification_deadline = ma.fields.DateTime(allow_none=True)
    created_at = ma.fields.DateTime(required=True)
    created_by = ma.fields.UUID(required=True)
    decision = ma.fields.Nested(DecisionSchema, allow_none=True)
    ratification = ma.fields.Nested(RatificationViewSchema, allow_none=True)
    revocation = ma.fields.Nested(DecisionSchema, allow_none=True)
    expired_at = ma.fields.DateTime(allow_none=True)
    lapsed_at = ma.fields.DateTime(allow_none=True)
    lapse_cause = ma.fields.Enum(LapseCause, by_value=True, allow_none=True)
    results_deleted = ma.fields.Integer(allow_none=True)


LegalBasisPageSchema = page_schema(LegalBasisSchema, "LegalBasisPage")


class LegalBasisQuerySchema(PageQuerySchema):
    status = ma.fields.Enum(BasisStatus, by_value=True)


class OffenceCategorySchema(ma.Schema):
    slug = ma.fields.String(required=True)
    label = ma.fields.String(required=True)
