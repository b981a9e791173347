"""Serve the app with hypercorn: a request is read whole, within deadlines, before a thread runs it.

A thread is the scarce resource of a WSGI app, so no client gets one until its request has fully
arrived: a client that sends half a request line, or trickles a body, holds a socket on the event
loop and nothing else, and is cut when its deadline passes. ``--http`` (behind a TLS-terminating
proxy) honours X-Forwarded-* only from the proxies in ``FACEWARDEN_TRUSTED_PROXIES``.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import multiprocessing
import resource
import signal
import sys
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from io import BytesIO
from multiprocessing.connection import wait
from multiprocessing.process import BaseProcess
from multiprocessing.synchronize import Event as EventType
from pathlib import Path
from typing import Any

from flask import Flask
from hypercorn.asyncio.run import worker_serve
from hypercorn.config import Config, Sockets
from hypercorn.typing import ASGIReceiveCallable, ASGISendCallable, HTTPScope, Scope
from hypercorn.utils import check_multiprocess_shutdown_event
from werkzeug.middleware.proxy_fix import ProxyFix

from api.settings import ConfigError, Networks, Settings

__all__ = [
    "TLS_CIPHERS",
    "ReadFirst",
    "TrustedProxies",
    "build_wsgi",
    "raise_open_file_limit",
    "run_server",
]

# TLS 1.2 with forward secrecy and AEAD only (TLS 1.3's suites are all AEAD); TLS < 1.2 is refused.
TLS_CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20"

log = logging.getLogger("facewarden.api")

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def build_wsgi(settings: Settings, *, behind_proxy: bool) -> Flask:
    """The app; behind a proxy, X-Forwarded-* from ``settings.trusted_proxies`` are honoured."""
    from api.app import create_app

    app = create_app(settings)
    trusted = settings.trusted_proxy_networks if behind_proxy else ()
    app.wsgi_app = TrustedProxies(app.wsgi_app, trusted)  # type: ignore[method-assign]
    return app


def _replay_effects(app: Flask) -> None:
    """Apply the effects outside the database a killed process left pending (the vectors and
    files of photos it enrolled or removed) before serving; a failure is logged, and the sweep
    before requests tries again. In the worker: a milvus-lite file opens in one process only."""
    from api.context import effect_handlers, runtime
    from governance.core.effects import replay

    with app.app_context():
        try:
            replayed = replay(runtime().sessions, effect_handlers)
        except Exception:  # serving must not wait on the index
            log.exception("pending effects were not replayed at start-up")
            return
    if replayed.applied or replayed.failed:
        log.info(
            "pending effects replayed",
            extra={"applied": replayed.applied, "failed": replayed.failed},
        )


class TrustedProxies:
    """ProxyFix (one hop) for requests whose peer is a trusted proxy.

    Any other peer's X-Forwarded-* and Forwarded headers are dropped, so a client cannot pose as
    another address (and escape the per-address rate limits) or as a TLS connection.
    """

    def __init__(self, app: WSGIApp, networks: Networks) -> None:
        self._app = app
        self._fixed = ProxyFix(app, x_for=1, x_proto=1, x_host=1)
        self._networks = networks

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        if _is_in(environ.get("REMOTE_ADDR"), self._networks):
            return self._fixed(environ, start_response)
        for name in [k for k in environ if k.startswith(("HTTP_X_FORWARDED_", "HTTP_FORWARDED"))]:
            del environ[name]
        return self._app(environ, start_response)


def _is_in(address: str | None, networks: Networks) -> bool:
    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:
        return False
    # A dual-stack listener sees an IPv4 proxy as ::ffff:a.b.c.d.
    ip = getattr(ip, "ipv4_mapped", None) or ip
    return any(ip in network for network in networks)


class ReadFirst:
    """An ASGI app that reads a request whole within ``body_seconds``, then runs WSGI in a thread.

    A body over ``max_body_bytes`` is read to the end but not kept: the app sees its length and
    an empty stream, and answers 413 itself. Reading first means that a client which sends its
    whole body before it reads (python-requests does) hears that answer, or an early 401, rather
    than a reset connection.

    Bodies held in memory, over all requests of this worker, stay under ``buffer_bytes``: a
    body that would pass it is read to the end but not kept, and answered 503 with Retry-After,
    so anonymous uploads cannot exhaust memory whatever number of connections they open.
    """

    def __init__(
        self,
        app: WSGIApp,
        *,
        threads: int,
        max_body_bytes: int,
        body_seconds: float,
        buffer_bytes: int | None = None,
        on_startup: Callable[[], None] | None = None,
    ) -> None:
        self._app = app
        self._on_startup = on_startup
        self._max_body_bytes = max_body_bytes
        self._body_seconds = body_seconds
        self._buffer_bytes = buffer_bytes if buffer_bytes is not None else 8 * max_body_bytes
        self._buffered = 0  # touched on the event loop only
        self._executor = ThreadPoolExecutor(threads, thread_name_prefix="request")

    async def __call__(
        self, scope: Scope, receive: ASGIReceiveCallable, send: ASGISendCallable, *_: object
    ) -> None:
        # Hypercorn passes two more callables (its WSGI helpers), which this app has no use for.
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["type"] == "http":
            await self._http(scope, receive, send)
        else:
            await send({"type": "websocket.close", "code": 1000, "reason": None})

    async def _lifespan(self, receive: ASGIReceiveCallable, send: ASGISendCallable) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                if self._on_startup is not None:
                    self._on_startup()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                self._executor.shutdown(wait=True)
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _http(
        self, scope: HTTPScope, receive: ASGIReceiveCallable, send: ASGISendCallable
    ) -> None:
        held = [0]  # what this request counts against the worker's buffer
        try:
            try:
                async with asyncio.timeout(self._body_seconds):
                    body, length, kept = await self._read_body(receive, held)
            except TimeoutError:
                await _send_timeout(send, self._body_seconds)
                return
            except ConnectionError:
                return
            if not kept:
                await _send_busy(send)
                return
            environ = _environ(scope, body, length)
            loop = asyncio.get_running_loop()
            status, headers, body = await loop.run_in_executor(
                self._executor, _run, self._app, environ
            )
            await _respond(send, status, headers, body)
        finally:
            self._buffered -= held[0]

    async def _read_body(
        self, receive: ASGIReceiveCallable, held: list[int]
    ) -> tuple[bytes, int, bool]:
        """The body (up to the limit), its whole length, and whether the buffer could keep it."""
        body = bytearray()
        length = 0
        kept = True
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise ConnectionError("the client went away")
            chunk: bytes = message.get("body", b"")  # type: ignore[assignment]
            length += len(chunk)
            if kept and length <= self._max_body_bytes:
                if self._buffered + len(chunk) > self._buffer_bytes:
                    kept = False  # read the rest and drop it, then answer 503
                    self._buffered -= held[0]
                    held[0] = 0
                    body = bytearray()
                else:
                    self._buffered += len(chunk)
                    held[0] += len(chunk)
                    body += chunk
            if not message.get("more_body", False):
                return bytes(body), length, kept


Headers = list[tuple[bytes, bytes]]


async def _respond(send: ASGISendCallable, status: int, headers: Headers, body: bytes) -> None:
    await send(
        {"type": "http.response.start", "status": status, "headers": headers, "trailers": False}
    )
    await send({"type": "http.response.body", "body": body, "more_body": False})


def _run(app: WSGIApp, environ: dict[str, Any]) -> tuple[int, Headers, bytes]:
    """Call the WSGI app and collect its whole response (the service's responses are small)."""
    started: list[Any] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
        started[:] = [status, headers]

    result = app(environ, start_response)
    try:
        chunks = [bytes(chunk) for chunk in result]
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()
    status, headers = started
    raw = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers]
    return int(status.split(" ", 1)[0]), raw, b"".join(chunks)


