"""Peak memory and time of ``decode_image`` per kind of image, next to a normal photo.

Each kind is decoded in a fresh process of its own, so its peak RSS is its own ("peak RSS",
the process's whole high-water mark: the baseline row shows what the interpreter and imports
take), "traced" the peak of Python allocations during the decode (tracemalloc; numpy's
included, Pillow's C buffers not). Limits are the service's
defaults: gallery photos FACEWARDEN_MAX_IMAGE_PIXELS, probes FACEWARDEN_MAX_PROBE_PIXELS.

    python bench/decode.py [--photo PATH] [--rounds 3]
"""

from __future__ import annotations

import argparse
import io
import json
import resource
import statistics
import struct
import subprocess
import sys
import tempfile
import time
import tracemalloc
import zlib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from biometrics.errors import ImageError  # noqa: E402
from biometrics.images import (  # noqa: E402
    DEFAULT_MAX_PIXELS,
    DEFAULT_MAX_PROBE_PIXELS,
    decode_image,
)

MB = 1024 * 1024


def _save(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def _photo_like(width: int, height: int) -> Image.Image:
    rng = np.random.default_rng(7)
    ramp = np.linspace(0, 255, width, dtype=np.float32)[None, :, None]
    noise = rng.integers(0, 40, (height, width, 3), dtype=np.uint8)
    return Image.fromarray((ramp * 0.8 + noise).astype(np.uint8))


def _header_only_png(width: int, height: int) -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def _images(photo: Path | None) -> dict[str, bytes]:
    normal = photo.read_bytes() if photo else _save(_photo_like(1600, 1200), "JPEG", quality=90)
    exif = Image.Exif()
    exif[0x0112] = 6
    frames = [Image.new("RGB", (2000, 2000), (i * 20, 0, 0)) for i in range(10)]
    return {
        "normal photo (baseline)": normal,
        "8-bit JPEG 4000x3000": _save(_photo_like(4000, 3000), "JPEG", quality=90),
        "16-bit PNG 6324x6324": _save(Image.new("I;16", (6324, 6324)), "PNG"),
        "16-bit PNG 3000x3000": _save(Image.new("I;16", (3000, 3000), 40000), "PNG"),
        "huge-dimension PNG 50000x50000": _header_only_png(50_000, 50_000),
        "palette bomb 1-bit 6000x6000": _save(Image.new("1", (6000, 6000)).convert("P"), "PNG"),
        "EXIF-rotated JPEG 3000x2000": _save(_photo_like(3000, 2000), "JPEG", exif=exif),
        "CMYK JPEG 3000x2000": _save(_photo_like(3000, 2000).convert("CMYK"), "JPEG"),
        "animated PNG 10x 2000x2000": _save(
            frames[0], "PNG", save_all=True, append_images=frames[1:]
        ),
    }


def _one(path: Path, max_pixels: int) -> dict[str, object]:
    data = path.read_bytes()
    tracemalloc.start()
    started = time.perf_counter()
    try:
        decoded = decode_image(data, max_bytes=len(data) + 1, max_pixels=max_pixels)
        outcome = f"{decoded.width}x{decoded.height}"
    except ImageError as exc:
        outcome = f"refused: {type(exc).__name__}"
    elapsed = time.perf_counter() - started
    _, traced = tracemalloc.get_traced_memory()
    return {"s": elapsed, "traced": traced, "rss": _high_water_mark(), "outcome": outcome}


def _high_water_mark() -> int:
    """This process's peak RSS in bytes: VmHWM (ru_maxrss would keep the forking parent's)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photo", type=Path, help="a normal photo for the baseline")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--one", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--max-pixels", type=int, default=DEFAULT_MAX_PIXELS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(_one(args.one, args.max_pixels)))
        return
    caps = {"gallery": DEFAULT_MAX_PIXELS, "probe": DEFAULT_MAX_PROBE_PIXELS}
    print(
        f"{'image':34} {'bytes':>9} {'cap':8} {'time s':>7} {'peak RSS MB':>11} "
        f"{'traced MB':>9}  result"
    )
    with tempfile.TemporaryDirectory() as tmp:
        for name, data in _images(args.photo).items():
            path = Path(tmp) / "image"
            path.write_bytes(data)
            for cap, limit in caps.items():
                runs = [
                    json.loads(
                        subprocess.run(
                            [
                                sys.executable,
                                __file__,
                                "--one",
                                str(path),
                                "--max-pixels",
                                str(limit),
                            ],
                            check=True,
                            capture_output=True,
                            text=True,
                        ).stdout
                    )
                    for _ in range(args.rounds)
                ]
                seconds = statistics.median(float(r["s"]) for r in runs)
                rss = max(int(r["rss"]) for r in runs) / MB
                traced = max(int(r["traced"]) for r in runs) / MB
                print(
                    f"{name:34} {len(data):9d} {cap:8} {seconds:7.3f} {rss:11.1f} {traced:9.1f}"
                    f"  {runs[0]['outcome']}"
                )


if __name__ == "__main__":
    main()
