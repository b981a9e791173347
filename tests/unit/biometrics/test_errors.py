"""Biometrics errors have the one domain shape: a code, a detail and extra members, all set at
construction; the index errors are biometrics errors like the others.
"""

from __future__ import annotations

import pytest

from biometrics.errors import (
    BiometricsError,
    DimensionMismatch,
    DomainError,
    ImageError,
    ImageTooLarge,
    IndexUnavailable,
    InvalidImage,
    InvalidQuery,
    ModelError,
    NoFaceFound,
    PackError,
    UnsupportedImageType,
    VectorIndexError,
)


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (BiometricsError, "biometrics-error"),
        (ImageError, "biometrics-error"),
        (UnsupportedImageType, "unsupported-image-type"),
        (InvalidImage, "invalid-image"),
        (NoFaceFound, "no-face"),
        (PackError, "model-unavailable"),
        (ModelError, "model-unavailable"),
        (VectorIndexError, "biometrics-error"),
        (IndexUnavailable, "vector-index-unavailable"),
        (DimensionMismatch, "biometrics-error"),
        (InvalidQuery, "biometrics-error"),
    ],
)
def test_each_error_names_its_code_and_keeps_its_detail(
    error: type[BiometricsError], code: str
) -> None:
    raised = error("the index at /tmp/x cannot be opened")
    assert isinstance(raised, DomainError)
    assert (raised.code, raised.detail, str(raised)) == (
        code,
        "the index at /tmp/x cannot be opened",
        "the index at /tmp/x cannot be opened",
    )
    assert dict(raised.extra) == {}


def test_code_and_extra_are_given_at_construction_and_cannot_change_after() -> None:
    extra = {"faces": [1, 2]}
    raised = BiometricsError("two faces", code="multiple-faces", extra=extra)
    extra["faces"] = []
    assert raised.code == "multiple-faces" and dict(raised.extra) == {"faces": [1, 2]}
    with pytest.raises(TypeError):
        raised.extra["more"] = 1  # type: ignore[index]
    assert BiometricsError.code == "biometrics-error"  # the class keeps its own code


def test_image_too_large_says_which_bound_was_crossed() -> None:
    raised = ImageTooLarge("image is 11 bytes; the limit is 10", limit=10, actual=11)
    assert (raised.code, raised.limit, raised.actual) == ("image-too-large", 10, 11)
    assert raised.detail == "image is 11 bytes; the limit is 10"


def test_the_index_errors_live_with_the_other_biometrics_errors() -> None:
    import biometrics.index

    for name in ("VectorIndexError", "IndexUnavailable", "DimensionMismatch", "InvalidQuery"):
        assert name not in biometrics.index.__all__
    assert issubclass(IndexUnavailable, VectorIndexError)
    assert issubclass(VectorIndexError, BiometricsError)
