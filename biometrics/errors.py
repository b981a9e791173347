"""The biometrics error hierarchy, and the one shape every domain error shares.

`DomainError` is that shape, for governance and biometrics alike (governance stands on
biometrics, so it lives here): a stable `code`, a `detail` for people and optional `extra`
members, all set at construction. These errors know nothing of HTTP; `api/errors.py` maps them
to problem details.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

__all__ = [
    "BiometricsError",
    "DimensionMismatch",
    "DomainError",
    "ImageError",
    "ImageTooLarge",
    "IndexUnavailable",
    "InvalidImage",
    "InvalidQuery",
    "ModelError",
    "NoFaceFound",
    "PackError",
    "UnsupportedImageType",
    "VectorIndexError",
]


class DomainError(Exception):
    """An error a domain raises on purpose, which renders itself.

    ``code`` is a stable, machine-readable name (the class's own, or a more specific one given
    at construction); ``detail`` is one sentence for a person, saying what to do where that
    helps; ``extra`` holds the members a problem of this code adds (``faces``,
    ``legal_basis_id``, ...).
    """

    code = "domain-error"
    extra: Mapping[str, object] = MappingProxyType({})

    def __init__(
        self, detail: str, *, code: str | None = None, extra: Mapping[str, object] | None = None
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        if code is not None:
            self.code = code
        if extra:
            self.extra = MappingProxyType(dict(extra))


class BiometricsError(DomainError):
    """Root of every error raised by the `biometrics` package."""

    code = "biometrics-error"


class ImageError(BiometricsError):
    """An uploaded image cannot be used."""


class UnsupportedImageType(ImageError):
    """The bytes are not JPEG, PNG or WebP (identified by content, not by name or header)."""

    code = "unsupported-image-type"


class InvalidImage(ImageError):
    """The bytes claim a supported format but are truncated, corrupt or otherwise undecodable."""

    code = "invalid-image"


class ImageTooLarge(ImageError):
    """The image exceeds the configured byte size or pixel count.

    `limit` and `actual` say which bound was crossed and by how much, for the caller's message.
    """

    code = "image-too-large"

    def __init__(self, detail: str, *, limit: int, actual: int) -> None:
        super().__init__(detail)
        self.limit = limit
        self.actual = actual


class NoFaceFound(BiometricsError):
    """An image in which exactly one face was required holds none that passes the quality gate."""

    code = "no-face"


class PackError(BiometricsError):
    """A model pack is missing, malformed, tampered with, or cannot be installed or imported.

    The message names the file concerned and says what the operator should do.
    """

    code = "model-unavailable"


class ModelError(BiometricsError):
    """A model file loaded but does not behave as its pack declares (shape, dimension, kind)."""

    code = "model-unavailable"


class VectorIndexError(BiometricsError):
    """Root of the vector index's errors."""


class IndexUnavailable(VectorIndexError):
    """The index cannot be reached or opened, or it failed an operation; the message says which."""

    code = "vector-index-unavailable"


class DimensionMismatch(VectorIndexError):
    """A vector's length differs from the collection's dimension."""


class InvalidQuery(VectorIndexError):
    """A search or write argument is malformed (non-finite vector, bad id, top_k out of range)."""
