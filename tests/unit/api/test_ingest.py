"""The rows of an uploaded manifest: subject_ref cleaned as the API's field cleans it, and a
manifest longer than a batch refused before any item is built."""

from __future__ import annotations

import pytest

from api.ingest import ManifestError, batch_of_upload, parse_manifest

HEADER = "file,source_url,collected_at,collection_basis,subject_ref\n"


def _row(subject_ref: str) -> str:
    return f"a.png,https://a.example.org/a,2025-06-01,consent,{subject_ref}\n"


def test_a_subject_ref_with_a_bidirectional_override_is_that_rows_reject() -> None:
    items = batch_of_upload((HEADER + _row("CASE\u202e1")).encode(), [("a.png", b"x")])

    assert [(item.label, item.problem) for item in items] == [
        (
            "line 2 (a.png)",
            "subject_ref: Invisible or unassigned character U+202E is not allowed "
            "(bidirectional overrides, zero-width characters and the like).",
        )
    ]


def test_a_subject_ref_is_normalized_and_trimmed_as_the_api_does() -> None:
    (row,) = parse_manifest([HEADER, _row("  Cafe\u0301  ")], file_column="file")

    assert row.problem is None and row.provenance is not None
    assert row.provenance.subject_ref == "Caf\u00e9"


def test_a_manifest_longer_than_a_batch_is_refused_naming_the_limit() -> None:
    manifest = (HEADER + _row("") * 4).encode()

    with pytest.raises(ManifestError, match=r"more than 3 lines of photos.*at most 3 photos"):
        batch_of_upload(manifest, [("a.png", b"x")], max_rows=3)
    assert len(batch_of_upload(manifest, [("a.png", b"x")], max_rows=4)) == 4
