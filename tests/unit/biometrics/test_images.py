"""Tests for biometrics/images.py: content sniffing, size bounds before decoding, modes, EXIF."""

from __future__ import annotations

import contextlib
import hashlib
import io
import struct
import time
import tracemalloc
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from biometrics.errors import (
    BiometricsError,
    ImageError,
    ImageTooLarge,
    InvalidImage,
    UnsupportedImageType,
)
from biometrics.images import decode_image, sniff_format


def _encode(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def _photo(shared_dir: Path) -> Image.Image:
    path = next(iter(sorted((shared_dir / "faces" / "dev").glob("*.jpg"))))
    with Image.open(path) as img:
        return img.convert("RGB")


@pytest.fixture(scope="module")
def photo(shared_dir: Path) -> Image.Image:
    return _photo(shared_dir)


@pytest.fixture(scope="module")
def encoded(photo: Image.Image) -> dict[str, bytes]:
    return {
        "jpeg": _encode(photo, "JPEG", quality=90),
        "png": _encode(photo, "PNG"),
        "webp": _encode(photo, "WEBP", quality=90),
    }


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG whose IHDR declares width x height, followed by a tiny IDAT and IEND."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + chunk(b"IEND", b"")
    )


@pytest.mark.parametrize("fmt", ["jpeg", "png", "webp"])
def test_decodes_each_supported_format_to_bgr(
    fmt: str, encoded: dict[str, bytes], photo: Image.Image
) -> None:
    data = encoded[fmt]
    decoded = decode_image(data)
    assert decoded.format == fmt
    assert (decoded.width, decoded.height) == photo.size
    assert decoded.pixels.shape == (photo.size[1], photo.size[0], 3)
    assert decoded.pixels.dtype == np.uint8
    assert decoded.sha256 == hashlib.sha256(data).hexdigest()
    rgb = np.asarray(photo, dtype=np.float64)
    # Lossy codecs move pixels a little; channel order must be BGR.
    assert np.abs(decoded.pixels[:, :, ::-1] - rgb).mean() < 8
    assert np.abs(decoded.pixels - rgb).mean() > np.abs(decoded.pixels[:, :, ::-1] - rgb).mean()


def test_channel_order_is_bgr_exactly() -> None:
    red = Image.new("RGB", (4, 3), (255, 0, 0))
    pixels = decode_image(_encode(red, "PNG")).pixels
    assert pixels[0, 0].tolist() == [0, 0, 255]


@pytest.mark.parametrize(
    ("label", "data"),
    [
        ("gif", _encode(Image.new("RGB", (8, 8)), "GIF")),
        ("bmp", _encode(Image.new("RGB", (8, 8)), "BMP")),
        ("tiff", _encode(Image.new("RGB", (8, 8)), "TIFF")),
        ("pdf", b"%PDF-1.7\n1 0 obj\n<<>>\nendobj\n"),
        ("text", b"just some text, not an image"),
        ("empty", b""),
        ("riff but not webp", b"RIFF\x10\x00\x00\x00WAVEfmt "),
        ("jpeg magic cut short", b"\xff\xd8"),
    ],
)
def test_refuses_other_types_by_content(label: str, data: bytes) -> None:
    with pytest.raises(UnsupportedImageType, match="JPEG, PNG and WebP"):
        decode_image(data)


def test_type_follows_content_not_claims() -> None:
    png = _encode(Image.new("RGB", (5, 5), (0, 255, 0)), "PNG")
    assert sniff_format(png) == "png"
    assert decode_image(png).format == "png"
    # A GIF is refused even when it would be decodable.
    with pytest.raises(UnsupportedImageType):
        decode_image(_encode(Image.new("RGB", (5, 5)), "GIF"))


def test_magic_bytes_without_an_image_are_invalid() -> None:
    with pytest.raises(InvalidImage, match="not a readable PNG"):
        decode_image(b"\x89PNG\r\n\x1a\n" + b"garbage" * 10)
    with pytest.raises(InvalidImage):
        decode_image(b"RIFF\x10\x00\x00\x00WEBPVP8 garbage")


