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
import ssl
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

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
    "Transport",
    "TrustedState",
    "urllib_transport",
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
    """The last checkpoint a verifier accepted (its ``--state`` file).

    A live witness also keeps what it needs to verify only the entries appended since: the
    compact range of the trusted tree (``cover``: the perfect-subtree hashes covering
    ``[0, size)``, largest first, which fold into ``root``), the key-rotation chain, and the
    last entry's SHA-256, timestamp and signing key id. Without them (``incremental`` is
    False, as after ``bundle --state``) the next live run re-reads the whole log.
    """

    origin: str
    size: int
    root: bytes
    checkpoint: str
    cover: tuple[bytes, ...] = ()
    chain: tuple[str, ...] = ()
    last_digest: str = ""
    last_ts: str = ""
    last_key_id: str = ""

    @property
    def incremental(self) -> bool:
        """Whether the state holds enough to verify only what is new."""
        return bool(self.chain) and (self.size == 0 or bool(self.cover and self.last_digest))

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
                cover=tuple(base64.b64decode(h, validate=True) for h in data.get("cover", [])),
                chain=tuple(str(k) for k in data.get("chain", [])),
                last_digest=str(data.get("last_digest", "")),
                last_ts=str(data.get("last_ts", "")),
                last_key_id=str(data.get("last_key_id", "")),
            )
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise BundleError(f"unreadable state file {path}: {exc}") from exc

    def save(self, path: Path) -> None:
        """Replace the state file atomically."""
        path = Path(path)
        data: dict[str, object] = {
            "origin": self.origin,
            "size": self.size,
            "checkpoint": self.checkpoint,
            "root": base64.b64encode(self.root).decode("ascii"),
        }
        if self.chain:
            data |= {
                "cover": [base64.b64encode(h).decode("ascii") for h in self.cover],
                "chain": list(self.chain),
                "last_digest": self.last_digest,
                "last_ts": self.last_ts,
                "last_key_id": self.last_key_id,
            }
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(data, out, indent=2)
            out.flush()
            os.fsync(out.fileno())
        Path(tmp).replace(path)


# A transport GETs a URL with headers and returns the body; it raises BundleError on failure.
Transport = Callable[[str, Mapping[str, str]], bytes]


# The largest answer read: a page of 1,000 entries of at most 16 KiB, with room to spare.
MAX_ANSWER_BYTES = 64 * 1024 * 1024


def urllib_transport(
    *, cafile: Path | None = None, timeout: float = 30.0, max_bytes: int = MAX_ANSWER_BYTES
) -> Transport:
    """GET with urllib; HTTPS is checked against ``cafile`` (or the system's CAs). An answer
    over ``max_bytes`` is refused, not read to the end.

    Redirects are followed only within the origin (scheme, host and port) of the URL asked
    for: urllib would otherwise send the ``Authorization`` header, the API key, to wherever a
    server or a proxy redirects. A redirect elsewhere is refused with BundleError.
    """
    context = ssl.create_default_context(cafile=str(cafile) if cafile else None)
    opener = urllib.request.build_opener(
        urllib.request.HTTPSHandler(context=context), _SameOriginRedirects()
    )

    def get(url: str, headers: Mapping[str, str]) -> bytes:
        if not url.startswith(("http://", "https://")):
            raise BundleError(f"not an http(s) URL: {url}")
        request = urllib.request.Request(url, headers=dict(headers))  # noqa: S310
        try:
            with opener.open(request, timeout=timeout) as response:
                body: bytes = response.read(max_bytes + 1)
        except urllib.error.HTTPError as exc:
            detail = _problem_detail(exc.read())
            raise BundleError(f"GET {url} answered {exc.code}: {detail}") from exc
        except OSError as exc:
            raise BundleError(f"GET {url} failed: {exc}") from exc
        if len(body) > max_bytes:
            raise BundleError(f"GET {url} answered more than {max_bytes} bytes: refused")
        return body

    return get


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urllib.parse.urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port or {"http": 80, "https": 443}.get(scheme)
    except ValueError:
        port = None
    return scheme, (parts.hostname or "").lower(), port


