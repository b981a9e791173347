"""The standalone Milvus server of the PyPI package `milvus`, started by a test for its length.

The command is ``milvus-server`` on the PATH or FACEWARDEN_TEST_MILVUS_SERVER (.ci/run installs
it in an environment of its own); a test that needs it skips, saying so, when it is absent or
does not start.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from biometrics.errors import IndexUnavailable
from biometrics.index import MilvusIndex
from biometrics.index_server import ServerAddress, wait_until_listening

__all__ = ["milvus_server"]


def _command() -> str | None:
    return os.environ.get("FACEWARDEN_TEST_MILVUS_SERVER") or shutil.which("milvus-server")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def milvus_server(data: Path) -> Iterator[str]:
    """A Milvus server keeping its data in ``data``; yields its URI once it answers."""
    command = _command()
    if command is None:
        pytest.skip("the `milvus` package (milvus-server) is not installed: pip install milvus")
    port = _free_port()
    log = (data / "server.log").open("wb")
    process = subprocess.Popen(
        [command, "--data", str(data), "--proxy-port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        try:
            wait_until_listening(ServerAddress("127.0.0.1", port), timeout=120, process=process)
        except IndexUnavailable as exc:
            pytest.skip(f"milvus-server did not start ({exc}); see {data / 'server.log'}")
        uri = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:  # the proxy listens before its coordinators are ready
            try:
                MilvusIndex(uri, recognizer_sha256="0" * 64, timeout=5).close()
                break
            except IndexUnavailable:
                if time.monotonic() > deadline:
                    raise
                time.sleep(1)
        yield uri
    finally:
        _stop_group(process)
        log.close()


def _stop_group(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the server's process group, SIGKILL what is left after 15 s: the `milvus` engine
    that milvus-server spawns outlives its launcher and may ignore SIGTERM for a long time."""
    for sig, grace in ((signal.SIGTERM, 15.0), (signal.SIGKILL, 10.0)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            break
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            process.poll()
            try:
                os.killpg(process.pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.2)
    process.wait()
