"""Slow clients (half a request line, or a head and a byte of body) and a normal client's latency.

Shared by tests/api/test_slow_clients.py and bench/slow_clients.py.
"""

from __future__ import annotations

import socket
import ssl
import statistics
import time
import urllib.request

__all__ = ["HALF_LINE", "SLOW_BODY", "held", "hold", "latency", "release"]

# Half a request line: the head never completes.
HALF_LINE = b"GET /healthz HT"
# A complete head announcing 100 kB of body, and one byte of it.
SLOW_BODY = (
    b"POST /v1/registrations HTTP/1.1\r\nHost: localhost\r\n"
    b"Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n{"
)


def hold(
    port: int,
    context: ssl.SSLContext | None,
    count: int,
    opening: bytes,
    *,
    source: str = "127.0.0.1",
) -> list[socket.socket]:
    """Open ``count`` connections (TLS when ``context``) that each send ``opening`` and stop."""
    conns: list[socket.socket] = []
    for _ in range(count):
        raw = socket.create_connection(("127.0.0.1", port), timeout=10, source_address=(source, 0))
        conn = context.wrap_socket(raw, server_hostname="localhost") if context else raw
        conn.sendall(opening)
        conns.append(conn)
    return conns


def held(conns: list[socket.socket]) -> tuple[int, list[bytes]]:
    """How many connections the server still holds open, and what it said to the others."""
    still, said = 0, []
    for conn in conns:
        conn.setblocking(False)  # look, without waiting: nothing to read yet means still open
        try:
            data = conn.recv(4096)
        except (ssl.SSLWantReadError, BlockingIOError):
            still += 1
            continue
        except (ssl.SSLError, OSError):
            data = b""
        said.append(data)
    return still, said


def release(conns: list[socket.socket]) -> None:
    for conn in conns:
        conn.close()


def latency(url: str, context: ssl.SSLContext | None, requests: int = 7) -> float:
    """The median seconds of ``requests`` GETs of ``url``, each on a new connection.

    Raises URLError (a timeout after 5 s) when the server does not answer.
    """
    times = []
    for _ in range(requests):
        start = time.perf_counter()
        with urllib.request.urlopen(url, context=context, timeout=5) as response:
            response.read()
            assert response.status == 200
        times.append(time.perf_counter() - start)
    return statistics.median(times)
