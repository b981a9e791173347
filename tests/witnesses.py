"""Real witness processes for the tests: ``facewarden-verify witness serve``, as an oversight
body runs it, with a key made by ``witness keygen``."""

from __future__ import annotations

import socket
import subprocess
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from tests.conftest import REPO

__all__ = ["Answer", "Running", "keygen", "start_witness"]


@dataclass
class Answer:
    status: int
    body: str
    content_type: str


@dataclass
class Running:
    url: str
    vkey: str
    key_file: Path
    state: Path
    logs: list[str]
    process: subprocess.Popen[str]
    name: str = "witness.test/w1"

    @property
    def prefix(self) -> str:
        """The submission prefix (the URL without ``/add-checkpoint``)."""
        return self.url.removesuffix("/add-checkpoint")

    def restart(self) -> Running:
        """Stop this process and start another on the same key, state and port."""
        self.stop()
        port = int(self.url.split(":")[2].split("/")[0])
        return start_witness(self.key_file, self.state, self.logs, self.name, port)

    def post(self, body: bytes) -> Answer:
        request = urllib.request.Request(self.url, data=body, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return Answer(
                    response.status, response.read().decode(), response.headers.get_content_type()
                )
        except urllib.error.HTTPError as error:
            return Answer(error.code, error.read().decode(), error.headers.get_content_type())

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _verify_cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "ledger.cli", *args]


def start_witness(
    key_file: Path,
    state: Path,
    logs: list[str],
    name: str = "witness.test/w1",
    port: int | None = None,
) -> Running:
    """Start a witness process on ``port`` (a free one by default); returns once it listens."""
    port = port or _free_port()
    command = _verify_cli(
        "witness", "serve", "--name", name, "--key-file", str(key_file), "--state", str(state),
        "--listen", f"127.0.0.1:{port}", *(arg for vkey in logs for arg in ("--log", vkey)),
    )  # fmt: skip
    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    banner = process.stdout.readline()  # printed once it listens
    assert banner.startswith("witness "), banner
    vkey = banner.split()[1]
    url = f"http://127.0.0.1:{port}/add-checkpoint"
    return Running(url, vkey, key_file, state, logs, process, name)


def keygen(key_file: Path, name: str) -> str:
    """Make a witness key with ``witness keygen``; returns its verifier key."""
    made = subprocess.run(
        _verify_cli("witness", "keygen", "--name", name, "--key-file", str(key_file)),
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    return made.stdout.strip()
