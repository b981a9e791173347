"""Clean and normalize what people type: names and free text, phones (E.164), emails, countries.

Text is NFC-normalized and trimmed; control characters are refused, and so are the invisible
"format" characters (bidi overrides and isolates U+202A-202E/U+2066-2069, zero-width spaces and
joiners, the BOM) that make a name display differently from what it is. Each function raises
``ValueError`` with one sentence for the person who typed it; schemas turn that into a field error.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

import phonenumbers
from email_validator import EmailNotValidError, validate_email

__all__ = [
    "COUNTRIES",
    "MAX_EMAIL",
    "Person",
    "clean_name",
    "clean_text",
    "normalize_country",
    "normalize_email",
    "normalize_phone",
]

MAX_EMAIL = 254  # RFC 5321 path limit
# ISO 3166-1 alpha-2: the regions libphonenumber knows, minus its non-ISO ones (Ascension,
# Tristan da Cunha, Kosovo), plus the uninhabited ISO territories that have no numbering plan.
COUNTRIES = frozenset(
    (set(phonenumbers.SUPPORTED_REGIONS) - {"AC", "TA", "XK"})
    | {"AQ", "BV", "GS", "HM", "PN", "TF", "UM"}
)
_NAME_PUNCTUATION = frozenset("-'\u2019. ")  # hyphen, apostrophes, period, space
_SPACES = re.compile(r"\s+")


def _refuse_invisible(value: str, *, multiline: bool) -> None:
    for char in value:
        category = unicodedata.category(char)
        if multiline and char in "\n\t":
            continue
        if category == "Cc":
            raise ValueError(f"Control character U+{ord(char):04X} is not allowed.")
        if category in ("Cf", "Cs", "Co", "Cn"):
            raise ValueError(
                f"Invisible or unassigned character U+{ord(char):04X} is not allowed "
                "(bidirectional overrides, zero-width characters and the like)."
            )
        if category in ("Zl", "Zp"):
            raise ValueError(f"Line separator U+{ord(char):04X} is not allowed.")


def clean_text(value: str, *, max_length: int, min_length: int = 1, multiline: bool = False) -> str:
    """NFC-normalize and trim ``value``, refusing control and invisible characters.

    Raises ValueError when the result is too short or too long or holds a refused character.
    """
    text = unicodedata.normalize("NFC", value).strip()
    _refuse_invisible(text, multiline=multiline)
    if not multiline:
        text = _SPACES.sub(" ", text)
    if len(text) < min_length:
        raise ValueError(
            "Must not be empty."
            if min_length == 1
            else f"Must be at least {min_length} characters."
        )
    if len(text) > max_length:
        raise ValueError(f"Must be at most {max_length} characters.")
    return text


def clean_name(value: str, *, max_length: int) -> str:
    """A person's or organization's name: letters, marks, digits, spaces, a little punctuation.

    Raises ValueError for anything else, or when it holds no letter.
    """
    text = clean_text(value, max_length=max_length)
    for char in text:
        category = unicodedata.category(char)
        if category[0] not in "LMN" and char not in _NAME_PUNCTUATION and char not in "&(),/":
            raise ValueError(f"Character {char!r} is not allowed in a name.")
    if not any(unicodedata.category(c).startswith("L") for c in text):
        raise ValueError("A name must contain at least one letter.")
    return text


def normalize_phone(value: str) -> str:
    """Validate an international phone number and return it in E.164 (``+33123456789``).

    Raises ValueError when it does not parse or is not a valid number.
    """
    text = clean_text(value, max_length=40)
    try:
        number = phonenumbers.parse(text, None)
    except phonenumbers.NumberParseException as exc:
        if exc.error_type in (
            phonenumbers.NumberParseException.TOO_SHORT_NSN,
            phonenumbers.NumberParseException.TOO_SHORT_AFTER_IDD,
            phonenumbers.NumberParseException.TOO_LONG,
        ):
            raise ValueError("Not a valid phone number: too short or too long.") from exc
        raise ValueError(
            "Not a phone number in international format (start with + and the country code)."
        ) from exc
    if not phonenumbers.is_valid_number(number):
        raise ValueError("Not a valid phone number for its country code.")
    return str(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))


def normalize_email(value: str) -> str:
    """Validate an email address's syntax (no DNS lookup) and return its normalized form.

    Raises ValueError when it is not a valid address.
    """
    text = clean_text(value, max_length=MAX_EMAIL)
    try:
        result = validate_email(text, check_deliverability=False)
    except EmailNotValidError as exc:
        raise ValueError(f"Not a valid email address: {exc}") from exc
    normalized = str(result.normalized)
    if len(normalized) > MAX_EMAIL:
        raise ValueError(f"Must be at most {MAX_EMAIL} characters.")
    return normalized


def normalize_country(value: str) -> str:
    """An ISO 3166-1 alpha-2 country code, upper-cased.

    Raises ValueError for anything else.
    """
    code = value.strip().upper()
    if code not in COUNTRIES:
        raise ValueError("Not an ISO 3166-1 alpha-2 country code (e.g. FR, DE, US).")
    return code


@dataclass(frozen=True, slots=True)
class Person:
    """A person's contact details, already cleaned by the functions above."""

    first_name: str
    last_name: str
    phone: str
    email: str
    job_title: str

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}"
