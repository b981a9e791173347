"""Liveness and readiness probes for load balancers and orchestrators."""

from __future__ import annotations

import logging
import shutil
from typing import Any

from flask import g
from flask.views import MethodView
from sqlalchemy import text

from api.blueprint import Blueprint
from api.context import build_photo_store, engines, pack, runtime
from api.ratelimit import check_store
from api.schemas.health import HealthSchema, ReadinessSchema
from governance.core.recording import signer_consistency

blp = Blueprint("health", __name__, description="Liveness and readiness.")
log = logging.getLogger("facewarden.api")


@blp.route("/healthz")
class Liveness(MethodView):
    @blp.response(200, HealthSchema)
    def get(self) -> dict[str, Any]:
        """Report that the process answers."""
        return {"status": "ok"}


@blp.route("/readyz")
class Readiness(MethodView):
    @blp.response(200, ReadinessSchema)
    @blp.alt_response(503, schema=ReadinessSchema, description="A dependency is not ready.")
    def get(self) -> tuple[dict[str, Any], int]:
        """Report whether the database, index, models, ledger key, disk and stores are usable."""
        settings = runtime().settings
        parts = dict(_CHECKS)
        if settings.s3_location is not None:  # the data directory needs no probe
            parts["photo_store"] = _photo_store
        if not settings.ratelimit_storage_uri.startswith("memory://"):  # a shared store
            parts["rate_limits"] = check_store
        checks = {name: _run(check) for name, check in parts.items()}
        ready = all(c["ok"] for c in checks.values())
        return {"status": "ready" if ready else "not-ready", "checks": checks}, (
            200 if ready else 503
        )


def _database() -> str:
    with runtime().engine.connect() as conn:
        conn.execute(text("SELECT 1"))
    return runtime().engine.dialect.name


def _disk() -> str:
    settings = runtime().settings
    free = shutil.disk_usage(settings.data_dir).free // 2**20
    if free < settings.min_free_disk_mb:
        raise OSError(
            f"{free} MiB free under {settings.data_dir}, below FACEWARDEN_MIN_FREE_DISK_MB="
            f"{settings.min_free_disk_mb}: free space, or grow the disk"
        )
    return "enough free space"


def _ledger_key() -> str:
    return runtime().signer.verifier_key


def _ledger() -> str:
    rt = runtime()
    with rt.sessions() as session:
        return signer_consistency(session, rt.keys)


def _model_pack() -> str:
    chosen = pack()
    engines()  # the models load
    return f"{chosen.name} {chosen.version} (recognizer sha256 {chosen.recognizer.sha256[:12]})"


def _vector_index() -> str:
    index = engines().index
    return f"{index.collection}: {index.count()} faces"


def _photo_store() -> str:
    rt = runtime()
    store = rt.lazy.get("photo_store")
    if store is None:  # made once: a boto3 client takes a while to build
        store = rt.lazy.setdefault("photo_store", build_photo_store(rt.settings))
    detail: str = store.check()  # one HEAD request of the bucket
    return detail


_CHECKS = {
    "database": _database,
    "vector_index": _vector_index,
    "model_pack": _model_pack,
    "ledger_key": _ledger_key,
    "ledger": _ledger,
    "disk": _disk,
}


def _run(check: Any) -> dict[str, Any]:
    try:
        return {"ok": True, "detail": check()}
    except Exception:  # a probe reports failures, it does not raise them
        # The exception names files, hosts and versions: it goes to the log, not to callers
        # (the probe is public).
        request_id = g.get("request_id")
        log.exception("readiness check failed", extra={"request_id": request_id})
        return {
            "ok": False,
            "detail": f"not usable; the server log has the cause (request id {request_id})",
        }
