"""Schemas of the accountability report endpoint."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import validate

_BOUND = "ISO 8601 date (its midnight UTC) or time with an offset such as Z"


class ReportQuerySchema(ma.Schema):
    start = ma.fields.String(
        data_key="from",
        metadata={"description": f"{_BOUND}, inclusive"},
    )
    end = ma.fields.String(
        data_key="to",
        metadata={"description": f"{_BOUND}, exclusive"},
    )
    format = ma.fields.String(
        validate=validate.OneOf(["json", "csv", "svg"]),
        metadata={
            "description": "json (default), csv (also `Accept: text/csv`), or svg: the chart "
            "of searches per month (also `Accept: image/svg+xml`)"
        },
    )
