"""The probes answer, and readiness reports each dependency."""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

from flask import Flask
from flask.testing import FlaskClient

from api.app import create_app
from api.settings import Settings


def test_liveness(client: FlaskClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}
    assert len(response.headers["X-Request-ID"]) >= 8


def test_readiness_reports_every_dependency(client: FlaskClient) -> None:
    response = client.get("/readyz")
    body = response.get_json()
    assert set(body["checks"]) == {
        "database",
        "vector_index",
        "model_pack",
        "ledger_key",
        "ledger",
        "disk",
    }
    assert "entries" in body["checks"]["ledger"]["detail"]
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


class _Kept(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_readiness_never_shows_paths_or_exception_text(
    app: Flask, settings: Settings, tmp_path: Path
) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the index's directory should be")
    broken = create_app(replace(settings, milvus_uri=str(blocker / "gallery.db")))
    kept = _Kept()
    logging.getLogger("facewarden.api").addHandler(kept)
    try:
        response = broken.test_client().get("/readyz")
    finally:
        logging.getLogger("facewarden.api").removeHandler(kept)
    assert response.status_code == 503
    body = response.get_json()
    assert body["status"] == "not-ready"
    failed = {name: c for name, c in body["checks"].items() if not c["ok"]}
    assert set(failed) >= {"vector_index"}
    request_id = response.headers["X-Request-ID"]
    for check in failed.values():
        assert check["detail"] == (
            f"not usable; the server log has the cause (request id {request_id})"
        )
    text = response.get_data(as_text=True)
    assert str(tmp_path) not in text and "gallery.db" not in text
    assert "IndexUnavailable" not in text and "Error" not in text
    # The cause is in the server's log, under the same request id.
    logged = [r for r in kept.records if r.getMessage() == "readiness check failed"]
    assert logged and all(getattr(r, "request_id", None) == request_id for r in logged)
    assert any(r.exc_info and str(blocker) in str(r.exc_info[1]) for r in logged)
