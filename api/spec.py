"""Generate the OpenAPI document from the app, without a database or key."""

from __future__ import annotations

from typing import Any

from flask import Flask
from flask_smorest import Api

__all__ = ["generate_spec"]


def generate_spec() -> dict[str, Any]:
    """The OpenAPI 3.1 document of every registered blueprint."""
    from api.app import API_VERSION, configure_api
    from api.resources import BLUEPRINTS

    app = Flask("facewarden-spec")
    configure_api(app, max_request_bytes=0)
    app.config["API_VERSION"] = API_VERSION
    api = Api(app)
    for blueprint in BLUEPRINTS:
        api.register_blueprint(blueprint)
    with app.app_context():
        spec: dict[str, Any] = api.spec.to_dict()
    return spec