def _environ(scope: HTTPScope, body: bytes, length: int) -> dict[str, Any]:
    """The WSGI environ of a request read whole (PEP 3333); ``length`` may exceed the body kept."""
    server = scope.get("server") or ("localhost", 80)
    environ: dict[str, Any] = {
        "REQUEST_METHOD": scope["method"],
        "SCRIPT_NAME": "",
        "PATH_INFO": scope["path"].encode("utf-8").decode("latin-1"),
        "QUERY_STRING": scope["query_string"].decode("latin-1"),
        "SERVER_NAME": str(server[0]),
        "SERVER_PORT": str(server[1]),
        "SERVER_PROTOCOL": f"HTTP/{scope['http_version']}",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": scope.get("scheme", "http"),
        "wsgi.input": BytesIO(body if len(body) == length else b""),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }
    client = scope.get("client")
    if client is not None:
        environ["REMOTE_ADDR"] = client[0]
    for raw_name, raw_value in scope["headers"]:
        name = raw_name.decode("latin-1").upper().replace("-", "_")
        if name not in ("CONTENT_LENGTH", "CONTENT_TYPE"):
            name = "HTTP_" + name
        value = raw_value.decode("latin-1")
        environ[name] = f"{environ[name]},{value}" if name in environ else value
    if length or "CONTENT_LENGTH" in environ:
        # What actually arrived, de-chunked: the app reads a body of known length, and one over
        # the limit is its 413 whether or not the client announced a length.
        environ["CONTENT_LENGTH"] = str(length)
        environ.pop("HTTP_TRANSFER_ENCODING", None)
    return environ