def test_refuses_too_many_bytes_before_anything_else(encoded: dict[str, bytes]) -> None:
    data = encoded["jpeg"]
    with pytest.raises(ImageTooLarge, match=f"limit is {len(data) - 1}") as info:
        decode_image(data, max_bytes=len(data) - 1)
    assert info.value.actual == len(data)
    assert decode_image(data, max_bytes=len(data)).format == "jpeg"


def test_refuses_too_many_pixels(encoded: dict[str, bytes], photo: Image.Image) -> None:
    width, height = photo.size
    with pytest.raises(ImageTooLarge, match="pixels"):
        decode_image(encoded["png"], max_pixels=width * height - 1)
    assert decode_image(encoded["png"], max_pixels=width * height).width == width


@pytest.mark.parametrize("max_pixels", [40_000_000, 10**12])
def test_huge_declared_canvas_refused_fast_without_allocating(max_pixels: int) -> None:
    data = _png_header_only(50_000, 50_000)
    assert len(data) < 200
    tracemalloc.start()
    started = time.perf_counter()
    with pytest.raises(ImageTooLarge):
        decode_image(data, max_pixels=max_pixels)
    elapsed = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert elapsed < 1.0
    assert peak < 20 * 1024 * 1024  # a decode would need 7.5 GB


def test_header_only_png_within_limits_is_invalid_not_a_crash() -> None:
    with pytest.raises(InvalidImage):
        decode_image(_png_header_only(300, 200))


def test_exif_orientation_is_applied_to_a_real_photo(photo: Image.Image) -> None:
    # Store the photo lying on its side, with EXIF saying "rotate 90 CW to display" (6).
    sideways = photo.transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6
    data = _encode(sideways, "JPEG", quality=95, exif=exif.tobytes())
    decoded = decode_image(data)
    assert (decoded.width, decoded.height) == photo.size
    upright = np.asarray(photo, dtype=np.float64)[:, :, ::-1]
    assert np.abs(decoded.pixels - upright).mean() < 6
    unrotated = decode_image(_encode(sideways, "JPEG", quality=95))
    assert (unrotated.width, unrotated.height) == sideways.size


@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_exif_orientation_moves_a_marker(orientation: int) -> None:
    image = Image.new("RGB", (40, 20), (0, 0, 0))
    image.paste((255, 255, 255), (0, 0, 10, 10))  # white square top-left
    exif = Image.Exif()
    exif[0x0112] = orientation
    pixels = decode_image(_encode(image, "PNG", exif=exif.tobytes())).pixels
    height, width = pixels.shape[:2]
    white = np.argwhere(pixels.mean(axis=2) > 200).mean(axis=0)
    expected = {3: (height - 5, width - 5), 6: (5, width - 5), 8: (height - 5, 5)}[orientation]
    assert (width, height) == ((40, 20) if orientation == 3 else (20, 40))
    assert np.allclose(white, expected, atol=1.5)


def _mode_image(mode: str) -> tuple[Image.Image, str]:
    if mode == "P":
        return Image.new("RGB", (6, 4), (10, 200, 30)).convert("P"), "PNG"
    if mode == "P-transparent":
        img = Image.new("P", (6, 4), 0)
        img.putpalette([10, 200, 30, 0, 0, 0] + [0] * 762)
        img.info["transparency"] = 0
        return img, "PNG"
    if mode == "CMYK":
        return Image.new("CMYK", (6, 4), (0, 0, 0, 0)), "JPEG"
    return Image.new(mode, (6, 4)), "PNG"


@pytest.mark.parametrize("mode", ["1", "L", "LA", "RGBA", "P", "P-transparent", "I;16", "CMYK"])
def test_every_mode_becomes_8_bit_bgr(mode: str) -> None:
    image, fmt = _mode_image(mode)
    pixels = decode_image(_encode(image, fmt)).pixels
    assert pixels.shape == (4, 6, 3)
    assert pixels.dtype == np.uint8


