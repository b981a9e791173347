"""Shared fixtures: where the real models and faces are, and the application stack."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def shared_path() -> Path:
    """The read-only directory of real models and labelled faces (`../shared` beside the clone)."""
    return Path(os.environ.get("FACEWARDEN_SHARED_DIR", REPO.parent / "shared")).resolve()


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    path = shared_path()
    if not (path / "models").is_dir():
        pytest.skip(
            f"real models and faces not found at {path}: set FACEWARDEN_SHARED_DIR to the "
            "directory holding models/ and faces/dev/"
        )
    return path
