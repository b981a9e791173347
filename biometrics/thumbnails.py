"""Face thumbnails for human review: the box with a margin, scaled down, as JPEG."""

from __future__ import annotations

import cv2

from biometrics.errors import InvalidImage
from biometrics.ports import Box, ImageArray

__all__ = ["face_thumbnail"]


def face_thumbnail(
    image: ImageArray, box: Box, *, size: int = 160, margin: float = 0.25, quality: int = 85
) -> bytes:
    """A JPEG of ``box`` grown by ``margin`` on each side, its longer side at most ``size`` px.

    Raises InvalidImage when the box lies outside the image.
    """
    height, width = image.shape[:2]
    dx, dy = box.width * margin, box.height * margin
    x1, y1 = max(0, int(box.x1 - dx)), max(0, int(box.y1 - dy))
    x2, y2 = min(width, round(box.x2 + dx)), min(height, round(box.y2 + dy))
    if x2 <= x1 or y2 <= y1:
        raise InvalidImage("the face box lies outside the image")
    crop = image[y1:y2, x1:x2]
    scale = size / max(crop.shape[:2])
    small = (
        crop
        if scale >= 1
        else cv2.resize(crop, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    )
    ok, encoded = cv2.imencode(".jpg", small, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise InvalidImage("could not encode the thumbnail")
    return bytes(encoded.tobytes())
