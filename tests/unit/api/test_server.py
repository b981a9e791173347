"""api/server.py's parts that need no running server."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
from typing import Any

import pytest

from api.server import ReadFirst, TrustedProxies
from api.settings import Settings


def test_serve_raises_its_open_file_limit_to_the_hard_limit() -> None:
    # In a process of its own, started with the common soft limit lowered further.
    code = (
        "import resource\n"
        "from api.server import raise_open_file_limit\n"
        "_, hard = resource.getrlimit(resource.RLIMIT_NOFILE)\n"
        "resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))\n"
        "raised = raise_open_file_limit()\n"
        "print(raised, *resource.getrlimit(resource.RLIMIT_NOFILE))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    raised, soft, hard = (int(n) for n in done.stdout.split())
    assert raised == soft == min(hard, 1 << 20)
    assert soft > 256


def _seen(networks: str, remote: str, headers: dict[str, str]) -> dict[str, Any]:
    """What the app behind TrustedProxies sees of a request from ``remote``."""
    seen: dict[str, Any] = {}

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        seen.update(environ)
        return []

    environ = {"REMOTE_ADDR": remote, "wsgi.url_scheme": "http", "HTTP_HOST": "svc.local"}
    environ.update({"HTTP_" + k.upper().replace("-", "_"): v for k, v in headers.items()})
    TrustedProxies(
        app, Settings.from_env({"FACEWARDEN_TRUSTED_PROXIES": networks}).trusted_proxy_networks
    )(environ, None)
    return seen


FORWARDED = {
    "X-Forwarded-For": "203.0.113.9",
    "X-Forwarded-Proto": "https",
    "Forwarded": "for=1.2.3.4",
}


@pytest.mark.parametrize(
    ("networks", "remote", "address", "scheme"),
    [
        ("127.0.0.1", "127.0.0.1", "203.0.113.9", "https"),
        ("10.0.0.0/8", "10.1.2.3", "203.0.113.9", "https"),
        ("127.0.0.1", "::ffff:127.0.0.1", "203.0.113.9", "https"),  # a dual-stack listener
        ("::1", "::1", "203.0.113.9", "https"),
        ("10.0.0.0/8", "192.0.2.1", "192.0.2.1", "http"),  # not a proxy: its headers are dropped
        ("", "127.0.0.1", "127.0.0.1", "http"),  # TLS mode trusts no one
        ("127.0.0.1", "not-an-address", "not-an-address", "http"),
    ],
)
def test_forwarded_headers_count_only_from_trusted_proxies(
    networks: str, remote: str, address: str, scheme: str
) -> None:
    seen = _seen(networks, remote, FORWARDED)
    assert (seen["REMOTE_ADDR"], seen["wsgi.url_scheme"]) == (address, scheme)
    if address == remote:
        assert not [k for k in seen if "FORWARDED" in k]


def test_bodies_held_over_all_requests_stay_under_the_buffer() -> None:
    """While one upload is being served, a second that would pass the buffer is answered 503."""
    serving = threading.Event()
    release = threading.Event()

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        size = len(environ["wsgi.input"].read())
        serving.set()
        assert release.wait(10)
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [str(size).encode()]

    server = ReadFirst(app, threads=2, max_body_bytes=1000, body_seconds=5, buffer_bytes=1500)

    def scope() -> dict[str, Any]:
        return {
            "type": "http",
            "method": "POST",
            "path": "/upload",
            "query_string": b"",
            "http_version": "1.1",
            "headers": [(b"content-length", b"800")],
        }

    async def call(chunks: list[bytes]) -> list[dict[str, Any]]:
        pending = [{"type": "http.request", "body": c, "more_body": True} for c in chunks]
        pending[-1]["more_body"] = False
        sent: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            return pending.pop(0)

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        await server(scope(), receive, send)
        return sent

    async def both() -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
        first = asyncio.create_task(call([b"a" * 400, b"a" * 400]))
        while not serving.is_set():
            await asyncio.sleep(0.01)
        second = await call([b"b" * 400, b"b" * 400])  # 800 + 800 > 1500: not kept
        release.set()
        done = await first
        third = await call([b"c" * 400, b"c" * 400])  # the first one's bytes were given back
        return done, second, third

    first, second, third = asyncio.run(both())
    assert (first[0]["status"], first[1]["body"]) == (200, b"800")
    assert second[0]["status"] == 503
    assert (b"retry-after", b"5") in second[0]["headers"]
    assert (third[0]["status"], third[1]["body"]) == (200, b"800")
