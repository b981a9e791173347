"""Reading a ledger: the ``Fetcher`` protocol, the offline bundle and its manifest, the witness
state.

Bundle layout (see docs/ledger.md): ``entries.jsonl``, ``checkpoint``, ``checkpoints/<size>``,
``keys``, ``manifest.json``. The SQL export that writes it is ``ledger.storage.export_bundle``.
Imports only the standard library: the offline verifier uses it.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import tempfile
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from ledger.entry import LedgerError

__all__ = [
    "BUNDLE_FORMAT",
    "CHECKPOINTS_DIR",
    "CHECKPOINT_FILE",
    "ENTRIES_FILE",
    "KEYS_FILE",
    "MANIFEST_FILE",
    "BundleError",
    "BundleFetcher",
    "Fetcher",
    "HttpFetcher",
    "TrustedState",
    "write_manifest",
]

BUNDLE_FORMAT = "facewarden-ledger-bundle/1"
ENTRIES_FILE = "entries.jsonl"
CHECKPOINT_FILE = "checkpoint"
CHECKPOINTS_DIR = "checkpoints"
KEYS_FILE = "keys"
MANIFEST_FILE = "manifest.json"


class BundleError(LedgerError):
    """A bundle or a live log that cannot be read."""


class Fetcher(Protocol):
    """Where a verifier reads a log from; nothing it returns is trusted."""

    def checkpoint(self) -> str:
        """The latest signed checkpoint note."""
        ...

    def checkpoints(self) -> dict[int, str]:
        """Earlier signed checkpoint notes by size (may be empty)."""
        ...

    def entries(self, start: int, end: int) -> list[bytes]:
        """Canonical entry bytes for ``[start, end)`` (fewer if the log holds fewer)."""
        ...

    def verifier_keys(self) -> list[str]:
        """Verifier keys, oldest first (a hint: the verifier derives the chain itself)."""
        ...

    def integrity_problems(self) -> list[str]:
        """Transport-level problems (a bundle's manifest mismatches), empty when none."""
        ...


def _digest(path: Path) -> dict[str, object]:
    data = path.read_bytes()
    return {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def _bundle_files(directory: Path) -> list[str]:
    names = [ENTRIES_FILE, CHECKPOINT_FILE, KEYS_FILE]
    folder = directory / CHECKPOINTS_DIR
    if folder.is_dir():
        sizes = sorted(int(p.name) for p in folder.iterdir() if p.name.isdigit())
        names += [f"{CHECKPOINTS_DIR}/{size}" for size in sizes]
    return names


def _manifest_text(directory: Path, *, origin: str, size: int) -> str:
    files = {name: _digest(directory / name) for name in _bundle_files(directory)}
    manifest = {"format": BUNDLE_FORMAT, "origin": origin, "size": size, "files": files}
    return json.dumps(manifest, indent=2, sort_keys=True) + "\n"


def write_manifest(directory: Path, *, origin: str, size: int) -> None:
    """Write ``manifest.json``: the size and SHA-256 of every other file of the bundle."""
    (directory / MANIFEST_FILE).write_text(_manifest_text(directory, origin=origin, size=size))


class BundleFetcher:
    """An exported bundle directory, read offline."""

    def __init__(self, directory: Path) -> None:
        self._dir = Path(directory)
        self._lines: list[bytes] | None = None

    def _read_text(self, name: str) -> str:
        try:
            return (self._dir / name).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise BundleError(f"cannot read {name}: {exc}") from exc

    def checkpoint(self) -> str:
        """The bundle's latest checkpoint. Raises BundleError."""
        return self._read_text(CHECKPOINT_FILE)

    def checkpoints(self) -> dict[int, str]:
        """The bundle's earlier checkpoints. Raises BundleError."""
        folder = self._dir / CHECKPOINTS_DIR
        if not folder.is_dir():
            return {}
        found = {}
        for path in folder.iterdir():
            if not path.name.isdigit() or path.name != str(int(path.name)):
                raise BundleError(f"unexpected file {CHECKPOINTS_DIR}/{path.name}")
            found[int(path.name)] = self._read_text(f"{CHECKPOINTS_DIR}/{path.name}")
        return found

    def entries(self, start: int, end: int) -> list[bytes]:
        """Entry lines ``[start, end)`` of ``entries.jsonl``. Raises BundleError."""
        if self._lines is None:
            try:
                data = (self._dir / ENTRIES_FILE).read_bytes()
            except OSError as exc:
                raise BundleError(f"cannot read {ENTRIES_FILE}: {exc}") from exc
            if data and not data.endswith(b"\n"):
                raise BundleError(f"{ENTRIES_FILE} does not end in a newline")
            self._lines = data.split(b"\n")[:-1] if data else []
        return self._lines[start:end]

    def verifier_keys(self) -> list[str]:
        """The bundle's verifier keys. Raises BundleError."""
        return [line for line in self._read_text(KEYS_FILE).splitlines() if line]

    def integrity_problems(self) -> list[str]:
        """Differences between ``manifest.json`` and the files (byte for byte).

        Raises BundleError when the manifest or the checkpoint cannot be read.
        """
        head = self.checkpoint().split("\n", 2)
        origin, size = head[0], int(head[1]) if len(head) > 1 and head[1].isdigit() else -1
        expected = _manifest_text(self._dir, origin=origin, size=size)
        actual = self._read_text(MANIFEST_FILE)
        if actual == expected:
            return []
        problems = []
        try:
            listed = json.loads(actual)["files"]
        except (ValueError, KeyError, TypeError):
            listed = {}
        listed = listed if isinstance(listed, dict) else {}
        present = json.loads(expected)["files"]
        for name, digest in present.items():
            if listed.get(name) != digest:
                problems.append(f"{name}: size or sha256 differs from {MANIFEST_FILE}")
        problems += [f"{name}: listed but missing" for name in listed if name not in present]
        return problems or [f"{MANIFEST_FILE} is not the manifest of these files"]


@dataclass(frozen=True, slots=True)
class TrustedState:
    """The last checkpoint a verifier accepted (its ``--state`` file)."""

    origin: str
    size: int
    root: bytes
    checkpoint: str

    @classmethod
    def load(cls, path: Path) -> TrustedState | None:
        """Read a state file; None when it does not exist. Raises BundleError."""
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
            return cls(
                origin=data["origin"],
                size=int(data["size"]),
                root=base64.b64decode(data["root"], validate=True),
                checkpoint=data["checkpoint"],
            )
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise BundleError(f"unreadable state file {path}: {exc}") from exc

    def save(self, path: Path) -> None:
        """Replace the state file atomically."""
        path = Path(path)
        data = {
            "origin": self.origin,
            "size": self.size,
            "checkpoint": self.checkpoint,
            "root": base64.b64encode(self.root).decode("ascii"),
        }
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(data, out, indent=2)
            out.flush()
            os.fsync(out.fileno())
        Path(tmp).replace(path)


class HttpFetcher:
    """A live log behind the FaceWarden API (``/v1/ledger/...``), read with urllib."""

    def __init__(self, base_url: str, *, page: int = 1000, timeout: float = 30.0) -> None:
        self._base = base_url.rstrip("/")
        self._page = page
        self._timeout = timeout

    def _get(self, path: str, **query: int) -> bytes:
        url = f"{self._base}{path}"
        if query:
            url += "?" + urllib.parse.urlencode(query)
        if not url.startswith(("http://", "https://")):
            raise BundleError(f"not an http(s) URL: {url}")
        try:
            with urllib.request.urlopen(url, timeout=self._timeout) as response:  # noqa: S310
                body: bytes = response.read()
        except OSError as exc:
            raise BundleError(f"GET {url} failed: {exc}") from exc
        return body

    def checkpoint(self) -> str:
        """GET /v1/ledger/checkpoint. Raises BundleError."""
        return self._get("/v1/ledger/checkpoint").decode("utf-8", errors="strict")

    def checkpoints(self) -> dict[int, str]:
        """A live log serves only its latest checkpoint."""
        return {}

    def entries(self, start: int, end: int) -> list[bytes]:
        """GET /v1/ledger/entries in pages. Raises BundleError."""
        lines: list[bytes] = []
        while start + len(lines) < end:
            at = start + len(lines)
            body = self._get("/v1/ledger/entries", start=at, end=min(end, at + self._page))
            page = body.split(b"\n")[:-1] if body.endswith(b"\n") else body.split(b"\n")
            if not page or page == [b""]:
                break
            lines += page
        return lines

    def verifier_keys(self) -> list[str]:
        """GET /v1/ledger/keys. Raises BundleError."""
        return [k for k in self._get("/v1/ledger/keys").decode().splitlines() if k]

    def integrity_problems(self) -> list[str]:
        """TLS and the checks themselves protect a live read."""
        return []
