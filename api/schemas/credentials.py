"""Schemas of API credentials: listing (never a secret), creation for rotation."""

from __future__ import annotations

import marshmallow as ma

from api.schemas.fields import Text
from api.schemas.registrations import CredentialViewSchema, IssuedCredentialSchema

__all__ = [
    "CredentialCreateSchema",
    "CredentialListQuerySchema",
    "CredentialListSchema",
    "CredentialSchema",
    "IssuedCredentialSchema",
]

CredentialSchema = CredentialViewSchema


class CredentialCreateSchema(ma.Schema):
    label = Text(max_length=100, load_default=None, metadata={"example": "rotation 2026-Q4"})


class CredentialListQuerySchema(ma.Schema):
    account_id = ma.fields.UUID(metadata={"description": "Admins only: another account's."})


class CredentialListSchema(ma.Schema):
    items = ma.fields.List(ma.fields.Nested(CredentialViewSchema), required=True)
