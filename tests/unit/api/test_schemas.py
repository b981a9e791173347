"""The shared schema pieces: values loaded from forms, and views derived from them."""

from __future__ import annotations

from datetime import UTC, datetime

import marshmallow as ma

from api.schemas.fields import PersonSchema, view_schema
from api.schemas.legal_bases import AuthorisationSchema, AuthorisationViewSchema
from governance.identity.contact import Person
from governance.legal_basis.values import Authorisation, AuthorisationKind


def test_a_value_schema_loads_into_its_value() -> None:
    loaded = AuthorisationSchema().load(
        {
            "kind": "judicial",
            "reference": "  W-17 ",
            "issued_at": "2026-11-01T08:00:00Z",
            "expires_at": "2026-12-01T08:00:00+01:00",
        }
    )
    assert isinstance(loaded, Authorisation)
    assert loaded.kind is AuthorisationKind.JUDICIAL
    assert loaded.reference == "W-17"
    assert loaded.authority is None


def test_a_view_keeps_the_fields_and_whether_they_are_required_or_null() -> None:
    view = AuthorisationViewSchema()
    assert list(view.fields) == list(AuthorisationSchema().fields)
    assert type(view.fields["reference"]) is ma.fields.String
    assert view.fields["reference"].allow_none and not view.fields["reference"].required
    assert type(view.fields["issued_at"]) is ma.fields.DateTime
    assert view.fields["issued_at"].required and not view.fields["issued_at"].allow_none
    assert isinstance(view.fields["kind"], ma.fields.Enum)


def test_a_view_answers_as_stored_without_the_input_rules() -> None:
    person = Person(
        first_name="Ana",
        last_name="Silva",
        phone="+33123456789",
        email="ana@example.org",
        job_title="Analyst",
    )
    schema = view_schema(PersonSchema, "PersonAnswer")
    assert schema.__name__ == "PersonAnswer"
    assert schema().dump(person) == {
        "first_name": "Ana",
        "last_name": "Silva",
        "phone": "+33123456789",
        "email": "ana@example.org",
        "job_title": "Analyst",
    }
    assert "pattern" not in schema().fields["first_name"].metadata
    when = datetime(2026, 11, 1, 8, tzinfo=UTC)
    dumped = AuthorisationViewSchema().dump(
        Authorisation(AuthorisationKind.JUDICIAL, None, None, when, when)
    )
    assert dumped["issued_at"] == "2026-11-01T08:00:00+00:00"
    assert dumped["reference"] is None
