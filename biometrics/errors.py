"""The biometrics error hierarchy: one root, `BiometricsError`, and the ways face work can fail.

These errors know nothing of HTTP; `api/errors.py` maps them to problem details.
"""

from __future__ import annotations

__all__ = [
    "BiometricsError",
    "ImageError",
    "ImageTooLarge",
    "InvalidImage",
    "ModelError",
    "NoFaceFound",
    "PackError",
    "UnsupportedImageType",
]


class BiometricsError(Exception):
    """Root of every error raised by the `biometrics` package."""


class ImageError(BiometricsError):
    """An uploaded image cannot be used."""


class UnsupportedImageType(ImageError):
    """The bytes are not JPEG, PNG or WebP (identified by content, not by name or header)."""


class InvalidImage(ImageError):
    """The bytes claim a supported format but are truncated, corrupt or otherwise undecodable."""


class ImageTooLarge(ImageError):
    """The image exceeds the configured byte size or pixel count.

    `limit` and `actual` say which bound was crossed and by how much, for the caller's message.
    """

    def __init__(self, message: str, *, limit: int, actual: int) -> None:
        super().__init__(message)
        self.limit = limit
        self.actual = actual


class NoFaceFound(BiometricsError):
    """An image in which exactly one face was required holds none that passes the quality gate."""


class PackError(BiometricsError):
    """A model pack is missing, malformed, tampered with, or cannot be installed or imported.

    The message names the file concerned and says what the operator should do.
    """


class ModelError(BiometricsError):
    """A model file loaded but does not behave as its pack declares (shape, dimension, kind)."""
