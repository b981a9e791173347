"""One flask-smorest Blueprint per resource; ``BLUEPRINTS`` is the list ``create_app`` registers."""

from __future__ import annotations

from flask_smorest import Blueprint

from api.resources import health

__all__ = ["BLUEPRINTS"]

BLUEPRINTS: list[Blueprint] = [health.blp]
