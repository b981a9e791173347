"""``facewarden serve`` with real TLS: pinned clients, AEAD-only suites, no banner, proxy trust."""

from __future__ import annotations

import json
import os
import socket
import ssl
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import requests

from api.settings import Settings
from tests.api.served import (
    assert_aead_only,
    environment,
    free_port,
    pinned_context,
    served,
    start,
    stop,
    with_certificate,
    worker_pids,
)

pytestmark = pytest.mark.slow

MAX_BYTES = 10 * 1024 * 1024


@pytest.fixture(scope="module")
def tls_settings(app: object, settings: Settings) -> Settings:
    return with_certificate(settings)


@pytest.fixture(scope="module")
def https_server(tls_settings: Settings) -> Iterator[int]:
    # A smaller body limit, so the over-limit test sends 12 MB rather than 21.
    with served(tls_settings, env={"FACEWARDEN_MAX_REQUEST_BYTES": str(MAX_BYTES)}) as port:
        yield port


def test_https_with_the_generated_certificate(https_server: int, tls_settings: Settings) -> None:
    with urllib.request.urlopen(
        f"https://127.0.0.1:{https_server}/healthz",
        context=pinned_context(tls_settings),
        timeout=10,
    ) as response:
        assert response.status == 200
        assert json.load(response) == {"status": "ok"}
        assert response.headers["Strict-Transport-Security"].startswith("max-age=")
    # A client that does not trust the certificate is refused by TLS itself.
    with pytest.raises(urllib.error.URLError, match="CERTIFICATE_VERIFY_FAILED"):
        urllib.request.urlopen(
            f"https://127.0.0.1:{https_server}/healthz",
            context=ssl.create_default_context(),
            timeout=10,
        )


