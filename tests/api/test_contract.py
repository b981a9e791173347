"""Regressions of the non-conformances schemathesis found: the server does as documented."""

from __future__ import annotations

import re

import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import given, settings
from hypothesis import strategies as st

from api.schemas.fields import name_pattern, text_pattern
from api.schemas.searches import ReviewItemSchema, SearchFormSchema
from api.spec import generate_spec
from governance.identity.contact import clean_name, clean_text
from tests.api.helpers import fresh_address, make_admin, make_agency, problem, registration_body

ASCII = st.text(st.characters(min_codepoint=0, max_codepoint=127), max_size=24)


def _accepts(clean, value: str) -> bool:  # type: ignore[no-untyped-def]
    try:
        clean(value)
    except ValueError:
        return False
    return True


@settings(max_examples=400, deadline=None)
@given(value=ASCII, multiline=st.booleans(), min_length=st.sampled_from([1, 3, 5]))
def test_the_text_pattern_is_the_cleaner_rule(value: str, multiline: bool, min_length: int) -> None:
    pattern = text_pattern(min_length=min_length, max_length=12, multiline=multiline)
    assert bool(re.fullmatch(pattern, value)) == _accepts(
        lambda v: clean_text(v, max_length=12, min_length=min_length, multiline=multiline), value
    ), (pattern, value)


@settings(max_examples=400, deadline=None)
@given(value=ASCII)
def test_the_name_pattern_is_the_cleaner_rule(value: str) -> None:
    assert bool(re.fullmatch(name_pattern(max_length=12), value)) == _accepts(
        lambda v: clean_name(v, max_length=12), value
    ), value


@pytest.mark.parametrize(
    ("face_box", "loaded"),
    [
        ("120,80,260,240", [120.0, 80.0, 260.0, 240.0]),
        ("-1.5,2e2,3,4", [-1.5, 200.0, 3.0, 4.0]),
        ("1,2,3", None),
        ("nan,1,2,3", None),
        ("1e999,1,2,3", None),
        ("1_0,1,2,3", None),
        (" 1,2,3,4", None),
    ],
)
def test_a_face_box_is_one_field_of_four_numbers(face_box: str, loaded: list[float] | None) -> None:
    errors = SearchFormSchema().validate(
        {
            "legal_basis_id": "e3e70682-c209-1cac-a29f-6fbed82c07cd",
            "purpose": "p",
            "face_box": face_box,
        },
        partial=("image",),
    )
    if loaded is None:
        assert "face_box" in errors
    else:
        assert "face_box" not in errors
        data = SearchFormSchema(partial=("image",)).load(
            {
                "legal_basis_id": "e3e70682-c209-1cac-a29f-6fbed82c07cd",
                "purpose": "p",
                "face_box": face_box,
            }
        )
        assert data["face_box"] == loaded
    spec = generate_spec()["components"]["schemas"]["SearchForm"]["properties"]["face_box"]
    assert spec["type"] == "string" and bool(re.fullmatch(spec["pattern"], face_box)) == (
        loaded is not None
    )


def test_a_review_note_may_span_lines_like_a_justification() -> None:
    item = {"face_id": "e3e70682-c209-1cac-a29f-6fbed82c07cd", "verdict": "no_match"}
    loaded = ReviewItemSchema().load({**item, "note": "Different ears.\nDifferent chin."})
    assert loaded["note"] == "Different ears.\nDifferent chin."


def test_role_enums_list_only_the_roles_each_endpoint_takes(
    client: FlaskClient, app: Flask
) -> None:
    schemas = generate_spec()["components"]["schemas"]
    assert schemas["AccountRequestCreate"]["properties"]["role"]["enum"] == [
        "investigator",
        "supervisor",
    ]
    assert schemas["StaffCreate"]["properties"]["role"]["enum"] == ["oversight", "curator"]
    supervisor = make_agency(client, make_admin(app))
    for role in ("admin", "AAA"):
        response = client.post(
            "/v1/account-requests",
            json={"role": role, "person": registration_body()["contact"]},
            headers=supervisor.headers,
        )
        body = problem(response, 422)
        assert [e["field"] for e in body["errors"]] == ["role"]


def test_a_key_is_issued_without_a_body(client: FlaskClient, app: Flask) -> None:
    operation = generate_spec()["paths"]["/v1/credentials"]["post"]
    assert operation["requestBody"]["required"] is False
    supervisor = make_agency(client, make_admin(app))
    response = client.post("/v1/credentials", headers=supervisor.headers)
    assert response.status_code == 201, response.get_json()


def test_a_domain_field_error_names_where_the_field_was_sent(
    client: FlaskClient, app: Flask
) -> None:
    admin = make_admin(app)
    response = client.get("/v1/ledger/proofs/consistency?from=5&to=1", headers=admin.headers)
    body = problem(response, 422)
    assert {(e["in"], e["field"]) for e in body["errors"]} == {("query", "from")}


def test_retry_after_only_on_refusals(client: FlaskClient) -> None:
    address = fresh_address()
    accepted = client.post(
        "/v1/registrations", json=registration_body(), environ_base={"REMOTE_ADDR": address}
    )
    assert accepted.status_code == 202
    invalid = client.post(
        "/v1/registrations", json={"agency": {}}, environ_base={"REMOTE_ADDR": address}
    )
    assert invalid.status_code == 422
    for response in (accepted, invalid):
        assert "Retry-After" not in response.headers
        assert "X-RateLimit-Limit" in response.headers


def test_a_problem_instance_is_a_uri_reference(client: FlaskClient, app: Flask) -> None:
    admin = make_admin(app)
    response = client.get("/v1/searches/%25zz%0B", headers=admin.headers)
    assert problem(response, 404)["instance"] == "/v1/searches/%25zz%0B"
