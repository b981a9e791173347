"""Cleaning what people type: NFC, trimming, invisible characters, phones, emails, countries."""

from __future__ import annotations

import pytest

from governance.identity.contact import (
    COUNTRIES,
    clean_name,
    clean_text,
    normalize_country,
    normalize_email,
    normalize_phone,
)


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("  Zoë  ", "Zoë"),
        ("Zoe\u0308", "Zoë"),
        ("a    b", "a b"),
        ("O\u2019Neil-Smith", "O\u2019Neil-Smith"),
        ("李小龙", "李小龙"),
        ("Åsa Øberg", "Åsa Øberg"),
    ],
)
def test_names_are_normalized(raw: str, clean: str) -> None:
    assert clean_name(raw, max_length=100) == clean


@pytest.mark.parametrize(
    "raw",
    [
        "a\u202ab",
        "a\u202eb",
        "a\u2066b",
        "a\u2069b",
        "a\u200bb",
        "a\u200cb",
        "a\u200db",
        "a\u2060b",
        "a\ufeffb",
        "a\u200fb",
        "a\x07b",
        "a\x1bb",
        "a\u2028b",
        "a\U000e0041b",
        "a\ue000b",
    ],
)
def test_invisible_and_control_characters_are_refused(raw: str) -> None:
    with pytest.raises(ValueError, match=f"U\\+{ord(raw[1]):04X}"):
        clean_text(raw, max_length=100)


def test_multiline_text_keeps_newlines_only_when_allowed() -> None:
    assert clean_text(" a\nb ", max_length=10, multiline=True) == "a\nb"
    with pytest.raises(ValueError, match="U\\+000A"):
        clean_text("a\nb", max_length=10)


def test_lengths_are_checked_after_normalization() -> None:
    assert clean_text("e\u0301" * 5, max_length=5) == "é" * 5
    with pytest.raises(ValueError, match="at most 5"):
        clean_text("abcdef", max_length=5)
    with pytest.raises(ValueError, match="at least 3"):
        clean_text(" ab ", max_length=5, min_length=3)


@pytest.mark.parametrize(
    ("raw", "e164"),
    [
        ("+33 1 42 68 53 00", "+33142685300"),
        ("+1 (202) 456-1111", "+12024561111"),
        ("+49 30 901820", "+4930901820"),
    ],
)
def test_phones_become_e164(raw: str, e164: str) -> None:
    assert normalize_phone(raw) == e164


@pytest.mark.parametrize("raw", ["01 42 68 53 00", "+33", "+1 555 0100", "phone", "+999 1234"])
def test_bad_phones_are_refused(raw: str) -> None:
    with pytest.raises(ValueError, match="phone number"):
        normalize_phone(raw)


def test_emails_are_normalized_without_dns() -> None:
    assert normalize_email(" Jane.Doe@Example.ORG ") == "Jane.Doe@example.org"
    assert normalize_email("pierre@bücher.example") == "pierre@bücher.example"
    for bad in ("jane", "jane@", "@example.org", "jane@@example.org", "jane@example..org"):
        with pytest.raises(ValueError, match="Not a valid email"):
            normalize_email(bad)


def test_countries_are_iso_3166_alpha_2() -> None:
    assert len(COUNTRIES) == 249
    assert normalize_country(" fr ") == "FR"
    for bad in ("XK", "AC", "UK", "FRA", ""):
        with pytest.raises(ValueError, match="ISO 3166-1"):
            normalize_country(bad)
