"""One milvus-lite engine that several processes share: the serve workers and the CLI.

A milvus-lite file is locked by the one process that opens it, so workers cannot each open it.
``SharedFile`` serves the file over a unix socket that only its owner may connect to, and
leaves a note beside the file naming the socket: ``facewarden serve`` starts one before it
forks its workers, and ``shared_uri`` lets any process (a worker, ``facewarden gallery
ingest``) find it. Run `python -m biometrics.index_server --data var/index.db --port 19530`
instead to serve the file on a loopback port (docs/vector-index.md, "Several workers").
"""

from __future__ import annotations

import argparse
import fcntl
import ipaddress
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from types import FrameType
from typing import Any

from biometrics.errors import IndexUnavailable

__all__ = [
    "IndexFileHeld",
    "IndexServer",
    "ServerAddress",
    "SharedFile",
    "main",
    "milvus_lite_version",
    "shared_uri",
    "wait_until_listening",
]

# How long a new SharedFile waits for the file's lock: the engine of a server killed a moment
# ago notices its lock is free and exits within about a second.
_LOCK_WAIT_SECONDS = 15.0


@dataclass(frozen=True, slots=True)
class ServerAddress:
    """A loopback host and TCP port; `uri` is what a worker passes to `MilvusIndex`."""

    host: str
    port: int

    @property
    def uri(self) -> str:
        return f"http://{self.host}:{self.port}"


def milvus_lite_version() -> tuple[int, ...]:
    """The installed milvus-lite release as integers, e.g. (2, 5, 1).

    Raises IndexUnavailable when milvus-lite is not installed.
    """
    try:
        text = version("milvus-lite")
    except PackageNotFoundError as exc:
        raise IndexUnavailable("milvus-lite is not installed") from exc
    return tuple(int(part) for part in text.split(".")[:3] if part.isdigit())


class IndexServer:
    """A milvus-lite engine serving one data file on a loopback port until `stop`.

    milvus-lite 2.5 runs its native engine as a child process given the address; 3.x serves from
    Python threads in this process. Either way clients speak the Milvus gRPC protocol to it.
    """

    def __init__(self, data: Path, *, host: str = "127.0.0.1", port: int = 19530) -> None:
        """Check the arguments; nothing starts before `start`.

        Raises IndexUnavailable when `host` is not a loopback address (the engine has no
        authentication, so it must not listen beyond this machine).
        """
        if not ipaddress.ip_address(host).is_loopback:
            raise IndexUnavailable(f"the index server listens on loopback only, not {host}")
        self.data = data.resolve()
        self.address = ServerAddress(host, port)
        self._child: subprocess.Popen[bytes] | None = None
        self._grpc_server: Any = None  # milvus-lite 3.x: a grpc.Server and its engine
        self._engine: Any = None

    def start(self, *, timeout: float = 30.0) -> ServerAddress:
        """Start serving and wait until the port accepts connections.

        Raises IndexUnavailable when the engine exits or does not listen within `timeout`.
        """
        self.data.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        if milvus_lite_version() < (3,):
            address = f"{self.address.host}:{self.address.port}"
            self._child = _spawn_engine(self.data, address)
        else:
            from milvus_lite.adapter.grpc.server import start_server_in_thread

            try:
                server, engine, port = start_server_in_thread(
                    str(self.data), host=self.address.host, port=self.address.port
                )
            except Exception as exc:
                raise IndexUnavailable(f"milvus-lite cannot serve {self.data}: {exc}") from exc
            self._grpc_server, self._engine = server, engine
            self.address = ServerAddress(self.address.host, port)
        wait_until_listening(self.address, timeout=timeout, process=self._child)
        return self.address

    def stop(self) -> None:
        """Stop serving and release the data file; data already written stays on disk."""
        if self._child is not None:
            self._child.terminate()
            try:
                self._child.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._child.kill()
                self._child.wait()
            self._child = None
        if self._grpc_server is not None and self._engine is not None:
            self._grpc_server.stop(grace=2).wait()
            self._engine.close()
            self._grpc_server = self._engine = None


def _spawn_engine(data: Path, address: str, lock: Path | None = None) -> subprocess.Popen[bytes]:
    """milvus-lite 2.5's engine binary serving ``data`` on ``address``, with milvus-lite's own
    arguments and library path; given ``lock``, it stops once no process holds that file.

    milvus_lite.server.Server is not used: when one is collected it deletes the lock file,
    even one it never held, which would let a second process open a file that is in use.
    Raises IndexUnavailable when the binary is missing.
    """
    from milvus_lite.server import BIN_PATH

    binary = Path(os.environ.get("BIN_PATH") or BIN_PATH).absolute()
    if not (binary / "milvus").exists():
        raise IndexUnavailable(f"milvus-lite's engine binary is missing from {binary}")
    args = [str(binary / "milvus"), str(data), address, os.environ.get("LOG_LEVEL", "ERROR")]
    env = {**os.environ, "LD_LIBRARY_PATH": str(binary)}
    return subprocess.Popen([*args, *([str(lock)] if lock else [])], env=env, cwd=str(data.parent))


def _note(data: Path) -> Path:
    return data.parent / f".{data.name}.serving"


def _lock(data: Path) -> Path:
    return data.parent / f".{data.name}.lock"  # the lock file milvus-lite itself takes


