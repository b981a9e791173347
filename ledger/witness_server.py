"""A C2SP tlog-witness: it cosigns a log's checkpoints once each is proved consistent with the
newest one it cosigned before, and never cosigns a rollback or a fork.

An oversight body runs it on its own machine (``facewarden-verify witness serve``): it imports
only the standard library and ``cryptography``. For each log it is told of (by its verifier
keys; the origin is the key name), it keeps the newest checkpoint it cosigned in a file of its
own, fsync'd before the cosignature is returned, and checks and records under one lock, so
that no two requests can race a rollback through (tlog-witness, "add-checkpoint").

``POST <prefix>/add-checkpoint`` takes ``old <size>\\n``, up to 63 base64 consistency-proof
lines, an empty line and the signed checkpoint, and answers:

- 200 with the cosignature line (``text/plain; charset=utf-8``);
- 400 for a body that does not parse, or an old size larger than the checkpoint's;
- 403 when no signature on the checkpoint verifies under a key the witness trusts for it;
- 404 for an origin the witness does not know;
- 409 with the size of its newest cosigned checkpoint (``text/x.tlog.size``) when the old size
  is not that size, or the same size comes with another root;
- 422 when the consistency proof does not verify;
- 413 for a body over 64 KiB, 405 for another method, 404 for another path.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger.checkpoint import (
    Checkpoint,
    MalformedNote,
    NoteVerifier,
    open_note,
    parse_checkpoint,
    split_note,
)
from ledger.checks import VerificationError
from ledger.cosignature import cosign, cosigner_vkey
from ledger.durable import replace_durably
from ledger.hashing import EMPTY_ROOT, HASH_SIZE
from ledger.verify import verify_consistency

__all__ = [
    "MAX_BODY",
    "Refused",
    "Witness",
    "WitnessKey",
    "generate_witness_key",
    "load_witness_key",
    "make_server",
    "request_body",
]

log = logging.getLogger("facewarden.witness")

MAX_BODY = 64 * 1024
MAX_CONNECTIONS = 64
MAX_PROOF_LINES = 63
_DECIMAL = re.compile(r"0|[1-9][0-9]{0,19}")
SIZE_TYPE = "text/x.tlog.size"


class Refused(Exception):
    """A request the witness does not cosign: its HTTP status and the body to answer."""

    def __init__(self, status: int, detail: str, *, size: int | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.size = size


@dataclass(frozen=True, slots=True)
class WitnessKey:
    """The witness's name and Ed25519 private key."""

    name: str
    private_key: Ed25519PrivateKey

    @property
    def vkey(self) -> str:
        """The cosigner verifier key that logs and verifiers are given."""
        public = self.private_key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        return cosigner_vkey(self.name, public)


def generate_witness_key(path: Path, name: str) -> WitnessKey:
    """Create a new witness key file (PKCS#8 PEM, mode 0600). Raises FileExistsError."""
    key = WitnessKey(name=name, private_key=Ed25519PrivateKey.generate())
    cosigner_vkey(name, b"\0" * 32)  # the name must be a key name
    pem = key.private_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, pem)
        os.fsync(fd)
    finally:
        os.close(fd)
    return key


def load_witness_key(path: Path, name: str) -> WitnessKey:
    """Read a witness key file. Raises ValueError (not an Ed25519 key) or OSError."""
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"{path} does not hold an Ed25519 private key")
    return WitnessKey(name=name, private_key=key)


def request_body(old: int, proof: Iterable[bytes], note: str) -> bytes:
    """The add-checkpoint request: ``old <size>``, the proof lines, an empty line, the note."""
    lines = [f"old {old}", *(base64.b64encode(node).decode("ascii") for node in proof)]
    return ("".join(line + "\n" for line in lines) + "\n" + note).encode()


@dataclass(frozen=True, slots=True)
class _Request:
    old: int
    proof: tuple[bytes, ...]
    note: str


def _parse(body: bytes) -> _Request:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Refused(400, "the body is not UTF-8") from exc
    head, sep, note = text.partition("\n\n")
    if not sep:
        raise Refused(400, "no empty line before the checkpoint")
    lines = head.split("\n")
    first = lines[0]
    if not first.startswith("old ") or not _DECIMAL.fullmatch(first[4:]):
        raise Refused(400, "the first line must be 'old <size>'")
    if len(lines) - 1 > MAX_PROOF_LINES:
        raise Refused(400, f"more than {MAX_PROOF_LINES} consistency proof lines")
    proof = []
    for line in lines[1:]:
        try:
            node = base64.b64decode(line, validate=True)
        except binascii.Error as exc:
            raise Refused(400, "a proof line is not base64") from exc
        if len(node) != HASH_SIZE:
            raise Refused(400, "a proof line is not a SHA-256 hash")
        proof.append(node)
    return _Request(old=int(first[4:]), proof=tuple(proof), note=note)


