"""Fields and schemas shared by the governance resources: cleaned text, people, reasons, pages.

Each custom field runs the matching ``governance.identity.contact`` function, so the API and the
command
line apply the same rules (NFC, trimming, no control or invisible characters, E.164 phones,
normalized emails), and every refusal becomes a per-field error in the 422 problem.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import marshmallow as ma

from governance.identity.contact import (
    COUNTRIES,
    Person,
    clean_name,
    clean_text,
    normalize_country,
    normalize_email,
    normalize_phone,
)
from governance.identity.permissions import Role
from governance.identity.vocabulary import ApplicationStatus

__all__ = [
    "ApplicationViewSchema",
    "AwareDateTime",
    "Country",
    "DecidedSchema",
    "Email",
    "Name",
    "PageQuerySchema",
    "PersonSchema",
    "PersonViewSchema",
    "Phone",
    "ReasonSchema",
    "RoleChoice",
    "StandingSchema",
    "Text",
    "ValueSchema",
    "page_schema",
    "reason_text",
    "view_schema",
]


# The rules of ``governance.identity.contact`` as JSON Schema patterns (ECMA-262 and Python ``re``
# read them alike). Exact for ASCII, and for any text as to spaces, length and control
# characters; the Unicode categories the cleaners also refuse (invisible format characters,
# unassigned code points) have no portable pattern, so the schema states them in prose.
_EDGE = r"[\t\n\x0b\x0c\r\x1c-\x20]*"  # what str.strip() trims, in ASCII
_VISIBLE = r"[^\x00-\x20\x7f-\x9f]"  # not a space, not a control character
_MULTILINE = r"[^\x00-\x08\x0b-\x1f\x7f-\x9f]"  # also tabs, line feeds and spaces
_NAME_CHAR = r"[^\x00-\x20\x7f-\x9f!\"#$%*+:;<=>?@\[\\\]^_`{|}~]"
_A_LETTER = r"(?=.*[^\x00-\x40\x5b-\x60\x7b-\x7f])"  # an ASCII letter, or beyond ASCII


def text_pattern(*, min_length: int, max_length: int, multiline: bool = False) -> str:
    """The pattern ``clean_text`` accepts: trimmed length, spaces collapsed unless multiline."""
    if multiline:
        return (
            f"^{_EDGE}(?={_VISIBLE}){_MULTILINE}{{{min_length},{max_length}}}"
            f"(?<={_VISIBLE}){_EDGE}$"
        )
    return (
        f"^{_EDGE}{_VISIBLE}(?:{_VISIBLE}| +(?={_VISIBLE})){{{min_length - 1},{max_length - 1}}}"
        f"{_EDGE}$"
    )


def name_pattern(*, max_length: int) -> str:
    """The pattern ``clean_name`` accepts (its letters, digits and punctuation, one letter)."""
    return (
        f"^{_EDGE}{_A_LETTER}{_NAME_CHAR}(?:{_NAME_CHAR}| +(?={_NAME_CHAR})){{0,{max_length - 1}}}"
        f"{_EDGE}$"
    )


_PROSE = (
    " Leading and trailing spaces are trimmed; control characters and invisible format "
    "characters (bidirectional overrides, zero-width spaces) are refused."
)


class _Cleaned(ma.fields.String):
    """A string passed through a cleaning function that raises ValueError on bad input."""

    def __init__(
        self,
        clean: Callable[[str], str],
        *,
        max_length: int,
        pattern: str | None = None,
        **kwargs: Any,
    ) -> None:
        # The raw length bound: what is refused before cleaning (see _deserialize).
        metadata: dict[str, Any] = {"maxLength": 4 * max_length + 64}
        if pattern is not None:
            metadata["pattern"] = pattern
        metadata.update(kwargs.pop("metadata", {}))
        metadata["description"] = (metadata.get("description", "") + _PROSE).strip()
        super().__init__(metadata=metadata, **kwargs)
        self._clean = clean
        self._max_length = max_length

    def _deserialize(
        self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any
    ) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        # Refuse absurd input before normalizing it (NFC can be costly on huge strings).
        if len(text) > 4 * self._max_length + 64:
            raise ma.ValidationError(f"Must be at most {self._max_length} characters.")
        try:
            return self._clean(text)
        except ValueError as exc:
            raise ma.ValidationError(str(exc)) from exc


class Text(_Cleaned):
    """Free text: NFC, trimmed, no control or invisible characters, bounded length."""

    def __init__(
        self, *, max_length: int, min_length: int = 1, multiline: bool = False, **kwargs: Any
    ) -> None:
        super().__init__(
            lambda v: clean_text(
                v, max_length=max_length, min_length=min_length, multiline=multiline
            ),
            max_length=max_length,
            pattern=text_pattern(min_length=min_length, max_length=max_length, multiline=multiline),
            **kwargs,
        )


class Name(_Cleaned):
    """A name of a person or an organization."""

    def __init__(self, *, max_length: int, **kwargs: Any) -> None:
        super().__init__(
            lambda v: clean_name(v, max_length=max_length),
            max_length=max_length,
            pattern=name_pattern(max_length=max_length),
            **kwargs,
        )


class Phone(_Cleaned):
    """An international phone number, returned in E.164."""

    def __init__(self, **kwargs: Any) -> None:
        metadata = {
            "example": "+33123456789",
            "format": "phone",
            "description": "A valid phone number in international format (+ and the country "
            "code); answered in E.164.",
            **kwargs.pop("metadata", {}),
        }
        super().__init__(normalize_phone, max_length=40, metadata=metadata, **kwargs)


class Email(_Cleaned):
    """An email address (syntax only, no DNS lookup), normalized."""

    def __init__(self, **kwargs: Any) -> None:
        metadata = {"format": "email", **kwargs.pop("metadata", {})}
        super().__init__(normalize_email, max_length=254, metadata=metadata, **kwargs)


class Country(_Cleaned):
    """An ISO 3166-1 alpha-2 country code: one of the stated list, in any case."""

    def __init__(self, **kwargs: Any) -> None:
        metadata = {
            "example": "FR",
            # The list, as answered; a lower-case code is accepted and answered in capitals.
            "enum": sorted(COUNTRIES),
            **kwargs.pop("metadata", {}),
        }
        super().__init__(normalize_country, max_length=2, metadata=metadata, **kwargs)


class RoleChoice(ma.fields.String):
    """One of the given roles, loaded as a ``Role``; the schema's enum lists only these."""

    def __init__(self, *roles: Role, **kwargs: Any) -> None:
        self._values = [role.value for role in roles]
        super().__init__(validate=ma.validate.OneOf(self._values), **kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Role:
        text = super()._deserialize(value, attr, data, **kwargs)
        if text not in self._values:  # before the validators: Role(text) must not raise
            raise ma.ValidationError(f"Must be one of: {', '.join(self._values)}.")
        return Role(text)


class AwareDateTime(ma.fields.AwareDateTime):
    """An RFC 3339 date-time with its offset; a naive one is refused, never guessed to be UTC."""

    default_error_messages = {
        "invalid": "Not a valid datetime: use RFC 3339, such as 2026-11-27T19:06:42Z.",
        "invalid_awareness": (
            "The datetime has no offset: add an offset such as Z (UTC) or +02:00."
        ),
    }


def reason_text(**kwargs: Any) -> Text:
    """The reason of a decision: multiline text of 3 to 2000 characters."""
    return Text(max_length=2000, min_length=3, multiline=True, **kwargs)


class ValueSchema(ma.Schema):
    """A schema that loads into a value of the core: ``builds(**fields)``."""

    builds: ClassVar[Callable[..., object]]

    @ma.post_load
    def _make(self, data: dict[str, Any], **_kwargs: Any) -> object:
        return self.builds(**data)


class PersonSchema(ValueSchema):
    """A person's contact details."""

    builds = Person

    first_name = Name(max_length=100, required=True)
    last_name = Name(max_length=100, required=True)
    phone = Phone(required=True)
    email = Email(required=True)
    job_title = Text(max_length=200, required=True, metadata={"example": "Detective inspector"})


def view_schema(form: type[ma.Schema], name: str) -> type[ma.Schema]:
    """The response schema named ``name`` that answers, as stored, what ``form`` loads.

    Each field keeps its name and whether it is required or may be null. Cleaned text becomes a
    plain string and an aware date-time a plain one: their input rules do not describe an
    answer. Any other field answers as it loads.
    """

    def answered(field: ma.fields.Field[Any]) -> ma.fields.Field[Any]:
        if isinstance(field, ma.fields.DateTime):
            return ma.fields.DateTime(required=field.required, allow_none=field.allow_none)
        if isinstance(field, ma.fields.String):
            return ma.fields.String(required=field.required, allow_none=field.allow_none)
        return copy.deepcopy(field)

    return ma.Schema.from_dict(
        {key: answered(field) for key, field in form._declared_fields.items()}, name=name
    )


PersonViewSchema = view_schema(PersonSchema, "PersonView")


class ReasonSchema(ma.Schema):
    """The mandatory reason of a decision (approval, rejection, suspension, reinstatement)."""

    reason = reason_text(required=True)


class StandingSchema(ma.Schema):
    """The standing of an account or an agency: its status, why, and since when."""

    status = ma.fields.String(required=True)
    status_reason = ma.fields.String(allow_none=True)
    created_at = ma.fields.DateTime(required=True)
    status_changed_at = ma.fields.DateTime(required=True)


class DecidedSchema(ma.Schema):
    """Who decided a pending request, when, and why; all null while it is pending."""

    decided_by = ma.fields.UUID(allow_none=True)
    decided_at = ma.fields.DateTime(allow_none=True)
    decision_reason = ma.fields.String(allow_none=True)


class ApplicationViewSchema(DecidedSchema):
    """An application for an account (a registration, an account request), and its claim."""

    id = ma.fields.UUID(required=True)
    status = ma.fields.Enum(ApplicationStatus, by_value=True, required=True)
    agency_id = ma.fields.UUID(allow_none=True)
    account_id = ma.fields.UUID(allow_none=True)
    claimed_at = ma.fields.DateTime(allow_none=True)


class PageQuerySchema(ma.Schema):
    """Offset paging: ``limit`` (1-100, default 50) and ``offset`` (default 0)."""

    limit = ma.fields.Integer(load_default=50, validate=ma.validate.Range(min=1, max=100))
    offset = ma.fields.Integer(load_default=0, validate=ma.validate.Range(min=0, max=1_000_000_000))


def page_schema(item: type[ma.Schema], name: str) -> type[ma.Schema]:
    """A page-of-``item`` response schema named ``name``."""
    return ma.Schema.from_dict(
        {
            "items": ma.fields.List(ma.fields.Nested(item), required=True),
            "total": ma.fields.Integer(required=True),
            "limit": ma.fields.Integer(required=True),
            "offset": ma.fields.Integer(required=True),
        },
        name=name,
    )