def test_alpha_is_flattened_onto_white() -> None:
    image = Image.new("RGBA", (4, 4), (255, 0, 0, 0))
    image.putpixel((0, 0), (255, 0, 0, 255))
    pixels = decode_image(_encode(image, "PNG")).pixels
    assert pixels[0, 0].tolist() == [0, 0, 255]
    assert pixels[3, 3].tolist() == [255, 255, 255]
    transparent = decode_image(_encode(_mode_image("P-transparent")[0], "PNG")).pixels
    assert transparent[0, 0].tolist() == [255, 255, 255]


def test_sixteen_bit_grey_is_scaled_not_clipped() -> None:
    values = np.array([[0, 32768, 65535]], dtype=np.uint16)
    image = Image.fromarray(values)
    assert image.mode.startswith("I;16")
    pixels = decode_image(_encode(image, "PNG")).pixels
    assert pixels[0, :, 0].tolist() == [0, 128, 255]


def test_errors_share_the_package_root() -> None:
    for error in (ImageTooLarge, InvalidImage, UnsupportedImageType):
        assert issubclass(error, ImageError)
        assert issubclass(error, BiometricsError)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2048))
def test_random_bytes_never_escape_as_other_errors(data: bytes) -> None:
    with contextlib.suppress(ImageError):
        decode_image(data)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(fmt=st.sampled_from(["jpeg", "png", "webp"]), fraction=st.floats(0.0, 0.97))
def test_truncated_real_images_are_invalid(
    encoded: dict[str, bytes], fmt: str, fraction: float
) -> None:
    data = encoded[fmt]
    prefix = data[: int(len(data) * fraction)]
    with pytest.raises(ImageError) as info:
        decode_image(prefix)
    if sniff_format(prefix) is not None:
        assert isinstance(info.value, InvalidImage)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(fmt=st.sampled_from(["jpeg", "png", "webp"]), seed=st.integers(0, 2**32 - 1))
def test_corrupted_real_images_decode_or_fail_cleanly(
    encoded: dict[str, bytes], fmt: str, seed: int
) -> None:
    data = bytearray(encoded[fmt])
    rng = np.random.default_rng(seed)
    for position in rng.integers(12, len(data), size=8):
        data[int(position)] = int(rng.integers(0, 256))
    try:
        decoded = decode_image(bytes(data))
    except ImageError:
        return
    assert decoded.pixels.ndim == 3


def _grey16(width: int, height: int) -> bytes:
    ramp = np.tile((np.arange(width, dtype=np.uint32) * 65535 // max(width - 1, 1)), (height, 1))
    return _encode(Image.fromarray(ramp.astype(np.uint16)), "PNG")


def test_a_sixteen_bit_png_counts_each_pixel_twice_from_its_header() -> None:
    data = _grey16(1000, 1000)
    with pytest.raises(ImageTooLarge, match=r"16 bits .* the limit is 1500000 \(LIMIT\)"):
        decode_image(data, max_pixels=1_500_000, limit_name="LIMIT")
    assert decode_image(data, max_pixels=2_000_000).width == 1000


def test_sixteen_bit_decoding_makes_no_float_copy() -> None:
    data = _grey16(2000, 2000)
    tracemalloc.start()
    decoded = decode_image(data)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert (decoded.pixels[0, 0, 0], decoded.pixels[0, -1, 0]) == (0, 255)
    # Six bytes a pixel (the 16-bit copy, the 8-bit grey and the BGR result); a float64
    # rescale took 24.
    assert peak < 8 * 2000 * 2000


def test_above_pillows_own_limit_the_message_is_ours() -> None:
    with pytest.raises(ImageTooLarge) as refused:
        decode_image(
            _png_header_only(50_000, 50_000),
            max_pixels=10**12,
            limit_name="FACEWARDEN_MAX_IMAGE_PIXELS",
        )
    message = str(refused.value)
    assert "the limit is 1000000000000 (FACEWARDEN_MAX_IMAGE_PIXELS)" in message
    assert "decompression bomb" not in message.lower()
