"""The Blueprint of every resource: flask-smorest's, with a ``multipart`` argument location.

An upload is one ``multipart/form-data`` body: its file parts and its form fields are read
and validated by one schema, and documented as one request body (OpenAPI 3.1 §4.8.14.4),
not as the ``formData`` parameter of OpenAPI 2.
"""

from __future__ import annotations

import flask_smorest
import marshmallow as ma
from flask import Request
from webargs.flaskparser import FlaskParser
from webargs.multidictproxy import MultiDictProxy
from werkzeug.datastructures import CombinedMultiDict

__all__ = ["LOCATION", "MULTIPART", "Blueprint"]

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