async def _send_timeout(send: ASGISendCallable, seconds: float) -> None:
    body = json.dumps(
        {
            "type": "about:blank",
            "title": "Request timeout",
            "status": 408,
            "detail": f"the request body did not arrive within {seconds:g} s",
        }
    ).encode()
    headers = [(b"content-type", b"application/problem+json"), (b"connection", b"close")]
    await _respond(send, 408, headers, body)


async def _send_busy(send: ASGISendCallable) -> None:
    body = json.dumps(
        {
            "type": "about:blank",
            "title": "Service busy",
            "status": 503,
            "detail": "the server holds as many request bodies as it may; retry shortly",
        }
    ).encode()
    headers = [
        (b"content-type", b"application/problem+json"),
        (b"retry-after", b"5"),
        (b"connection", b"close"),
    ]
    await _respond(send, 503, headers, body)


def server_config(settings: Settings, *, bind: str, tls: tuple[Path, Path] | None) -> Config:
    """Hypercorn's settings: the deadlines, HTTP/1.1 only, no banner, AEAD-only TLS."""
    config = Config()
    config.bind = [bind]
    config.alpn_protocols = ["http/1.1"]
    config.include_server_header = False
    config.accesslog = None  # the app logs each request as JSON, without query strings
    config.errorlog = "-"
    config.backlog = 1024
    # The idle timer runs from accept (after TLS) until a request head is complete, and again
    # between keep-alive requests: a total deadline for the head, not a per-read one.
    config.keep_alive_timeout = settings.request_header_timeout_seconds
    config.ssl_handshake_timeout = settings.request_header_timeout_seconds
    config.h11_max_incomplete_size = 16 * 1024
    config.graceful_timeout = 20
    if tls is not None:
        config.certfile, config.keyfile = str(tls[0]), str(tls[1])
        config.ciphers = TLS_CIPHERS
    return config


def run_server(
    settings: Settings,
    *,
    bind: str,
    workers: int,
    threads: int,
    tls: tuple[Path, Path] | None,
) -> int:
    """Serve until SIGTERM or SIGINT with ``workers`` processes; return the exit status.

    A worker that dies while serving (killed, out of memory, a crash) is replaced, so one death
    costs that worker's requests in flight and nothing more. A worker that exits before it serves
    failed to start, and would fail again: that stops the server, as do more than
    ``RESPAWN_LIMIT`` replacements within ``RESPAWN_WINDOW`` seconds (a crash loop).
    """
    raise_open_file_limit()
    config = server_config(settings, bind=bind, tls=tls)
    sockets = config.create_sockets()
    context = multiprocessing.get_context("spawn")
    stop = context.Event()
    # Workers inherit an ignored SIGINT; only this process decides when they stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)

    def spawn() -> _Worker:
        serving = context.Event()
        process = context.Process(
            target=_work,
            args=(settings, config, sockets, stop, serving, threads, tls is None),
            daemon=True,
        )
        process.start()
        return _Worker(process, serving)

    with shared_index(settings, workers=workers):
        pool = [spawn() for _ in range(workers)]
        for name in (signal.SIGINT, signal.SIGTERM):
            signal.signal(name, lambda *_: stop.set())
        status = _supervise(pool, spawn, stop)
        stop.set()
        for worker in pool:
            worker.process.join(config.graceful_timeout + 5)
            if worker.process.is_alive():
                worker.process.terminate()
    for sock in [*sockets.secure_sockets, *sockets.insecure_sockets]:
        sock.close()
    return status or max((w.process.exitcode or 0 for w in pool), default=0)


def can_share_index(settings: Settings) -> bool:
    """Whether ``serve`` shares a milvus-lite file among its workers and the CLI itself."""
    from biometrics.errors import IndexUnavailable
    from biometrics.index_server import milvus_lite_version

    try:
        return settings.milvus_is_local and milvus_lite_version() < (3,)
    except IndexUnavailable:  # milvus-lite is not installed: the workers will say so
        return False


