"""A photo with several faces, shown again with its faces numbered so that one is chosen: the
search's probe and the erasure's photo of the data subject alike.

The photo travels back with the choice as a base64 form field, so it need not be attached
again, unless it would pass Flask's form limit; then the form asks for it again.
"""

from __future__ import annotations

import base64
import binascii
import io
from typing import Any

from flask import current_app, request
from PIL import Image, UnidentifiedImageError
from werkzeug.datastructures import FileStorage

from biometrics.images import sniff_format

__all__ = ["CARRIED_FIELD", "carried", "picture", "uploaded_or_carried"]

CARRIED_FIELD = "probe"  # the photo carried, base64, while a face is chosen


def picture(data: bytes) -> dict[str, Any] | None:
    """The photo as a data: URI with its size, to number its faces on the page."""
    kind = sniff_format(data)
    if kind is None:
        return None
    try:
        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size
    except (UnidentifiedImageError, OSError):
        return None
    uri = f"data:image/{kind};base64," + base64.b64encode(data).decode("ascii")
    return {"uri": uri, "width": width, "height": height}


def carried(data: bytes) -> str | None:
    """The photo as the form field that carries it back, if it fits Flask's form limit."""
    encoded = base64.b64encode(data).decode("ascii")
    limit = int(current_app.config.get("MAX_FORM_MEMORY_SIZE") or 500_000)
    return encoded if len(encoded) < limit - 4096 else None


def uploaded_or_carried(field: str = "image") -> bytes | None:
    """The photo of this request: the file uploaded in ``field``, else the one carried back."""
    upload = request.files.get(field)
    if isinstance(upload, FileStorage) and upload.filename:
        return bytes(upload.read())
    kept = request.form.get(CARRIED_FIELD, "")
    if kept:
        try:
            return base64.b64decode(kept, validate=True)
        except (binascii.Error, ValueError):
            return None
    return None
