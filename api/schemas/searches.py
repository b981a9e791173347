"""Schemas of searches: the multipart request, the candidate list, the receipt, reviews."""

from __future__ import annotations

import re
from typing import Any

import marshmallow as ma

from api.schemas.fields import PageQuerySchema, Text, page_schema
from api.schemas.gallery import ImageFile, QualitySchema
from governance.search.models import VERDICTS

_NUMBER = r"-?\d{1,15}(?:\.\d{1,15})?(?:[eE][-+]?\d{1,2})?"
BOX_PATTERN = f"^{_NUMBER},{_NUMBER},{_NUMBER},{_NUMBER}$"
"""Four finite numbers, comma-separated: bounded digits, so none overflows to infinity."""

MAX_TOP_K = 20
"""A lead list two reviewers can work through; the floor, not top_k, keeps non-matches out."""


class Box(ma.fields.String):
    """A face box sent as one form field ``x1,y1,x2,y2``, loaded as four floats."""

    def __init__(self, **kwargs: Any) -> None:
        metadata = {"pattern": BOX_PATTERN, **kwargs.pop("metadata", {})}
        super().__init__(metadata=metadata, **kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        text = super()._deserialize(value, attr, data, **kwargs)
        if not re.fullmatch(BOX_PATTERN, text):
            raise ma.ValidationError("Must be four numbers x1,y1,x2,y2, comma-separated.")
        return [float(part) for part in text.split(",")]


class SearchFormSchema(ma.Schema):
    """The multipart body: the probe ``image`` and the search's parameters."""

    image = ImageFile(required=True)

    legal_basis_id = ma.fields.UUID(required=True)
    purpose = Text(max_length=1000, required=True)
    top_k = ma.fields.Integer(
        load_default=10,
        validate=ma.validate.Range(min=1, max=MAX_TOP_K),
        metadata={"description": "At most this many candidates, all at or above `threshold`."},
    )
    threshold = ma.fields.Float(
        # A form field cannot be null: leave it out (so no null default either).
        validate=ma.validate.Range(min=-1.0, max=1.0),
        metadata={
            "description": (
                "Minimum cosine similarity. Default and floor: the model pack's calibrated "
                "threshold (see `threshold` in the answer). A stricter one is applied; one below "
                "the floor is refused with 422 `/problems/threshold-below-floor`, whose "
                "`threshold_floor` names it (it is not clamped)."
            )
        },
    )
    face_index = ma.fields.Integer(validate=ma.validate.Range(min=0, max=100))
    face_box = Box(
        metadata={
            "description": "x1,y1,x2,y2 of the face to search when there are several: one "
            "field, four comma-separated numbers.",
            "example": "120,80,260,240",
        },
    )


class ProbeFaceSchema(ma.Schema):
    box = ma.fields.List(ma.fields.Float())
    quality = ma.fields.Nested(QualitySchema)


class _RankedFaceSchema(ma.Schema):
    """A face of the gallery, ranked by its similarity to the probe."""

    rank = ma.fields.Integer(required=True)
    face_id = ma.fields.UUID(required=True)
    similarity = ma.fields.Float(required=True)
    source_site = ma.fields.String(required=True)


class CandidateSchema(_RankedFaceSchema):
    photo_id = ma.fields.UUID(required=True)
    source_url = ma.fields.String(required=True)
    collected_at = ma.fields.DateTime(required=True)
    thumbnail = ma.fields.String(
        metadata={"description": "Link to the face thumbnail."}, required=True
    )


class ReceiptSchema(ma.Schema):
    seq = ma.fields.Integer(required=True)
    leaf_hash = ma.fields.String(required=True, metadata={"description": "hex SHA-256"})
    entry = ma.fields.String(required=True, metadata={"description": "canonical entry JSON"})
    checkpoint = ma.fields.String(required=True, metadata={"description": "C2SP signed note"})
    tree_size = ma.fields.Integer(required=True)
    inclusion_proof = ma.fields.List(ma.fields.String(), required=True)
    cosigned = ma.fields.Boolean(
        required=True,
        metadata={
            "description": "The checkpoint carries cosignatures from the quorum of witnesses "
            "(never yet in a search's answer: read the receipt again later)."
        },
    )
    witnesses = ma.fields.List(
        ma.fields.String(),
        required=True,
        metadata={"description": "The names of the witnesses whose cosignatures it carries."},
    )


class _SearchSchema(ma.Schema):
    """A search: when, under which basis, with which model pack, against how large a gallery."""

    id = ma.fields.UUID(required=True)
    created_at = ma.fields.DateTime(required=True)
    legal_basis_id = ma.fields.UUID(required=True)
    top_k = ma.fields.Integer(required=True)
    threshold = ma.fields.Float(required=True)
    pack = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.String(), required=True)
    gallery_size = ma.fields.Integer(required=True)


class SearchOutcomeSchema(_SearchSchema):
    probe_face = ma.fields.Nested(ProbeFaceSchema, required=True)
    candidates = ma.fields.List(ma.fields.Nested(CandidateSchema), required=True)
    gallery_collection = ma.fields.String(required=True)
    statement = ma.fields.String(required=True)
    receipt = ma.fields.Nested(ReceiptSchema, required=True)


class ReviewViewSchema(ma.Schema):
    reviewer_id = ma.fields.UUID(required=True)
    verdict = ma.fields.String(required=True)
    note = ma.fields.String(required=True)
    created_at = ma.fields.DateTime(required=True)


class CandidateViewSchema(_RankedFaceSchema):
    source_url = ma.fields.String(allow_none=True, required=True)
    collected_at = ma.fields.DateTime(allow_none=True, required=True)
    erased = ma.fields.Boolean(required=True)
    views = ma.fields.Integer(required=True)
    reviews = ma.fields.List(ma.fields.Nested(ReviewViewSchema), required=True)
    possible_match_votes = ma.fields.Integer(required=True)
    confirmed_lead = ma.fields.Boolean(required=True)


class SearchViewSchema(_SearchSchema):
    agency_id = ma.fields.UUID(required=True)
    account_id = ma.fields.UUID(required=True)
    purpose = ma.fields.String(required=True)
    probe_sha256 = ma.fields.String(required=True)
    ledger_seq = ma.fields.Integer(required=True)
    results_deleted_at = ma.fields.DateTime(allow_none=True, required=True)
    results_deleted_reason = ma.fields.String(allow_none=True, required=True)
    review_state = ma.fields.String(required=True)
    candidates = ma.fields.List(ma.fields.Nested(CandidateViewSchema), required=True)


SearchPageSchema = page_schema(SearchViewSchema, "SearchPage")


class SearchQuerySchema(PageQuerySchema):
    pass


class ReviewItemSchema(ma.Schema):
    face_id = ma.fields.UUID(required=True)
    verdict = ma.fields.String(required=True, validate=ma.validate.OneOf(VERDICTS))
    note = Text(max_length=2000, multiline=True, required=True)


class ReviewRequestSchema(ma.Schema):
    reviews = ma.fields.List(
        ma.fields.Nested(ReviewItemSchema),
        required=True,
        validate=ma.validate.Length(min=1, max=50),
    )
