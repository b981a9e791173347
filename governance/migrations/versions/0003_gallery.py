"""Gallery photos, faces, source policies and erasures.

Revision ID: 0003_gallery
Revises: 0002_accounts
Create Date: 2026-11-27 18:19:40.422973
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_gallery"
down_revision = "0002_accounts"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "erasures",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("target_sha256", sa.String(length=64), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("photos_erased", sa.Integer(), nullable=False),
        sa.Column("faces_erased", sa.Integer(), nullable=False),
        sa.Column("requested_by", sa.String(length=80), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "kind IN ('photo', 'source_url', 'probe')", name=op.f("ck_erasures_kind")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_erasures")),
    )
    op.create_table(
        "gallery_photos",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("media_type", sa.String(length=32), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("source_url", sa.Text(), nullable=False),
        sa.Column("source_site", sa.String(length=253), nullable=False),
        sa.Column("collected_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("collection_basis", sa.String(length=32), nullable=False),
        sa.Column("subject_ref", sa.String(length=128), nullable=True),
        sa.Column("enrolled_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("enrolled_by", sa.String(length=80), nullable=False),
        sa.Column("pack_name", sa.String(length=64), nullable=False),
        sa.Column("pack_version", sa.String(length=32), nullable=False),
        sa.Column("recognizer_sha256", sa.String(length=64), nullable=False),
        sa.CheckConstraint(
            "collection_basis IN ('public_record', 'consent', 'court_order', 'licence')",
            name=op.f("ck_gallery_photos_collection_basis"),
        ),
        sa.CheckConstraint("width > 0 AND height > 0", name=op.f("ck_gallery_photos_dimensions")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gallery_photos")),
        sa.UniqueConstraint("sha256", name=op.f("uq_gallery_photos_sha256")),
    )
    op.create_index(
        op.f("ix_gallery_photos_source_site"), "gallery_photos", ["source_site"], unique=False
    )
    op.create_table(
        "source_policies",
        sa.Column("site", sa.String(length=253), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("reference", sa.String(length=256), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(length=80), nullable=False),
        sa.Column("faces_purged", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "status IN ('blocked', 'allowed')", name=op.f("ck_source_policies_status")
        ),
        sa.PrimaryKeyConstraint("site", name=op.f("pk_source_policies")),
    )
    op.create_table(
        "gallery_faces",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("photo_id", sa.Uuid(), nullable=False),
        sa.Column("source_site", sa.String(length=253), nullable=False),
        sa.Column("x1", sa.Float(), nullable=False),
        sa.Column("y1", sa.Float(), nullable=False),
        sa.Column("x2", sa.Float(), nullable=False),
        sa.Column("y2", sa.Float(), nullable=False),
        sa.Column("detection_score", sa.Float(), nullable=False),
        sa.Column("size_px", sa.Float(), nullable=False),
        sa.Column("blur", sa.Float(), nullable=False),
        sa.Column("yaw", sa.Float(), nullable=False),
        sa.Column("pitch", sa.Float(), nullable=False),
        sa.Column("roll", sa.Float(), nullable=False),
        sa.Column("thumbnail_sha256", sa.String(length=64), nullable=False),
        sa.Column("recognizer_sha256", sa.String(length=64), nullable=False),
        sa.Column("embedding", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["photo_id"],
            ["gallery_photos.id"],
            name=op.f("fk_gallery_faces_photo_id_gallery_photos"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gallery_faces")),
    )
    op.create_index(op.f("ix_gallery_faces_photo_id"), "gallery_faces", ["photo_id"], unique=False)
    op.create_index(
        op.f("ix_gallery_faces_recognizer_sha256"),
        "gallery_faces",
        ["recognizer_sha256"],
        unique=False,
    )
    op.create_index(
        op.f("ix_gallery_faces_source_site"), "gallery_faces", ["source_site"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_gallery_faces_source_site"), table_name="gallery_faces")
    op.drop_index(op.f("ix_gallery_faces_recognizer_sha256"), table_name="gallery_faces")
    op.drop_index(op.f("ix_gallery_faces_photo_id"), table_name="gallery_faces")
    op.drop_table("gallery_faces")
    op.drop_table("source_policies")
    op.drop_index(op.f("ix_gallery_photos_source_site"), table_name="gallery_photos")
    op.drop_table("gallery_photos")
    op.drop_table("erasures")
