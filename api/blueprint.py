"""The Blueprint of every resource: flask-smorest's, with a ``multipart`` argument location
and ``operation``, the guard-arguments-response stack of a view in one decorator.

An upload is one ``multipart/form-data`` body: its file parts and its form fields are read
and validated by one schema, and documented as one request body (OpenAPI 3.1 §4.8.14.4),
not as the ``formData`` parameter of OpenAPI 2.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import flask_smorest
import marshmallow as ma
from flask import Request
from webargs.flaskparser import FlaskParser
from webargs.multidictproxy import MultiDictProxy
from werkzeug.datastructures import CombinedMultiDict

from api.auth import require
from governance.identity.permissions import Permission

__all__ = ["LOCATION", "MULTIPART", "Blueprint"]

F = TypeVar("F", bound=Callable[..., Any])

MULTIPART = "multipart"
LOCATION = {
    "Location": {
        "description": "The created object's URL.",
        "required": True,
        "schema": {"type": "string", "format": "uri-reference"},
    }
}
"""The ``headers`` of a documented response that names what it created."""


class _Parser(FlaskParser):
    """webargs' Flask parser, plus ``multipart``: the form fields and the files together."""

    def load_multipart(self, req: Request, schema: ma.Schema) -> MultiDictProxy:
        return self._makeproxy(CombinedMultiDict([req.files, req.form]), schema)


_Parser.__location_map__ = {**FlaskParser.__location_map__, MULTIPART: "load_multipart"}


class Blueprint(flask_smorest.Blueprint):  # type: ignore[misc]
    """flask-smorest's Blueprint whose arguments may also come from a ``multipart`` body."""

    ARGUMENTS_PARSER = _Parser()
    DEFAULT_LOCATION_CONTENT_TYPE_MAPPING = {
        **flask_smorest.Blueprint.DEFAULT_LOCATION_CONTENT_TYPE_MAPPING,
        MULTIPART: "multipart/form-data",
    }

    @classmethod
    def resource(cls, module: str, description: str) -> Blueprint:
        """The blueprint of the resource module ``module`` (its ``__name__``): named after the
        module, served under ``/v1/`` and the name with dashes for underscores.
        """
        name = module.rsplit(".", 1)[-1]
        return cls(
            name, module, url_prefix=f"/v1/{name.replace('_', '-')}", description=description
        )

    def operation(
        self,
        permission: Permission,
        status: int,
        schema: type[ma.Schema] | ma.Schema | None = None,
        *,
        body: type[ma.Schema] | None = None,
        query: type[ma.Schema] | None = None,
        form: type[ma.Schema] | None = None,
        optional: bool = False,
        costly: bool = False,
        **response: Any,
    ) -> Callable[[F], F]:
        """``require(permission, costly=costly)``, then ``arguments`` of the ``body`` (JSON,
        ``optional`` or not), ``query`` or ``form`` (multipart) schema given, then ``response``
        with ``status``, ``schema`` and the other ``response`` options: the stack every guarded
        view carries, in one decorator. Raises ValueError for more than one argument schema.
        """
        given = {"json": body, "query": query, MULTIPART: form}
        arguments = [(where, s) for where, s in given.items() if s is not None]
        if len(arguments) > 1:
            raise ValueError("A view parses one of body, query or form.")

        def decorator(view: F) -> F:
            documented = self.response(status, schema, **response)(view)
            for location, parsed in arguments:
                documented = self.arguments(parsed, location=location, required=not optional)(
                    documented
                )
            guarded: F = require(permission, costly=costly)(documented)
            return guarded

        return decorator