class _SameOriginRedirects(urllib.request.HTTPRedirectHandler):
    """Follow a redirect only to the origin asked for; refuse any other (BundleError)."""

    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: Any,
        code: int,
        msg: str,
        headers: Any,
        newurl: str,
    ) -> urllib.request.Request | None:
        target = urllib.parse.urljoin(req.full_url, newurl)
        if _origin(target) != _origin(req.full_url):
            raise BundleError(
                f"GET {req.full_url} was redirected ({code}) to another origin, {target}: "
                "refused, so that the API key is never sent there; give the final URL"
            )
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def _problem_detail(body: bytes) -> str:
    try:
        return str(json.loads(body).get("detail", ""))[:300]
    except (ValueError, AttributeError):
        return body[:300].decode("utf-8", errors="replace")


class HttpFetcher:
    """A live log behind the FaceWarden API (``/v1/ledger/...``).

    The checkpoint and the keys are public; entries and proofs need an API key of an
    oversight or admin account (``token``), sent only in the ``Authorization`` header.
    """

    def __init__(
        self,
        base_url: str,
        *,
        token: str | None = None,
        cafile: Path | None = None,
        page: int = 1000,
        timeout: float = 30.0,
        transport: Transport | None = None,
    ) -> None:
        self._base = base_url.rstrip("/")
        self._page = page
        self._token = token
        self._transport = transport or urllib_transport(cafile=cafile, timeout=timeout)

    def _get(self, path: str, *, accept: str = "*/*", **query: int) -> bytes:
        url = f"{self._base}{path}"
        if query:
            url += "?" + urllib.parse.urlencode(query)
        headers = {"Accept": accept, "User-Agent": "facewarden-verify"}
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        return self._transport(url, headers)

    def checkpoint(self) -> str:
        """GET /v1/ledger/checkpoint. Raises BundleError."""
        body = self._get("/v1/ledger/checkpoint", accept="text/plain")
        try:
            return body.decode("utf-8", errors="strict")
        except UnicodeDecodeError as exc:
            raise BundleError(f"the checkpoint is not UTF-8: {exc}") from exc

    def checkpoints(self) -> dict[int, str]:
        """Earlier checkpoints are not needed live: consistency proofs cover them."""
        return {}

    def entries(self, start: int, end: int) -> list[bytes]:
        """GET /v1/ledger/entries in pages of at most ``page``. Raises BundleError."""
        lines: list[bytes] = []
        while start + len(lines) < end:
            at = start + len(lines)
            body = self._get(
                "/v1/ledger/entries",
                accept="application/jsonl",
                start=at,
                end=min(end, at + self._page),
            )
            if not body:
                break
            if not body.endswith(b"\n"):
                raise BundleError(f"entries page from {at} does not end in a newline")
            lines += body.split(b"\n")[:-1]
        return lines

    def consistency(self, first: int, second: int) -> list[bytes]:
        """GET /v1/ledger/proofs/consistency (hex hashes). Raises BundleError."""
        body = self._get(
            "/v1/ledger/proofs/consistency",
            accept="application/json",
            **{"from": first, "to": second},
        )
        try:
            return [bytes.fromhex(h) for h in json.loads(body)["proof"]]
        except (ValueError, KeyError, TypeError) as exc:
            raise BundleError(f"malformed consistency proof: {exc}") from exc

    def inclusion(self, seq: int, size: int) -> list[bytes]:
        """GET /v1/ledger/proofs/inclusion (hex hashes). Raises BundleError."""
        body = self._get(
            "/v1/ledger/proofs/inclusion", accept="application/json", seq=seq, size=size
        )
        try:
            return [bytes.fromhex(h) for h in json.loads(body)["proof"]]
        except (ValueError, KeyError, TypeError) as exc:
            raise BundleError(f"malformed inclusion proof: {exc}") from exc

    def verifier_keys(self) -> list[str]:
        """GET /v1/ledger/keys as text, one verifier key a line. Raises BundleError."""
        text = self._get("/v1/ledger/keys", accept="text/plain").decode("utf-8", errors="replace")
        return [k for k in text.splitlines() if k]

    def integrity_problems(self) -> list[str]:
        """TLS and the checks themselves protect a live read."""
        return []
