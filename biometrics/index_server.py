"""One milvus-lite index server that several serve workers share over a loopback address.

A milvus-lite file is locked by the one process that opens it, so workers cannot each open it.
Run `python -m biometrics.index_server --data var/index.db --port 19530` once, and give every
worker `http://127.0.0.1:19530` as the index URI (docs/vector-index.md, "Several workers").
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from types import FrameType
from typing import Any

from biometrics.errors import IndexUnavailable

__all__ = ["IndexServer", "ServerAddress", "main", "milvus_lite_version", "wait_until_listening"]


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
            from milvus_lite.server import Server

            launcher = Server(str(self.data), address=f"{self.address.host}:{self.address.port}")
            # Server.start() spawns the engine but keeps no handle we may signal: reuse its
            # argument list and environment logic through a Popen of our own.
            if not launcher.init():
                raise IndexUnavailable("milvus-lite's engine binary is missing")
            env = {**os.environ, "LD_LIBRARY_PATH": str(Path(launcher.milvus_bin).parent)}
            self._child = subprocess.Popen(
                [str(arg) for arg in launcher.args], env=env, cwd=str(self.data.parent)
            )
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
