"""The probes answer, and readiness reports each dependency."""

from __future__ import annotations

from flask.testing import FlaskClient


def test_liveness(client: FlaskClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}
    assert len(response.headers["X-Request-ID"]) >= 8


def test_readiness_reports_every_dependency(client: FlaskClient) -> None:
    response = client.get("/readyz")
    body = response.get_json()
    assert set(body["checks"]) == {"database", "vector_index", "model_pack", "ledger_key"}
    assert body["checks"]["database"]["ok"] is True
    assert body["checks"]["ledger_key"]["ok"] is True
    assert body["checks"]["ledger_key"]["detail"].startswith("test.facewarden.local/ledger+")
    ready = all(c["ok"] for c in body["checks"].values())
    assert response.status_code == (200 if ready else 503)
    assert body["status"] == ("ready" if ready else "not-ready")


def test_a_supplied_request_id_is_echoed_and_a_hostile_one_replaced(client: FlaskClient) -> None:
    assert (
        client.get("/healthz", headers={"X-Request-ID": "abc123def456"}).headers["X-Request-ID"]
        == "abc123def456"
    )
    replaced = client.get("/healthz", headers={"X-Request-ID": "<script>alert(1)</script>"})
    assert replaced.headers["X-Request-ID"] != "<script>alert(1)</script>"
    assert len(replaced.headers["X-Request-ID"]) == 32
