"""Real face photos for API tests, read from the shared labelled set (never copied here)."""

from __future__ import annotations

import csv
import io
import itertools
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
from flask.testing import FlaskClient
from PIL import Image

from tests.api.helpers import Agent

_variants = itertools.count(1)


def dev_photos(shared_dir: Path) -> dict[str, list[Path]]:
    """Photos of ``faces/dev`` grouped by identity, in manifest order."""
    root = shared_dir / "faces" / "dev"
    groups: dict[str, list[Path]] = defaultdict(list)
    with (root / "manifest.csv").open(newline="") as fh:
        for row in csv.DictReader(fh):
            groups[row["identity"]].append(root / row["file"])
    return dict(groups)


def variant(path: Path) -> bytes:
    """The photo re-encoded with one pixel changed: the same face, a new SHA-256."""
    image = np.array(Image.open(path).convert("RGB"))
    n = next(_variants)
    image[0, 0] = [n % 256, (n >> 8) % 256, (n >> 16) % 256]
    out = io.BytesIO()
    Image.fromarray(image).save(out, format="PNG")
    return out.getvalue()


def enroll(
    client: FlaskClient,
    curator: Agent,
    data: bytes,
    *,
    url: str = "https://photos.example.org/p/1.jpg",
    collected_at: str = "2026-01-15T10:00:00Z",
    basis: str = "public_record",
    **extra: Any,
) -> Any:
    """POST a photo to the gallery as ``curator``; returns the response."""
    return client.post(
        "/v1/gallery/photos",
        data={
            "image": (io.BytesIO(data), "photo.jpg"),
            "source_url": url,
            "collected_at": collected_at,
            "collection_basis": basis,
            **extra,
        },
        content_type="multipart/form-data",
        headers=curator.headers,
    )
