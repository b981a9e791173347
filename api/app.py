"""The application factory: ``create_app(settings)`` wires settings, database, key and routes."""

from __future__ import annotations

import logging
import re
import time
import uuid
from pathlib import Path
from typing import Any

import flask_swagger_ui
from flask import Flask, Response, current_app, g, request, send_from_directory
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.routing import IntegerConverter, Map

from api.auth import install_auth
from api.console import install_console
from api.context import EXTENSION, Runtime, build_mailer, loaded_signing_keys
from api.errors import install_error_handlers
from api.headers import secure_response
from api.logs import configure_logging
from api.ratelimit import init_rate_limits
from api.settings import ConfigError, Settings
from api.spec import build_api
from biometrics.errors import PackError
from biometrics.packs import load_pack
from governance import wiring
from governance.core.db import make_engine, make_session_factory
from governance.core.witnessing import Witnessing

__all__ = ["API_VERSION", "configure_api", "create_app"]

API_VERSION = "1.0.0"
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")
_SWAGGER_ASSETS = Path(flask_swagger_ui.__file__).parent / "dist"

log = logging.getLogger("facewarden.api")


def create_app(settings: Settings | None = None, *, witnessing: bool = True) -> Flask:
    """Build the WSGI application; ``witnessing=False`` (a start-up check that serves nothing)
    submits nothing to the witnesses.

    Raises ConfigError when a required file (signing key, database) cannot be used, naming the
    variable to set.
    """
    settings = settings or Settings.from_env()
    configure_logging(settings.log_level)
    app = Flask("facewarden")
    configure_api(app, max_request_bytes=settings.max_request_bytes)
    app.extensions[EXTENSION] = _build_runtime(settings, witnessing=witnessing)
    init_rate_limits(app, settings)

    build_api(app)
    install_error_handlers(app)
    install_console(app)

    @app.get("/docs/static/<path:filename>")
    def swagger_assets(filename: str) -> Response:
        return send_from_directory(_SWAGGER_ASSETS, filename, max_age=86400)

    app.before_request(_start_request)
    install_auth(app)  # after _start_request: its 400 problems carry the request id
    app.after_request(_finish_request)
    return app


MAX_PATH_INTEGER = 2**53 - 1
"""The largest integer a path accepts: exact in JSON, within a SQL BIGINT (so never a 500)."""


class BoundedIntegerConverter(IntegerConverter):
    """``<int:...>`` of every route: 0 to MAX_PATH_INTEGER, else the route does not match (404).

    Registered as ``int`` itself, so no route can forget the bound; the OpenAPI shows it.
    """

    def __init__(self, url_map: Map, *args: Any, **kwargs: Any) -> None:
        asked = kwargs.get("max")
        kwargs["max"] = MAX_PATH_INTEGER if asked is None else min(asked, MAX_PATH_INTEGER)
        kwargs.setdefault("min", 0)
        super().__init__(url_map, *args, **kwargs)


def configure_api(app: Flask, *, max_request_bytes: int) -> None:
    """Set the flask-smorest and Flask options shared by the service and the spec generator."""
    app.url_map.converters["int"] = BoundedIntegerConverter
    app.config.update(
        API_TITLE="FaceWarden",
        API_VERSION=API_VERSION,
        OPENAPI_VERSION="3.1.0",
        OPENAPI_URL_PREFIX="/",
        OPENAPI_JSON_PATH="openapi.json",
        OPENAPI_SWAGGER_UI_PATH="/docs",
        OPENAPI_SWAGGER_UI_URL="/docs/static/",
        MAX_CONTENT_LENGTH=max_request_bytes or None,
        # A form field may be as large as the body may: the console carries a probe photo
        # (base64) back when a face must be chosen; the body limit still bounds it.
        MAX_FORM_MEMORY_SIZE=max_request_bytes or None,
        JSON_SORT_KEYS=False,
        API_SPEC_OPTIONS={
            "info": {
                "description": (
                    "Accountable face search: approved agencies, recorded legal bases, a gallery "
                    "with provenance, and a signed Merkle audit ledger. Errors are RFC 9457 "
                    "problem details."
                ),
            },
            "components": {
                "securitySchemes": {
                    "bearer": {
                        "type": "http",
                        "scheme": "bearer",
                        "description": "An API key shaped fw_<id>_<secret>.",
                    }
                }
            },
        },
    )


def _build_runtime(settings: Settings, *, witnessing: bool) -> Runtime:
    engine = make_engine(settings.database_url, answer_timeout=settings.database_timeout_seconds)
    keys = loaded_signing_keys(settings)
    pack_dir = settings.models_dir / settings.model_pack
    try:
        model_pack = load_pack(pack_dir)
    except PackError as exc:
        raise ConfigError(
            f"model pack {settings.model_pack!r} is not usable ({exc}): run `facewarden models "
            f"install {settings.model_pack}`, or set FACEWARDEN_MODEL_PACK / FACEWARDEN_MODELS_DIR"
        ) from exc
    sessions = make_session_factory(engine)
    witnesses = settings.witness_endpoints if witnessing else ()
    rounds = None
    if witnesses:
        rounds = Witnessing(
            sessions,
            witnesses,
            lock_path=keys.signer_state.path.with_name("ledger-witnessing.lock"),
            state=keys.signer_state,
            quorum=settings.witness_quorum,
            timeout=settings.witness_timeout_seconds,
            interval=settings.witness_interval_ms / 1000,
        )
        # One round before this process serves: a database restored from an older backup, or
        # cut, meets what the witnesses saw before a single act is signed over it.
        try:
            rounds.run_once()
        except Exception:  # a database or a witness that is down: the thread tries again
            log.exception("the first witness round failed; the next is in %.1f s", rounds.interval)
        rounds.start()
    return Runtime(
        settings=settings,
        engine=engine,
        sessions=sessions,
        keys=keys,
        model_pack=model_pack,
        mailer=build_mailer(settings),
        hooks=wiring.hooks(),
        witnessing=rounds,
    )


def _start_request() -> None:
    supplied = request.headers.get("X-Request-ID", "")
    g.request_id = supplied if _REQUEST_ID.match(supplied) else uuid.uuid4().hex
    g.started = time.perf_counter()
    # A body over the limit is refused before anything else looks at the request (auth
    # included), as a proxy's client_max_body_size would; the server has read it, so the
    # client hears this answer rather than a reset connection.
    limit = current_app.config["MAX_CONTENT_LENGTH"]
    if limit and (request.content_length or 0) > limit:
        raise RequestEntityTooLarge(f"the request body is over {limit} bytes")


def _finish_request(response: Response) -> Response:
    response.headers["X-Request-ID"] = g.get("request_id", "")
    secure_response(request, response)
    if request.is_secure:
        response.headers.setdefault("Strict-Transport-Security", "max-age=31536000")
    principal = g.get("principal")
    log.info(
        "request",
        extra={
            "request_id": g.get("request_id"),
            "method": request.method,
            "path": request.path,
            "status": response.status_code,
            "principal": getattr(principal, "account_id", None),
            "latency_ms": round(
                (time.perf_counter() - g.get("started", time.perf_counter())) * 1000, 2
            ),
        },
    )
    return response
