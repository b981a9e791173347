"""Schemas of the ledger endpoints: entry ranges, proofs (hex hashes), verifier keys."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import validate

_SEQ = validate.Range(min=0, max=2**53 - 1)
_HASH = ma.fields.String(metadata={"description": "lowercase hex SHA-256", "example": "9f2c…"})


class EntryRangeQuerySchema(ma.Schema):
    start = ma.fields.Integer(
        load_default=0, validate=_SEQ, metadata={"description": "first seq (inclusive)"}
    )
    end = ma.fields.Integer(
        validate=_SEQ,
        metadata={
            "description": "last seq (exclusive); default: the log's end. At most 1000 "
            'entries are returned; a `Link: <…>; rel="next"` header names the next page.'
        },
    )


class InclusionQuerySchema(ma.Schema):
    seq = ma.fields.Integer(required=True, validate=_SEQ)
    size = ma.fields.Integer(required=True, validate=validate.Range(min=1, max=2**53 - 1))


class ConsistencyQuerySchema(ma.Schema):
    first = ma.fields.Integer(required=True, validate=_SEQ, data_key="from")
    second = ma.fields.Integer(required=True, validate=_SEQ, data_key="to")


class KeysQuerySchema(ma.Schema):
    format = ma.fields.String(
        validate=validate.OneOf(["json", "text"]),
        metadata={"description": "`text`: one verifier key a line (also `Accept: text/plain`)"},
    )


class LedgerKeySchema(ma.Schema):
    key = ma.fields.String(
        required=True, metadata={"description": "verifier key name+keyid+base64(0x01||pubkey)"}
    )
    key_id = ma.fields.String(required=True, metadata={"example": "1a2b3c4d"})
    since_seq = ma.fields.Integer(required=True, metadata={"description": "first seq it signs"})


class InclusionProofSchema(ma.Schema):
    seq = ma.fields.Integer(required=True)
    tree_size = ma.fields.Integer(required=True)
    leaf_hash = _HASH
    root = _HASH
    proof = ma.fields.List(ma.fields.String(), required=True)


class ConsistencyProofSchema(ma.Schema):
    first = ma.fields.Integer(required=True, data_key="from")
    second = ma.fields.Integer(required=True, data_key="to")
    first_root = _HASH
    second_root = _HASH
    proof = ma.fields.List(ma.fields.String(), required=True)
