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