class _States:
    """The newest cosigned checkpoint of each origin, one file each under ``directory``."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)

    def _path(self, origin: str) -> Path:
        return self.directory / f"{hashlib.sha256(origin.encode()).hexdigest()[:32]}.json"

    def get(self, origin: str) -> Checkpoint | None:
        try:
            data = json.loads(self._path(origin).read_bytes())
        except FileNotFoundError:
            return None
        if data.get("origin") != origin:
            raise RuntimeError(f"the witness state for {origin!r} holds another origin")
        return Checkpoint(origin=origin, size=int(data["size"]), root=bytes.fromhex(data["root"]))

    def put(self, checkpoint: Checkpoint, note: str) -> None:
        path = self._path(checkpoint.origin)
        body = json.dumps(
            {
                "origin": checkpoint.origin,
                "size": checkpoint.size,
                "root": checkpoint.root.hex(),
                "note": note,
            },
            sort_keys=True,
        ).encode()
        replace_durably(path, body)


class Witness:
    """The witness's checks and state, without HTTP (``make_server`` serves it)."""

    def __init__(
        self,
        key: WitnessKey,
        logs: Iterable[NoteVerifier],
        state_dir: Path,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.key = key
        self.logs: dict[str, list[NoteVerifier]] = {}
        for verifier in logs:
            self.logs.setdefault(verifier.name, []).append(verifier)
        self.states = _States(state_dir)
        self.clock = clock
        self._lock = threading.Lock()

    def latest(self, origin: str) -> Checkpoint | None:
        """The newest checkpoint cosigned for ``origin``."""
        return self.states.get(origin)

    def add_checkpoint(self, body: bytes) -> str:
        """Check and cosign one submission; returns the cosignature line. Raises Refused."""
        request = _parse(body)
        try:
            text = split_note(request.note).text
            checkpoint = parse_checkpoint(text)
        except MalformedNote as exc:
            raise Refused(400, f"the checkpoint is not a signed checkpoint: {exc}") from exc
        trusted = self.logs.get(checkpoint.origin)
        if trusted is None:
            raise Refused(404, f"this witness does not know the log {checkpoint.origin!r}")
        try:
            open_note(request.note, trusted)
        except MalformedNote as exc:
            raise Refused(403, f"the checkpoint is not signed by the log's key: {exc}") from exc
        if request.old > checkpoint.size:
            raise Refused(400, f"old size {request.old} exceeds the checkpoint's {checkpoint.size}")
        with self._lock:  # check and record as one step
            self._check(request, checkpoint)
            self.states.put(checkpoint, request.note)
        log.info("cosigned %s at size %d", checkpoint.origin, checkpoint.size)
        return cosign(text, self.key.name, self.key.private_key, int(self.clock()))

    def _check(self, request: _Request, checkpoint: Checkpoint) -> None:
        latest = self.states.get(checkpoint.origin)
        size, root = (0, EMPTY_ROOT) if latest is None else (latest.size, latest.root)
        if request.old != size:
            raise Refused(409, f"the newest cosigned size is {size}", size=size)
        if request.old == checkpoint.size:
            if latest is not None and checkpoint.root != root:
                raise Refused(409, f"another root for size {size}: a fork", size=size)
            if request.proof:
                raise Refused(422, "the proof between equal sizes must be empty")
            return
        if request.old == 0 and request.proof:
            raise Refused(422, "the proof from size 0 must be empty")
        try:
            verify_consistency(size, checkpoint.size, root, checkpoint.root, request.proof)
        except VerificationError as exc:
            log.warning(
                "refused %s at size %d: the proof from %d does not verify (%s); possible fork",
                checkpoint.origin,
                checkpoint.size,
                size,
                exc,
            )
            raise Refused(422, f"the consistency proof from size {size} does not verify") from exc


def _handler(witness: Witness, prefix: str) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "facewarden-witness"
        timeout = 10  # a client that stalls is dropped, it holds no more than its thread

        def log_message(self, format: str, *args: object) -> None:
            log.info("%s %s", self.address_string(), format % args)

        def _answer(self, status: int, body: str, content_type: str) -> None:
            data = body.encode()
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self) -> None:
            if self.path != f"{prefix}/add-checkpoint":
                self._answer(404, "not found\n", "text/plain; charset=utf-8")
                return
            try:
                length = int(self.headers.get("Content-Length", ""))
            except ValueError:
                self._answer(411, "Content-Length required\n", "text/plain; charset=utf-8")
                return
            if not 0 <= length <= MAX_BODY:
                self.close_connection = True
                self._answer(413, f"at most {MAX_BODY} bytes\n", "text/plain; charset=utf-8")
                return
            body = self.rfile.read(length)
            try:
                cosignature = witness.add_checkpoint(body)
            except Refused as refused:
                if refused.size is not None:
                    self._answer(refused.status, f"{refused.size}\n", SIZE_TYPE)
                else:
                    self._answer(refused.status, refused.detail + "\n", "text/plain; charset=utf-8")
                return
            self._answer(200, cosignature, "text/plain; charset=utf-8")

        def do_GET(self) -> None:
            self._answer(405, "POST add-checkpoint\n", "text/plain; charset=utf-8")

    return Handler


class _Server(ThreadingHTTPServer):
    """A thread per connection, at most ``MAX_CONNECTIONS`` at once: a flood of connections is
    closed at accept instead of piling up threads."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler]) -> None:
        super().__init__(address, handler)
        self._slots = threading.BoundedSemaphore(MAX_CONNECTIONS)

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._slots.acquire(blocking=False):
            self.shutdown_request(request)
            return
        super().process_request(request, client_address)

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()


def make_server(witness: Witness, host: str, port: int, *, prefix: str = "") -> ThreadingHTTPServer:
    """An HTTP server of ``witness`` on ``host:port``; put a TLS proxy in front of it to serve
    it beyond one machine (docs/ledger.md, "Witnesses")."""
    return _Server((host, port), _handler(witness, prefix.rstrip("/")))