def test_no_server_software_banner(https_server: int, tls_settings: Settings) -> None:
    for path in ("/healthz", "/no-such-page"):
        request = urllib.request.Request(f"https://127.0.0.1:{https_server}{path}")
        try:
            response = urllib.request.urlopen(
                request, context=pinned_context(tls_settings), timeout=10
            )
        except urllib.error.HTTPError as error:
            response = error
        assert response.headers.get("Server") is None, path
    # Nor on the server's own refusal of a malformed request, which never reaches the app.
    context = pinned_context(tls_settings)
    with (
        socket.create_connection(("127.0.0.1", https_server), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        tls.sendall(b"NOT HTTP\r\n\r\n")
        reply = tls.recv(4096).decode("latin-1").lower()
    assert reply.startswith("http/1.1 400")
    assert "\r\nserver:" not in reply


def test_tls_is_12_or_13_with_aead_suites_only(https_server: int, tls_settings: Settings) -> None:
    assert_aead_only(https_server, tls_settings)


@pytest.mark.parametrize("size", [135 * 1024, 8 * 1024 * 1024])
def test_an_early_refusal_reaches_a_requests_client(
    https_server: int, tls_settings: Settings, size: int
) -> None:
    """The server reads the upload before the app refuses it, so the client hears the refusal.

    A client like python-requests sends its whole body before it reads: a server that answered
    and closed first would reset the connection under it (8 MB is past the socket buffers).
    """
    photo = os.urandom(size)
    response = requests.post(
        f"https://127.0.0.1:{https_server}/v1/gallery/photos",
        files={"image": ("photo.jpg", photo, "image/jpeg")},
        data={"source_url": "https://photos.example.org/p/1.jpg"},
        headers={"Authorization": "Bearer not-a-key"},
        verify=str(tls_settings.tls_cert_path),
        timeout=30,
    )
    assert response.status_code == 401
    assert response.headers["Content-Type"] == "application/problem+json"
    assert response.json()["status"] == 401


def _over_the_limit() -> Iterator[bytes]:
    for _ in range(MAX_BYTES // (1024 * 1024) + 2):
        yield os.urandom(1024 * 1024)


@pytest.mark.parametrize(
    "upload",
    [
        # Multipart with a Content-Length, as a form sends it.
        {"files": {"image": ("photo.jpg", b"".join(_over_the_limit()), "image/jpeg")}},
        # Chunked, with no length announced: counted as it arrives.
        {"data": _over_the_limit(), "headers": {"Content-Type": "image/jpeg"}},
    ],
    ids=["content-length", "chunked"],
)
def test_an_upload_over_the_limit_is_answered_413(
    https_server: int, tls_settings: Settings, upload: dict[str, Any]
) -> None:
    headers = {"Authorization": "Bearer not-a-key", **upload.pop("headers", {})}
    response = requests.post(
        f"https://127.0.0.1:{https_server}/v1/gallery/photos",
        headers=headers,
        verify=str(tls_settings.tls_cert_path),
        timeout=60,
        **upload,
    )
    # Refused before authentication, as a proxy's client_max_body_size would be.
    assert response.status_code == 413
    assert response.headers["Content-Type"] == "application/problem+json"
    assert response.json()["title"] == "Content too large"


def test_serve_prints_the_certificate_fingerprint(tls_settings: Settings) -> None:
    proc, _port = start(tls_settings)
    out = stop(proc)
    assert "TLS certificate SHA-256 fingerprint:" in out
    assert Path(tls_settings.tls_cert_path).exists()


def _get(port: int, path: str, headers: dict[str, str]) -> tuple[int, dict[str, str]]:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, {k.lower(): v for k, v in response.headers.items()}
    except urllib.error.HTTPError as error:
        return error.code, {k.lower(): v for k, v in error.headers.items()}


def test_plain_http_refuses_to_start_without_trusted_proxies(tls_settings: Settings) -> None:
    env = environment(tls_settings)
    env.pop("FACEWARDEN_TRUSTED_PROXIES", None)
    done = subprocess.run(
        [sys.executable, "-m", "api.cli", "serve", "--http", "--port", "1"],
        env=env,
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert "FACEWARDEN_TRUSTED_PROXIES" in done.stderr


@pytest.mark.parametrize(
    ("trusted", "hsts", "statuses"),
    [
        # The peer is the proxy: each forwarded address is a client of its own, none reaches 3.
        ("127.0.0.1", True, [401] * 5),
        # The peer is not: rotating X-Forwarded-For does not make 127.0.0.1 someone else.
        ("192.0.2.10, 10.0.0.0/8", False, [401, 401, 401, 429, 429]),
    ],
)
def test_plain_http_trusts_forwarded_headers_only_from_the_trusted_proxies(
    tls_settings: Settings, trusted: str, hsts: bool, statuses: list[int]
) -> None:
    env = {
        "FACEWARDEN_TRUSTED_PROXIES": trusted,
        "FACEWARDEN_AUTH_FAILURE_RATE_LIMIT": "3 per minute",
    }
    with served(tls_settings, "--http", env=env) as port:
        status, headers = _get(port, "/healthz", {"X-Forwarded-Proto": "https"})
        # Only a trusted proxy's X-Forwarded-Proto makes the request secure, and HSTS sent.
        assert (status, "strict-transport-security" in headers) == (200, hsts)
        seen = [
            _get(
                port,
                "/v1/accounts/me",
                {"Authorization": "Bearer bad", "X-Forwarded-For": f"203.0.113.{n}"},
            )[0]
            for n in range(5)
        ]
    assert seen == statuses


@contextmanager
def two_workers(
    settings: Settings, index_dir: Path
) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    """``serve --workers 2`` on a shared index server; yields the server and its port."""
    from biometrics.index_server import IndexServer

    index = IndexServer(index_dir / "gallery.db", port=free_port())
    address = index.start()
    try:
        proc, port = start(settings, "--workers", "2", env={"FACEWARDEN_MILVUS_URI": address.uri})
        try:
            yield proc, port
        finally:
            if proc.poll() is None:
                stop(proc)
    finally:
        index.stop()


def test_several_workers_share_the_port(tls_settings: Settings, tmp_path: Path) -> None:
    with two_workers(tls_settings, tmp_path / "index") as (proc, port):
        for _ in range(8):
            status, _headers = _get_tls(port, tls_settings)
            assert status == 200
        out = stop(proc)
    assert out.count("Running on https://127.0.0.1:") == 2, out
    assert "2 worker(s) x 4 threads" in out


def test_a_worker_killed_while_serving_is_replaced(tls_settings: Settings, tmp_path: Path) -> None:
    import signal
    import time

    with two_workers(tls_settings, tmp_path / "index") as (proc, port):
        deadline = time.monotonic() + 60
        while len(before := worker_pids(proc.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert len(before) == 2
        assert _get_tls(port, tls_settings)[0] == 200
        os.kill(before[0], signal.SIGKILL)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            after = worker_pids(proc.pid)
            if len(after) == 2 and before[0] not in after:
                break
            time.sleep(0.2)
        assert len(after) == 2 and before[0] not in after and before[1] in after, stop(proc)
        # Every request is answered, by the survivor or by the replacement once it serves.
        for _ in range(8):
            assert _get_tls(port, tls_settings)[0] == 200
        assert proc.poll() is None
        out = stop(proc)
    assert proc.returncode == 0, out
    died = f"worker {before[0]} died (signal SIGKILL); starting another"
    assert died in out
    # The replacement announced itself after the death; the killed worker may have died
    # before it got as far as announcing itself.
    assert "Running on https://127.0.0.1:" in out.split(died, 1)[1], out
    assert out.count("Running on https://127.0.0.1:") in (2, 3), out


def _get_tls(port: int, settings: Settings) -> tuple[int, bytes]:
    with urllib.request.urlopen(
        f"https://127.0.0.1:{port}/healthz", context=pinned_context(settings), timeout=10
    ) as response:
        return response.status, response.read()


def test_a_chunked_body_under_the_limit_reaches_the_app(
    https_server: int, tls_settings: Settings
) -> None:
    from tests.api.helpers import registration_body

    encoded = json.dumps(registration_body()).encode()
    response = requests.post(
        f"https://127.0.0.1:{https_server}/v1/registrations",
        data=iter([encoded[:100], encoded[100:]]),  # no length announced: chunked
        headers={"Content-Type": "application/json"},
        verify=str(tls_settings.tls_cert_path),
        timeout=30,
    )
    assert response.status_code == 202, response.text
    assert response.json()["status"] == "pending"


def test_a_sigterm_to_the_whole_process_group_stops_gracefully(tls_settings: Settings) -> None:
    # systemd (KillMode=control-group) and `timeout` signal every process of the service, the
    # workers too: they must stop as when the parent tells them, not die of the signal.
    import signal
    import time

    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "api.cli", "serve", "--port", str(port)],
        env=environment(tls_settings, None),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.2)
        assert _get_tls(port, tls_settings)[0] == 200
        os.killpg(proc.pid, signal.SIGTERM)
        out = proc.communicate(timeout=60)[0].decode()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
    assert proc.returncode == 0, out
    assert "a worker stopped" not in out
