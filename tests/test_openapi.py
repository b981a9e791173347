"""The committed OpenAPI document is the one the app generates."""

from __future__ import annotations

import json

from flask.testing import FlaskClient

from api.spec import generate_spec
from tests.conftest import REPO


def test_committed_spec_is_current() -> None:
    committed = json.loads((REPO / "openapi" / "openapi.json").read_text())
    assert committed == generate_spec(), (
        "openapi/openapi.json is stale: run `facewarden openapi write` and commit it"
    )


def test_spec_is_openapi_3_1_with_versioned_paths() -> None:
    spec = generate_spec()
    assert spec["openapi"].startswith("3.1")
    api_paths = [p for p in spec["paths"] if p not in ("/healthz", "/readyz")]
    assert all(p.startswith("/v1/") for p in api_paths)


def test_docs_are_served_from_local_assets(client: FlaskClient) -> None:
    page = client.get("/docs")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "/docs/static/swagger-ui-bundle.js" in html
    assert "http" not in html.split("<script")[1].split("</script>")[0]  # no CDN script
    asset = client.get("/docs/static/swagger-ui-bundle.js")
    assert asset.status_code == 200 and len(asset.data) > 100_000
    assert client.get("/openapi.json").get_json()["info"]["title"] == "FaceWarden"


def test_committed_spec_is_valid_openapi_3_1() -> None:
    from openapi_spec_validator import validate

    validate(json.loads((REPO / "openapi" / "openapi.json").read_text()))


def test_problem_table_doc_is_current() -> None:
    from api.spec import problems_markdown

    assert (REPO / "docs" / "problems.md").read_text() == problems_markdown(), (
        "docs/problems.md is stale: run `facewarden openapi write` and commit it"
    )


def test_uploads_are_multipart_bodies_with_a_binary_file_field() -> None:
    spec = generate_spec()
    for path in ("/v1/searches", "/v1/gallery/photos", "/v1/erasures/preview"):
        operation = spec["paths"][path]["post"]
        assert all(p["in"] != "formData" for p in operation.get("parameters", []))
        ref = operation["requestBody"]["content"]["multipart/form-data"]["schema"]["$ref"]
        form = spec["components"]["schemas"][ref.rsplit("/", 1)[1]]
        assert form["properties"]["image"] == {
            "description": "The image file (JPEG, PNG or WebP).",
            "type": "string",
            "format": "binary",
        }
        assert "image" in form["required"]


def test_every_error_response_is_a_documented_problem() -> None:
    spec = generate_spec()
    problem = spec["components"]["schemas"]["Problem"]
    assert problem["properties"]["status"]["type"] == "integer"
    assert set(problem["required"]) == {
        "type",
        "title",
        "status",
        "detail",
        "instance",
        "request_id",
    }
    assert problem["properties"]["errors"]["type"] == "array"
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            if method == "parameters":
                continue
            errors = {
                s: r for s, r in operation["responses"].items() if not s.startswith(("2", "3"))
            }
            assert "default" in errors and len(errors) > 1, (method, path)
            for status, response in errors.items():
                assert list(response["content"]) == ["application/problem+json"], (path, status)


def test_problem_extensions_are_named_in_the_schema() -> None:
    spec = generate_spec()
    search = spec["paths"]["/v1/searches"]["post"]["responses"]
    refs = {
        r["$ref"].rsplit("/", 1)[1]
        for r in search["422"]["content"]["application/problem+json"]["schema"]["anyOf"]
    }
    assert {"MultipleFacesProblem", "ThresholdProblem", "ValidationProblem", "Problem"} <= refs
    members = spec["components"]["schemas"]["LegalBasisProblem"]["allOf"][1]["properties"]
    assert set(members) == {"legal_basis_id", "legal_basis_state"}
    assert search["429"]["headers"]["Retry-After"]["required"] is True


def test_created_objects_link_to_their_next_operations() -> None:
    spec = generate_spec()
    ids = {
        o["operationId"]
        for ops in spec["paths"].values()
        for m, o in ops.items()
        if m != "parameters"
    }
    created = spec["paths"]["/v1/searches"]["post"]["responses"]["201"]
    assert created["headers"]["Location"]["required"] is True
    assert created["links"]["get_searches_by_search_id"]["parameters"] == {
        "search_id": "$response.body#/id"
    }
    for ops in spec["paths"].values():
        for method, operation in ops.items():
            if method == "parameters":
                continue
            for response in operation["responses"].values():
                for link in response.get("links", {}).values():
                    assert link["operationId"] in ids
