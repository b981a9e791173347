"""api/server.py's parts that need no running server."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest

from api.server import TrustedProxies
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
