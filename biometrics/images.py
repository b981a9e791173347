"""Uploaded images in: identify by content, bound size before decoding, decode to BGR uint8.

Only JPEG, PNG and WebP are accepted, recognised by their magic bytes, never by file name or
Content-Type. Byte size, pixel dimensions and bit depth are checked from the header alone (by
our limit, with our message, before Pillow's own bomb check), so a small file declaring a huge
canvas is refused without allocating it. Decoding then makes no float copy: at most a few bytes
per pixel beyond Pillow's own buffer (``bench/decode.py`` measures it).
"""

from __future__ import annotations

import hashlib
import io
import warnings
from dataclasses import dataclass
from typing import Final

import numpy as np
from PIL import (
    Image,
    ImageFile,
    ImageOps,
    JpegImagePlugin,
    PngImagePlugin,
    UnidentifiedImageError,
    WebPImagePlugin,
)

from biometrics.errors import ImageTooLarge, InvalidImage, UnsupportedImageType
from biometrics.ports import ImageArray

__all__ = [
    "DEFAULT_MAX_BYTES",
    "DEFAULT_MAX_PIXELS",
    "DEFAULT_MAX_PROBE_PIXELS",
    "SUPPORTED_FORMATS",
    "DecodedImage",
    "decode_image",
    "sniff_format",
]

DEFAULT_MAX_BYTES: Final = 10 * 1024 * 1024
DEFAULT_MAX_PIXELS: Final = 40_000_000
DEFAULT_MAX_PROBE_PIXELS: Final = 12_000_000
SUPPORTED_FORMATS: Final = ("jpeg", "png", "webp")

# The format's own class parses the header without Pillow's bomb check, which would refuse
# with its own text above its own limit; ours applies, naming the setting.
_HEADER_READERS: Final[dict[str, type[ImageFile.ImageFile]]] = {
    "jpeg": JpegImagePlugin.JpegImageFile,
    "png": PngImagePlugin.PngImageFile,
    "webp": WebPImagePlugin.WebPImageFile,
}
_ROWS_PER_CHUNK: Final = 256  # 16-bit rows rescaled at a time, to bound the temporary copy
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
    limit_name: str = "max_pixels",
) -> DecodedImage:
    """Validate and decode an uploaded image.

    Checks, in order: byte size; format by magic bytes; pixel dimensions and bit depth from the
    header (a 16-bit PNG counts each pixel twice against ``max_pixels``, the setting
    ``limit_name`` names in the message); then the first frame's full decode, EXIF orientation,
    and conversion of palette, alpha, grey, CMYK and 16-bit modes to 8-bit RGB (as BGR).

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
            image: Image.Image = _HEADER_READERS[fmt](io.BytesIO(data))
    except _DECODE_ERRORS as exc:
        raise InvalidImage(f"not a readable {fmt.upper()} image: {exc}") from exc
    with image:
        width, height = image.size
        if width <= 0 or height <= 0:
            raise InvalidImage(f"{fmt.upper()} image declares an empty {width}x{height} canvas")
        _check_pixels(fmt, data, width, height, max_pixels, limit_name)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                image.load()
                upright = ImageOps.exif_transpose(image)
            pixels = _bgr(_to_rgb(upright))
        except _DECODE_ERRORS as exc:
            raise InvalidImage(f"{fmt.upper()} image is truncated or corrupt: {exc}") from exc
    return DecodedImage(
        pixels=pixels,
        format=fmt,
        width=int(pixels.shape[1]),
        height=int(pixels.shape[0]),
        sha256=hashlib.sha256(data).hexdigest(),
    )


def _check_pixels(
    fmt: str, data: bytes, width: int, height: int, max_pixels: int, limit_name: str
) -> None:
    # PNG's IHDR holds the bit depth at byte 24 (RFC 2083 §4.1.1); JPEG and WebP are 8-bit here.
    sixteen = fmt == "png" and len(data) > 24 and data[24] == 16
    cost = width * height * (2 if sixteen else 1)
    # Pillow's own bomb limit stays a ceiling even when the setting is above it.
    ceiling = 2 * (Image.MAX_IMAGE_PIXELS or max_pixels)
    if cost > min(max_pixels, ceiling):
        depth = " at 16 bits (each pixel counts twice)" if sixteen else ""
        above = f", and none above {ceiling} is ever decoded" if cost > ceiling else ""
        raise ImageTooLarge(
            f"image is {width}x{height} = {width * height} pixels{depth}; the limit is "
            f"{max_pixels} ({limit_name}){above}: send a smaller image",
            limit=min(max_pixels, ceiling),
            actual=cost,
        )


def _bgr(rgb: Image.Image) -> ImageArray:
    """H x W x 3 BGR uint8 in one copy: the channels are swapped in place."""
    pixels = np.array(rgb, dtype=np.uint8)
    red = pixels[:, :, 0].copy()
    pixels[:, :, 0] = pixels[:, :, 2]
    pixels[:, :, 2] = red
    return pixels


def _to_rgb(image: Image.Image) -> Image.Image:
    """8-bit RGB from any Pillow mode; alpha flattened onto white, 16-bit scaled, not clipped."""
    if image.mode in _SIXTEEN_BIT_MODES:
        return Image.fromarray(_grey8(image)).convert("RGB")
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


def _grey8(image: Image.Image) -> ImageArray:
    """16-bit (or 32-bit) grey scaled to 8 bits, rounded, in row chunks: no float64 copy."""
    values = np.asarray(image)
    wide = image.mode.startswith("I;16") or int(values.max(initial=0)) > 255
    top = 65535 if wide else 255
    grey = np.empty(values.shape, dtype=np.uint8)
    for row in range(0, values.shape[0], _ROWS_PER_CHUNK):
        chunk = np.clip(values[row : row + _ROWS_PER_CHUNK], 0, top).astype(np.int64)
        grey[row : row + _ROWS_PER_CHUNK] = (chunk * 255 + top // 2) // top
    return grey
