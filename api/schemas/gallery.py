"""Schemas of the gallery: enrolment form, photos with provenance, faces, policies, erasures."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask_smorest.fields import Upload
from werkzeug.datastructures import FileStorage

from api.schemas.fields import AwareDateTime, PageQuerySchema, Text, page_schema
from governance.gallery.models import COLLECTION_BASES


class ImageFile(Upload):  # type: ignore[misc]
    """The image part of a multipart upload: a file part, never a text field."""

    def __init__(self, **kwargs: Any) -> None:
        metadata = {
            "description": "The image file (JPEG, PNG or WebP).",
            "contentMediaType": "application/octet-stream",
            **kwargs.pop("metadata", {}),
        }
        super().__init__(metadata=metadata, **kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> FileStorage:
        if not isinstance(value, FileStorage):
            raise ma.ValidationError("Must be a file part (Content-Disposition with a filename).")
        return value


class EnrollFormSchema(ma.Schema):
    """The multipart body: the ``image`` file and its provenance."""

    image = ImageFile(required=True)

    source_url = ma.fields.String(
        required=True,
        validate=ma.validate.Length(min=8, max=2048),
        metadata={"description": "http(s) URL the photo was collected from."},
    )
    collected_at = AwareDateTime(
        required=True,
        metadata={
            "description": "When it was collected (RFC 3339, with offset): not before "
            "1990-01-01, and not in the future."
        },
    )
    collection_basis = ma.fields.String(required=True, validate=ma.validate.OneOf(COLLECTION_BASES))
    subject_ref = Text(max_length=128)


class QualitySchema(ma.Schema):
    """What the detector measured of a face: its size, score, sharpness and pose."""

    size_px = ma.fields.Float()
    detection_score = ma.fields.Float()
    blur = ma.fields.Float()
    yaw = ma.fields.Float()
    pitch = ma.fields.Float()
    roll = ma.fields.Float()


class FaceSchema(QualitySchema):
    """An enrolled face: its photo, its box in it, and its quality."""

    id = ma.fields.UUID(required=True)
    photo_id = ma.fields.UUID(required=True)
    source_site = ma.fields.String(required=True)
    box = ma.fields.List(ma.fields.Float(), metadata={"description": "x1, y1, x2, y2 in pixels"})
    created_at = ma.fields.DateTime()


class PhotoSchema(ma.Schema):
    id = ma.fields.UUID(required=True)
    sha256 = ma.fields.String(required=True)
    media_type = ma.fields.String()
    width = ma.fields.Integer()
    height = ma.fields.Integer()
    source_url = ma.fields.String()
    source_site = ma.fields.String()
    collected_at = ma.fields.DateTime()
    collection_basis = ma.fields.String()
    subject_ref = ma.fields.String(allow_none=True)
    enrolled_at = ma.fields.DateTime()
    pack_name = ma.fields.String()
    pack_version = ma.fields.String()
    recognizer_sha256 = ma.fields.String()
    faces = ma.fields.List(ma.fields.Nested(FaceSchema))


class PhotoQuerySchema(PageQuerySchema):
    site = ma.fields.String(validate=ma.validate.Length(max=253))


PhotoPageSchema = page_schema(PhotoSchema, "PhotoPage")


class SourcePolicyInputSchema(ma.Schema):
    site = ma.fields.String(
        required=True,
        validate=ma.validate.Length(min=3, max=253),
        metadata={
            "description": "A domain or URL; it is reduced to its registrable domain (Public "
            "Suffix List), so it must lie under a public suffix.",
            "format": "site",
        },
    )
    status = ma.fields.String(required=True, validate=ma.validate.OneOf(("blocked", "allowed")))
    reason = Text(max_length=2000, required=True)
    reference = Text(max_length=256, required=True)


class SourcePolicySchema(ma.Schema):
    site = ma.fields.String(required=True)
    status = ma.fields.String(required=True)
    reason = ma.fields.String()
    reference = ma.fields.String()
    updated_at = ma.fields.DateTime()
    faces_purged = ma.fields.Integer()
    faces_remaining = ma.fields.Integer()


class ErasureFormSchema(ma.Schema):
    kind = ma.fields.String(
        required=True,
        validate=ma.validate.OneOf(
            ("photo", "source_url"),
            error=(
                "Must be photo or source_url. To erase by a probe photo, preview it at "
                "POST /v1/erasures/preview; a second administrator confirms the request."
            ),
        ),
    )
    reason = Text(max_length=2000, required=True)
    photo_id = ma.fields.UUID()
    source_url = ma.fields.String(validate=ma.validate.Length(max=2048))


class ErasurePreviewFormSchema(ma.Schema):
    """The multipart body: the probe ``image`` and the request it answers."""

    image = ImageFile(required=True)

    request_reference = Text(
        max_length=128,
        required=True,
        metadata={
            "description": "The data-subject request this erasure answers (its reference in "
            "the register of such requests, never the person's name). It goes to the ledger."
        },
    )
    reason = Text(max_length=2000, required=True)
    face_index = ma.fields.Integer(
        validate=ma.validate.Range(min=0, max=100),
        metadata={"description": "Which face of the probe is the data subject's, when several."},
    )


class ErasureMatchSchema(ma.Schema):
    rank = ma.fields.Integer()
    face_id = ma.fields.UUID()
    score = ma.fields.Float()
    thumbnail = ma.fields.String(
        metadata={"description": "Its thumbnail, for the two deciding admins; views are recorded."}
    )


class ErasureRequestSchema(ma.Schema):
    id = ma.fields.UUID()
    request_reference = ma.fields.String()
    status = ma.fields.String(metadata={"description": "pending or confirmed."})
    threshold = ma.fields.Float()
    requested_by = ma.fields.UUID()
    confirmer_id = ma.fields.UUID(
        allow_none=True,
        metadata={"description": "The other admin who opened the request; only they confirm."},
    )
    erasure_id = ma.fields.UUID(allow_none=True)
    ledger_seq = ma.fields.Integer(metadata={"description": "The erasure:preview entry."})
    created_at = ma.fields.DateTime()
    matches = ma.fields.List(
        ma.fields.Nested(ErasureMatchSchema),
        metadata={"description": "Face ids, scores and thumbnails only: never provenance."},
    )


class ErasureConfirmSchema(ma.Schema):
    face_ids = ma.fields.List(
        ma.fields.UUID(), required=True, validate=ma.validate.Length(min=1, max=100)
    )
    reason = Text(max_length=2000, required=True)


class ErasureSchema(ma.Schema):
    id = ma.fields.UUID()
    kind = ma.fields.String()
    photos_erased = ma.fields.Integer()
    faces_erased = ma.fields.Integer()
    created_at = ma.fields.DateTime()
