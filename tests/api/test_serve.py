"""``facewarden serve`` runs gunicorn with real TLS; a client pinned to the certificate connects."""

from __future__ import annotations

import json
import os
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from api.settings import Settings

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _serve(settings: Settings, *args: str) -> tuple[subprocess.Popen[bytes], int]:
    port = _free_port()
    env = {
        **os.environ,
        "FACEWARDEN_DATA_DIR": str(settings.data_dir),
        "FACEWARDEN_DATABASE_URL": settings.database_url,
        "FACEWARDEN_LEDGER_ORIGIN": settings.ledger_origin,
        "FACEWARDEN_MODELS_DIR": str(settings.models_dir),
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "api.cli", "serve", "--port", str(port), *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return proc, port
        if proc.poll() is not None:
            break
        time.sleep(0.2)
    proc.kill()
    out = proc.communicate()[0].decode()
    raise AssertionError(f"server did not start:\n{out}")


@pytest.fixture
def tls_settings(app: object, settings: Settings) -> Settings:
    from api.bootstrap import write_self_signed_certificate

    if not settings.tls_cert_path.exists():
        write_self_signed_certificate(settings.tls_cert_path, settings.tls_key_path)
    return settings


@pytest.fixture
def https_server(tls_settings: Settings) -> Iterator[int]:
    proc, port = _serve(tls_settings)
    yield port
    proc.terminate()
    proc.wait(timeout=20)


def test_https_with_the_generated_certificate(https_server: int, tls_settings: Settings) -> None:
    context = ssl.create_default_context(cafile=str(tls_settings.tls_cert_path))
    with urllib.request.urlopen(
        f"https://127.0.0.1:{https_server}/healthz", context=context, timeout=10
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


def test_plain_http_behind_a_proxy_honours_forwarded_proto(tls_settings: Settings) -> None:
    proc, port = _serve(tls_settings, "--http")
    try:
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/healthz", headers={"X-Forwarded-Proto": "https"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            # ProxyFix made the request secure, so HSTS is sent.
            assert "Strict-Transport-Security" in response.headers
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_serve_prints_the_certificate_fingerprint(tls_settings: Settings) -> None:
    proc, _port = _serve(tls_settings)
    proc.terminate()
    out = proc.communicate(timeout=20)[0].decode()
    assert "TLS certificate SHA-256 fingerprint:" in out
    assert Path(tls_settings.tls_cert_path).exists()
