"""Files written so that a crash leaves the old content or the new, never a part of either.

Imports only the standard library: the verifier and the witness use it.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["replace_durably"]


def replace_durably(path: Path, data: bytes) -> None:
    """Write ``data`` to a temporary file beside ``path`` (mode 0600), fsync it, rename it over
    ``path`` and fsync the directory: once this returns, ``path`` holds ``data`` on disk.

    Raises OSError.
    """
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(temporary, path)
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
