"""Schemas of agency registrations: the application, its receipt, the review, the claim."""

from __future__ import annotations

import marshmallow as ma

from api.schemas.agencies import AgencyDetailsViewSchema
from api.schemas.fields import (
    ApplicationViewSchema,
    Country,
    Name,
    PageQuerySchema,
    PersonSchema,
    PersonViewSchema,
    Text,
    ValueSchema,
    page_schema,
)
from governance.identity.agencies import AgencyDetails, AgencyKind
from governance.identity.vocabulary import ApplicationStatus

__all__ = [
    "AgencyDetailsSchema",
    "ClaimSchema",
    "IssuedCredentialSchema",
    "RegistrationPageSchema",
    "RegistrationQuerySchema",
    "RegistrationSchema",
    "RegistrationSubmitSchema",
    "SubmittedSchema",
]


class AgencyDetailsSchema(ValueSchema):
    builds = AgencyDetails

    name = Name(max_length=200, required=True, metadata={"example": "Police judiciaire de Lyon"})
    kind = ma.fields.Enum(AgencyKind, by_value=True, required=True)
    country = Country(required=True)
    jurisdiction = Text(max_length=200, required=True, metadata={"example": "Rhône"})


class RegistrationSubmitSchema(ma.Schema):
    agency = ma.fields.Nested(AgencyDetailsSchema, required=True)
    contact = ma.fields.Nested(PersonSchema, required=True)
    intended_use = Text(max_length=4000, min_length=20, multiline=True, required=True)


class SubmittedSchema(ma.Schema):
    """A receipt. The claim secret is never in it: it is mailed to the person on approval."""

    id = ma.fields.UUID(required=True)
    status = ma.fields.Enum(ApplicationStatus, by_value=True, required=True)


class ClaimSchema(ma.Schema):
    claim_secret = ma.fields.String(
        required=True, validate=ma.validate.Length(min=1, max=200), metadata={"writeOnly": True}
    )


class CredentialViewSchema(ma.Schema):
    id = ma.fields.UUID(required=True)
    account_id = ma.fields.UUID(required=True)
    lookup_id = ma.fields.String(required=True)
    label = ma.fields.String(allow_none=True)
    status = ma.fields.String(required=True)
    created_at = ma.fields.DateTime(required=True)
    expires_at = ma.fields.DateTime(required=True)
    last_used_at = ma.fields.DateTime(allow_none=True)
    revoked_at = ma.fields.DateTime(allow_none=True)


class IssuedCredentialSchema(ma.Schema):
    """A new credential; ``api_key`` is shown this once and stored only as a hash."""

    credential = ma.fields.Nested(CredentialViewSchema, required=True)
    api_key = ma.fields.String(required=True)


class RegistrationSchema(ApplicationViewSchema):
    agency = ma.fields.Nested(AgencyDetailsViewSchema, required=True)
    contact = ma.fields.Nested(PersonViewSchema, required=True)
    intended_use = ma.fields.String(required=True)
    submitted_at = ma.fields.DateTime(required=True)


RegistrationPageSchema = page_schema(RegistrationSchema, "RegistrationPage")


class RegistrationQuerySchema(PageQuerySchema):
    status = ma.fields.Enum(ApplicationStatus, by_value=True)
