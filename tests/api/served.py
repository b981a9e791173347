"""A real ``facewarden serve`` process on a loopback port, for tests that need the real server."""

from __future__ import annotations

import os
import socket
import ssl
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from api.settings import Settings

__all__ = [
    "assert_aead_only",
    "environment",
    "free_port",
    "pinned_context",
    "served",
    "start",
    "stop",
    "with_certificate",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def with_certificate(settings: Settings) -> Settings:
    """The settings, once their self-signed certificate exists."""
    from api.bootstrap import write_self_signed_certificate

    if not settings.tls_cert_path.exists():
        write_self_signed_certificate(settings.tls_cert_path, settings.tls_key_path)
    return settings


def pinned_context(settings: Settings) -> ssl.SSLContext:
    """A client context that trusts exactly the served certificate."""
    return ssl.create_default_context(cafile=str(settings.tls_cert_path))


def environment(settings: Settings, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This process's environment, pointed at ``settings``' data, plus ``extra``."""
    return {
        **os.environ,
        "FACEWARDEN_DATA_DIR": str(settings.data_dir),
        "FACEWARDEN_DATABASE_URL": settings.database_url,
        "FACEWARDEN_LEDGER_ORIGIN": settings.ledger_origin,
        "FACEWARDEN_MODELS_DIR": str(settings.models_dir),
        **(extra or {}),
    }


def start(
    settings: Settings, *args: str, env: Mapping[str, str] | None = None, umask: int = -1
) -> tuple[subprocess.Popen[bytes], int]:
    """Start ``facewarden serve --port <free> *args``; return once it accepts connections.

    ``umask`` is the one the command starts with (default: this process's).
    """
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "api.cli", "serve", "--port", str(port), *args],
        env=environment(settings, env),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        umask=umask,
    )
    deadline = time.monotonic() + 60
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


def stop(proc: subprocess.Popen[bytes]) -> str:
    """Stop the server as an operator does (SIGTERM); return what it printed."""
    proc.terminate()
    try:
        return proc.communicate(timeout=30)[0].decode()
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.communicate()[0].decode()


def worker_pids(server_pid: int) -> list[int]:
    """The worker processes of a ``serve`` (multiprocessing spawns them; its resource tracker
    aside)."""
    try:
        children = Path(f"/proc/{server_pid}/task/{server_pid}/children").read_text()
    except OSError:
        return []
    found = []
    for pid in map(int, children.split()):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if b"spawn_main" in cmdline:
            found.append(pid)
    return found


@contextmanager
def served(settings: Settings, *args: str, env: Mapping[str, str] | None = None) -> Iterator[int]:
    """A running server's port for the length of the block."""
    proc, port = start(settings, *args, env=env)
    try:
        yield port
    finally:
        stop(proc)


# The suites an ECDSA certificate can use in TLS 1.2: with AEAD, and with CBC (SHA-2 and SHA-1).
AEAD_SUITES = (
    "ECDHE-ECDSA-AES128-GCM-SHA256",
    "ECDHE-ECDSA-AES256-GCM-SHA384",
    "ECDHE-ECDSA-CHACHA20-POLY1305",
)
CBC_SUITES = ("ECDHE-ECDSA-AES128-SHA256", "ECDHE-ECDSA-AES256-SHA384", "ECDHE-ECDSA-AES128-SHA")


def _handshake(port: int, settings: Settings, context: ssl.SSLContext) -> str:
    """The suite negotiated; raises ssl.SSLError when the server refuses the handshake."""
    context.load_verify_locations(cafile=str(settings.tls_cert_path))
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        cipher = tls.cipher()
        assert cipher is not None
        return cipher[0]


def _client(version: ssl.TLSVersion, ciphers: str) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    with warnings.catch_warnings():  # TLS 1.0 and 1.1 are deprecated: that is the point
        warnings.simplefilter("ignore", DeprecationWarning)
        context.minimum_version = min(version, ssl.TLSVersion.TLSv1_2)
        context.maximum_version = version
    context.set_ciphers(ciphers)
    return context


def assert_aead_only(port: int, settings: Settings) -> None:
    """TLS 1.2 offers exactly the AEAD suites (any server ends a CBC handshake); < 1.2 fails."""
    for suite in AEAD_SUITES:
        assert _handshake(port, settings, _client(ssl.TLSVersion.TLSv1_2, suite)) == suite
    for suite in CBC_SUITES:
        context = _client(ssl.TLSVersion.TLSv1_2, suite + ":@SECLEVEL=0")
        offered = [c["name"] for c in context.get_ciphers() if not c["name"].startswith("TLS_")]
        assert offered == [suite]  # the client does offer it
        try:
            _handshake(port, settings, context)
        except ssl.SSLError:
            continue
        raise AssertionError(f"the server accepted {suite}")
    for version in (ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1):
        try:
            _handshake(port, settings, _client(version, "ALL:@SECLEVEL=0"))
        except ssl.SSLError:
            continue
        raise AssertionError(f"the server accepted {version.name}")
