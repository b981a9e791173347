"""moto's S3 server on a free loopback port: the stand-in for S3 (none is installable here)."""

from __future__ import annotations

import socket
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def moto_s3(monkeypatch: pytest.MonkeyPatch, *buckets: str) -> Iterator[tuple[str, Any]]:
    """A running server with ``buckets`` made: its endpoint URL and the server (to stop it)."""
    moto_server = pytest.importorskip("moto.server")
    import boto3

    for name, value in CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=free_port())
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    # moto keeps its buckets per process, not per server: start from none.
    urllib.request.urlopen(urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST"))
    client = boto3.client("s3", endpoint_url=endpoint)
    for bucket in buckets:
        client.create_bucket(Bucket=bucket)
    try:
        yield endpoint, server
    finally:
        server.stop()