@contextmanager
def shared_index(settings: Settings, *, workers: int) -> Iterator[None]:
    """While it lasts, a milvus-lite file the settings name is served over a socket to every
    process of this machine that opens it (``api.context.open_index``): the workers, and
    ``facewarden gallery`` or ``doctor`` run beside the server.

    When another process holds the file, one worker opens it itself once that process lets go,
    as a server that does not share would, and ``/readyz`` reports the index until then; more
    workers could not. Raises IndexUnavailable (IndexFileHeld with several workers).
    """
    from biometrics.index_server import IndexFileHeld, SharedFile, shared_uri

    if not can_share_index(settings) or shared_uri(Path(settings.milvus_uri)) is not None:
        yield  # nothing to share, or a server of this data directory shares it already
        return
    shared = SharedFile(Path(settings.milvus_uri))
    try:
        shared.start()
    except IndexFileHeld as exc:
        if workers > 1:
            raise
        log.warning("%s; the worker opens it once it is free", exc)
        yield
        return
    try:
        yield
    finally:
        shared.stop()


RESPAWN_LIMIT = 5
RESPAWN_WINDOW = 60.0


@dataclass(frozen=True, slots=True)
class _Worker:
    process: BaseProcess
    serving: EventType  # set by the worker once it serves


def _supervise(pool: list[_Worker], spawn: Callable[[], _Worker], stop: EventType) -> int:
    """Replace the workers that die while serving until ``stop``; return a failure's status."""
    replaced: deque[float] = deque()
    while not stop.is_set():
        wait([w.process.sentinel for w in pool], timeout=1)
        for slot, worker in enumerate(pool):
            if worker.process.is_alive() or stop.is_set():
                continue
            code = worker.process.exitcode or 0
            if not worker.serving.is_set() and code >= 0:
                # It failed to start by itself (a missing key, an unreachable database): a new
                # one would fail alike. One killed by a signal while starting is replaced.
                log.error("a worker stopped before serving (exit status %s)", code)
                return code or 1
            now = time.monotonic()
            while replaced and now - replaced[0] > RESPAWN_WINDOW:
                replaced.popleft()
            if len(replaced) >= RESPAWN_LIMIT:
                log.error(
                    "workers died %d times within %.0f s (last exit status %s): stopping",
                    len(replaced) + 1,
                    RESPAWN_WINDOW,
                    code,
                )
                return code or 1
            replaced.append(now)
            log.warning("worker %d died (%s); starting another", worker.process.pid, _death(code))
            pool[slot] = spawn()
    return 0


def _death(code: int) -> str:
    if code < 0:
        try:
            return f"signal {signal.Signals(-code).name}"
        except ValueError:
            return f"signal {-code}"
    return f"exit status {code}"


def raise_open_file_limit() -> int:
    """Raise the soft limit on open files to the hard one (at most 2**20); return the new soft.

    Each connection held open costs a descriptor: with the common soft limit of 1024, a thousand
    idle connections would be enough to stop ``accept``.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = 1 << 20 if hard == resource.RLIM_INFINITY else min(hard, 1 << 20)
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError):
            return soft
        return target
    return soft


def _work(
    settings: Settings,
    config: Config,
    sockets: Sockets,
    stop: EventType,
    serving: EventType,
    threads: int,
    behind_proxy: bool,
) -> None:
    """One worker process: build the app, then serve the shared sockets until told to stop.

    A SIGTERM sent to the worker itself (systemd and ``timeout`` signal the whole group) stops
    it as the parent's does: gracefully, with exit status 0.
    """
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        wsgi = build_wsgi(settings, behind_proxy=behind_proxy)
    except ConfigError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        sys.exit(1)
    _replay_effects(wsgi)
    if config.ssl_enabled:
        config.create_ssl_context()  # a key or certificate it cannot load fails here, not serving
    app = ReadFirst(
        wsgi,
        threads=threads,
        max_body_bytes=settings.max_request_bytes,
        body_seconds=settings.request_body_timeout_seconds,
        # Hypercorn completes the lifespan startup just before it takes connections: only from
        # then on is a death a crash to replace rather than a start-up failure to report.
        on_startup=serving.set,
    )
    trigger = partial(check_multiprocess_shutdown_event, stop, asyncio.sleep)
    # ReadFirst takes hypercorn's two extra arguments as *_; its AppWrapper type names them.
    serve = worker_serve(app, config, sockets=sockets, shutdown_trigger=trigger)  # type: ignore[arg-type]
    asyncio.run(serve)
