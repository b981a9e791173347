"""Uploaded images in: identify by content, bound size before decoding, decode to BGR uint8.

Only JPEG, PNG and WebP are accepted, recognised by their magic bytes, never by file name or
Content-Type. Byte size and pixel dimensions are checked from the header alone, so a small file
declaring a huge canvas is refused without allocating it.
"""

from __future__ import annotations

import hashlib
import io
import warnings
from dataclasses import dataclass
from typing import Final

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from biometrics.errors import ImageTooLarge, InvalidImage, UnsupportedImageType
from biometrics.ports import ImageArray

__all__ = [
    "DEFAULT_MAX_BYTES",
    "DEFAULT_MAX_PIXELS",
    "SUPPORTED_FORMATS",
    "DecodedImage",
    "decode_image",
    "sniff_format",
]

DEFAULT_MAX_BYTES: Final = 10 * 1024 * 1024
DEFAULT_MAX_PIXELS: Final = 40_000_000
SUPPORTED_FORMATS: Final = ("jpeg", "png", "webp")

_PIL_NAMES: Final = {"jpeg": "JPEG", "png": "PNG", "webp": "WEBP"}
# Alpha is flattened onto white: the usual background of identity and custody photos.
_BACKGROUND: Final = (255, 255, 255)
_SIXTEEN_BIT_MODES: Final = frozenset({"I;16", "I;16B", "I;16L", "I;16N", "I", "F"})
# Exceptions Pillow's decoders are known to raise on hostile or damaged input.
_DECODE_ERRORS: Final = (
    UnidentifiedImageError,
    OSError,
    SyntaxError,
    ValueError,
    TypeError,
    IndexError,
    KeyError,
    EOFError,
    ZeroDivisionError,
    MemoryError,
    Image.DecompressionBombError,
)


@dataclass(frozen=True, slots=True, eq=False)
class DecodedImage:
    """A decoded upload: H x W x 3 BGR uint8 pixels (EXIF orientation applied) and where they
    came from. `sha256` is the hex digest of the uploaded bytes, as stored in the audit ledger."""

    pixels: ImageArray
    format: str
    width: int
    height: int
    sha256: str


def sniff_format(data: bytes) -> str | None:
    """'jpeg', 'png' or 'webp' from the leading magic bytes, or None for anything else."""
    if data.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    return None


def decode_image(
    data: bytes,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> DecodedImage:
    """Validate and decode an uploaded image.

    Checks, in order: byte size; format by magic bytes; pixel dimensions from the header; then a
    full decode, EXIF orientation, and conversion of palette, alpha, grey, CMYK and 16-bit modes
    to 8-bit RGB (returned as BGR).

    Raises ImageTooLarge, UnsupportedImageType, InvalidImage.
    """
    if len(data) > max_bytes:
        raise ImageTooLarge(
            f"image is {len(data)} bytes; the limit is {max_bytes}",
            limit=max_bytes,
            actual=len(data),
        )
    fmt = sniff_format(data)
    if fmt is None:
        raise UnsupportedImageType("only JPEG, PNG and WebP images are accepted")
    try:
        with warnings.catch_warnings():
            # Our own pixel limit applies below; Pillow's bomb warning would only duplicate it.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=[_PIL_NAMES[fmt]])
    except Image.DecompressionBombError as exc:
        raise ImageTooLarge(
            f"image declares too many pixels: {exc}", limit=max_pixels, actual=max_pixels + 1
        ) from exc
    except _DECODE_ERRORS as exc:
        raise InvalidImage(f"not a readable {fmt.upper()} image: {exc}") from exc
    with image:
        width, height = image.size
        if width <= 0 or height <= 0:
            raise InvalidImage(f"{fmt.upper()} image declares an empty {width}x{height} canvas")
        if width * height > max_pixels:
            raise ImageTooLarge(
                f"image is {width}x{height} = {width * height} pixels; the limit is {max_pixels}",
                limit=max_pixels,
                actual=width * height,
            )
        try:
            image.load()
            upright = ImageOps.exif_transpose(image)
            rgb = _to_rgb(upright)
            pixels = np.ascontiguousarray(np.asarray(rgb, dtype=np.uint8)[:, :, ::-1])
        except _DECODE_ERRORS as exc:
            raise InvalidImage(f"{fmt.upper()} image is truncated or corrupt: {exc}") from exc
    return DecodedImage(
        pixels=pixels,
        format=fmt,
        width=int(pixels.shape[1]),
        height=int(pixels.shape[0]),
        sha256=hashlib.sha256(data).hexdigest(),
    )


def _to_rgb(image: Image.Image) -> Image.Image:
    """8-bit RGB from any Pillow mode; alpha flattened onto white, 16-bit scaled, not clipped."""
    if image.mode in _SIXTEEN_BIT_MODES:
        values = np.asarray(image, dtype=np.float64)
        top = 65535.0 if image.mode.startswith("I;16") or values.max(initial=0) > 255 else 255.0
        grey = np.clip(values * (255.0 / top), 0, 255).round().astype(np.uint8)
        return Image.fromarray(grey).convert("RGB")
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA", "La", "RGBa"):
        rgba = image.convert("RGBA")
        canvas = Image.new("RGB", rgba.size, _BACKGROUND)
        canvas.paste(rgba, mask=rgba.getchannel("A"))
        return canvas
    if image.mode != "RGB":
        return image.convert("RGB")
    return image
