"""A real ``facewarden serve`` process on a loopback port, for tests that need the real server."""

from __future__ import annotations

import os
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from api.settings import Settings

__all__ = [
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


@contextmanager
def served(settings: Settings, *args: str, env: Mapping[str, str] | None = None) -> Iterator[int]:
    """A running server's port for the length of the block."""
    proc, port = start(settings, *args, env=env)
    try:
        yield port
    finally:
        stop(proc)
