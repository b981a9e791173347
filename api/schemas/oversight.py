"""Schemas of the accountability report endpoint."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import validate


class ReportQuerySchema(ma.Schema):
    start = ma.fields.String(
        data_key="from",
        metadata={"description": "ISO 8601 date or time, inclusive (entry timestamps, UTC)"},
    )
    end = ma.fields.String(
        data_key="to", metadata={"description": "ISO 8601 date or time, exclusive"}
    )
    format = ma.fields.String(
        validate=validate.OneOf(["json", "csv", "svg"]),
        metadata={
            "description": "json (default), csv (also `Accept: text/csv`), or svg: the chart "
            "of searches per month (also `Accept: image/svg+xml`)"
        },
    )