def shared_uri(data: Path) -> str | None:
    """The ``unix:`` URI of the SharedFile serving ``data`` now, or None when none answers
    (none was started, or one was killed and left its note)."""
    try:
        uri = _note(data).read_text().strip()
    except FileNotFoundError:
        return None
    if not uri.startswith("unix:") or not _answers(Path(uri.removeprefix("unix:"))):
        return None
    return uri


class IndexFileHeld(IndexUnavailable):
    """Another process has the milvus-lite file open, so it cannot be shared from here."""


class SharedFile:
    """milvus-lite's engine serving ``data`` on a unix socket while this process lives.

    The socket lies in a directory of its own (mode 0700), so only the file's owner connects;
    its path is written to ``.<name>.serving`` beside the file. The process holds milvus-lite's
    own lock file, which the engine watches: when this process dies, killed or not, the engine
    stops and the file is free again. Needs milvus-lite 2.5 (3.x serves from threads, which a
    process that forks workers must not start; use the index server on a port there).
    """

    def __init__(self, data: Path) -> None:
        self.data = data.resolve()
        self._lock_fd: int | None = None
        self._child: subprocess.Popen[bytes] | None = None
        self._directory: Path | None = None

    def start(self, *, timeout: float = 30.0) -> str:
        """Start the engine; return its ``unix:`` URI.

        Raises IndexUnavailable when another process holds the file, milvus-lite is not 2.5,
        or the engine does not listen within ``timeout``.
        """
        if milvus_lite_version() >= (3,):
            raise IndexUnavailable("sharing a milvus-lite file over a socket needs milvus-lite 2.5")
        self.data.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._take_lock()
        _remove_stale(_note(self.data))
        self._directory = Path(tempfile.mkdtemp(prefix="facewarden-index-"))
        path = self._directory / "index.sock"
        try:
            self._child = _spawn_engine(self.data, f"unix:{path}", _lock(self.data))
        except BaseException:
            self.stop()
            raise
        deadline = time.monotonic() + timeout
        while not _answers(path):
            if self._child.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise IndexUnavailable(f"milvus-lite did not serve {self.data} on a socket")
            time.sleep(0.05)
        note = _note(self.data)
        fd = os.open(note, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(f"unix:{path}\n")
        return f"unix:{path}"

    def _take_lock(self) -> None:
        fd = os.open(_lock(self.data), os.O_WRONLY | os.O_CREAT, 0o600)
        # A note left behind means a SharedFile was killed: its engine lets go within a second.
        patience = _LOCK_WAIT_SECONDS if _note(self.data).exists() else 0.0
        deadline = time.monotonic() + patience
        while True:
            try:
                fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                if time.monotonic() >= deadline:
                    os.close(fd)
                    raise IndexFileHeld(
                        f"another process holds the vector index file {self.data} (a "
                        "`facewarden` command or server): stop it, then start again"
                    ) from None
                time.sleep(0.1)
                continue
            self._lock_fd = fd
            return

    def stop(self) -> None:
        """Stop the engine and remove the note and the socket; the data stays on disk."""
        _note(self.data).unlink(missing_ok=True)
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # the engine sees the lock free and stops
            self._lock_fd = None
        if self._child is not None:
            try:
                self._child.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._child.kill()
                self._child.wait()
            self._child = None
        if self._directory is not None:
            shutil.rmtree(self._directory, ignore_errors=True)
            self._directory = None

    def __enter__(self) -> str:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()


def _remove_stale(note: Path) -> None:
    """Remove the socket directory a killed SharedFile left, and its note (we hold the lock)."""
    try:
        socket_path = Path(note.read_text().strip().removeprefix("unix:"))
    except FileNotFoundError:
        return
    if socket_path.parent.name.startswith("facewarden-index-"):
        shutil.rmtree(socket_path.parent, ignore_errors=True)
    note.unlink(missing_ok=True)


def _answers(path: Path) -> bool:
    """Whether something accepts connections on the unix socket ``path``."""
    with socket.socket(socket.AF_UNIX) as probe:
        try:
            probe.connect(str(path))
        except OSError:
            return False
    return True


def wait_until_listening(
    address: ServerAddress, *, timeout: float, process: subprocess.Popen[bytes] | None = None
) -> None:
    """Poll until a TCP connection to `address` succeeds.

    Raises IndexUnavailable when `process` exits first or `timeout` seconds pass.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise IndexUnavailable(f"the index engine exited with status {process.returncode}")
        try:
            with socket.create_connection((address.host, address.port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise IndexUnavailable(f"nothing listens on {address.uri} after {timeout:.0f} s")


def main(argv: list[str] | None = None) -> int:
    """Serve until SIGTERM or SIGINT; the exit status is 0 after a clean stop."""
    parser = argparse.ArgumentParser(prog="python -m biometrics.index_server", description=__doc__)
    parser.add_argument("--data", type=Path, required=True, help="the milvus-lite file (.db)")
    parser.add_argument("--host", default="127.0.0.1", help="a loopback address")
    parser.add_argument("--port", type=int, default=19530)
    args = parser.parse_args(argv)
    os.umask(0o077)  # the index holds face embeddings: its files are the owner's alone
    server = IndexServer(args.data, host=args.host, port=args.port)
    stopping = threading.Event()

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        stopping.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    try:
        address = server.start()
    except IndexUnavailable as exc:
        print(f"index server: {exc}", file=sys.stderr)
        return 1
    print(f"index server: {args.data} on {address.uri}", flush=True)
    while not stopping.wait(1.0):
        child = server._child
        if child is not None and child.poll() is not None:
            print(f"index server: engine exited with {child.returncode}", file=sys.stderr)
            return 1
    server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
