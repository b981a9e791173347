"""deploy/nginx/facewarden.conf, as shipped, in a real nginx in front of ``serve --http``.

Only the values of the lines marked "site:" (listen address, name, certificate, key, upstream)
change; nginx runs in the foreground with a temporary prefix, on loopback ports.
"""

from __future__ import annotations

import getpass
import http.client
import os
import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from api.settings import Settings
from tests.api.served import (
    assert_aead_only,
    free_port,
    pinned_context,
    served,
    with_certificate,
)
from tests.api.slow_clients import HALF_LINE, SLOW_BODY, held, hold, latency, release

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
SITE = Path(__file__).resolve().parents[2] / "deploy" / "nginx" / "facewarden.conf"
TIMEOUT = 10  # the site's client_header_timeout and client_body_timeout
BOUND = 1.0  # seconds: a normal client's median latency while slow clients are held

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path(NGINX).exists(), reason="nginx is not installed (apt nginx)"),
]


def site_config(values: dict[str, str]) -> str:
    """The shipped site file with the value of each line marked "site: <tag>" replaced."""
    lines, seen = [], set()
    for line in SITE.read_text().splitlines():
        if "# site: " not in line:
            lines.append(line)
            continue
        code, tag = (part.strip() for part in line.split("# site: "))
        indent = line[: len(line) - len(line.lstrip())]
        lines.append(f"{indent}{code.split()[0]} {values[tag]};")
        seen.add(tag)
    assert seen == set(values)
    return "\n".join(lines) + "\n"


def _main_config(prefix: Path) -> str:
    """The main context a Debian nginx.conf would give, with everything under ``prefix``."""
    temps = " ".join(f"{kind}_temp_path {prefix}/{kind};" for kind in ("proxy", "fastcgi"))
    return (
        (f"user {getpass.getuser()};\n" if os.geteuid() == 0 else "")
        + f"daemon off;\nworker_processes 1;\npid {prefix}/nginx.pid;\n"
        + f"error_log {prefix}/error.log;\nevents {{ worker_connections 1024; }}\n"
        + f"http {{\n access_log off;\n client_body_temp_path {prefix}/body;\n {temps}\n"
        + f" uwsgi_temp_path {prefix}/uwsgi;\n scgi_temp_path {prefix}/scgi;\n"
        + f" include {prefix}/facewarden.conf;\n}}\n"
    )


def _wait_for(port: int, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        if proc.poll() is not None:
            break
        time.sleep(0.1)
    raise AssertionError(f"nginx did not start: {log.read_text() if log.exists() else ''}")


@pytest.fixture(scope="module")
def tls_settings(app: object, settings: Settings) -> Settings:
    return with_certificate(settings)


@pytest.fixture(scope="module")
def proxied(tls_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """nginx's TLS port, in front of ``facewarden serve --http``."""
    env = {
        "FACEWARDEN_TRUSTED_PROXIES": "127.0.0.1",
        "FACEWARDEN_AUTH_FAILURE_RATE_LIMIT": "3 per minute",
    }
    with served(tls_settings, "--http", env=env) as upstream:
        prefix = tmp_path_factory.mktemp("nginx")
        port = free_port()
        (prefix / "facewarden.conf").write_text(
            site_config(
                {
                    "listen": f"127.0.0.1:{port} ssl",
                    "name": "localhost",
                    "certificate": str(tls_settings.tls_cert_path),
                    "key": str(tls_settings.tls_key_path),
                    "upstream": f"http://127.0.0.1:{upstream}",
                }
            )
        )
        (prefix / "nginx.conf").write_text(_main_config(prefix))
        command = [NGINX, "-p", str(prefix), "-e", str(prefix / "error.log")]
        command += ["-c", str(prefix / "nginx.conf")]
        checked = subprocess.run([*command, "-t"], capture_output=True, text=True, check=False)
        assert checked.returncode == 0, checked.stderr
        proc = subprocess.Popen(command)
        try:
            _wait_for(port, proc, prefix / "error.log")
            yield port
        finally:
            proc.terminate()
            proc.wait(timeout=20)


def test_a_request_goes_through(proxied: int, tls_settings: Settings) -> None:
    with urllib.request.urlopen(
        f"https://127.0.0.1:{proxied}/healthz", context=pinned_context(tls_settings), timeout=10
    ) as response:
        assert (response.status, response.read()) == (200, b'{"status":"ok"}\n')
        # The service believed the proxy's X-Forwarded-Proto: the request was secure.
        assert response.headers["Strict-Transport-Security"].startswith("max-age=")
        assert response.headers["Server"] == "nginx"  # server_tokens off: no version


def test_tls_is_12_or_13_with_aead_suites_only(proxied: int, tls_settings: Settings) -> None:
    assert_aead_only(proxied, tls_settings)


def _failures(proxied: int, settings: Settings, source: str) -> list[int]:
    statuses = []
    for n in range(5):
        conn = http.client.HTTPSConnection(
            "127.0.0.1", proxied, context=pinned_context(settings), source_address=(source, 0)
        )
        # A spoofed X-Forwarded-For is replaced by nginx with the real peer address.
        headers = {"Authorization": "Bearer bad", "X-Forwarded-For": f"203.0.113.{n}"}
        conn.request("GET", "/v1/accounts/me", headers=headers)
        statuses.append(conn.getresponse().status)
        conn.close()
    return statuses


def test_clients_are_limited_by_their_own_address(proxied: int, tls_settings: Settings) -> None:
    assert _failures(proxied, tls_settings, "127.0.0.2") == [401, 401, 401, 429, 429]
    # Another client behind the same proxy has its own count.
    assert _failures(proxied, tls_settings, "127.0.0.3")[0] == 401


def test_a_body_over_client_max_body_size_is_refused(proxied: int, tls_settings: Settings) -> None:
    response = requests.post(
        f"https://127.0.0.1:{proxied}/v1/gallery/photos",
        files={"image": ("photo.jpg", os.urandom(21 * 1024 * 1024), "image/jpeg")},
        verify=str(tls_settings.tls_cert_path),
        timeout=60,
    )
    assert response.status_code == 413


def test_slow_clients_are_cut(proxied: int, tls_settings: Settings) -> None:
    context = pinned_context(tls_settings)
    started = time.monotonic()
    # Spread over addresses, as limit_conn caps each address's requests in progress.
    heads, bodies = [], []
    for n in range(10, 15):
        heads += hold(proxied, context, 30, HALF_LINE, source=f"127.0.1.{n}")
        bodies += hold(proxied, context, 10, SLOW_BODY, source=f"127.0.2.{n}")
    try:
        assert held(heads + bodies)[0] == len(heads) + len(bodies) == 200
        assert latency(f"https://127.0.0.1:{proxied}/healthz", context) < BOUND
        time.sleep(max(0.0, started + TIMEOUT + 3 - time.monotonic()))
        assert held(heads)[0] == 0
        still, said = held(bodies)
        assert still == 0
        assert all(reply == b"" or reply.startswith(b"HTTP/1.1 408") for reply in said)
    finally:
        release(heads + bodies)
