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


def test_a_worker_counts_as_serving_only_once_the_lifespan_has_started() -> None:
    """The supervisor replaces a worker that dies after this point and stops the server for one
    that dies before it; hypercorn completes the lifespan startup just before it listens."""
    started = threading.Event()
    server = ReadFirst(
        lambda *_: [], threads=1, max_body_bytes=10, body_seconds=1, on_startup=started.set
    )
    sent: list[str] = []

    async def lifespan() -> None:
        inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

        async def send(message: Any) -> None:
            assert started.is_set()  # before hypercorn hears the startup is complete
            sent.append(message["type"])

        task = asyncio.create_task(server({"type": "lifespan"}, inbox.get, send))  # type: ignore[arg-type]
        await asyncio.sleep(0)
        assert not started.is_set()
        await inbox.put({"type": "lifespan.startup"})
        await inbox.put({"type": "lifespan.shutdown"})
        await asyncio.wait_for(task, 5)

    asyncio.run(lifespan())
    assert sent == ["lifespan.startup.complete", "lifespan.shutdown.complete"]


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


# The supervisor, with real processes whose lives are scripted: each spawned process runs the
# next behaviour of the list (die before serving, die while serving, or serve until stopped).


def _behave(behaviour: str, serving: Any, stop: Any) -> None:
    import os

    if behaviour == "fail-start":
        os._exit(3)
    if behaviour == "killed-starting":
        os.kill(os.getpid(), 9)
    serving.set()
    if behaviour == "die":
        os._exit(9)
    stop.wait(30)


def _pool(behaviours: list[str]) -> tuple[Any, Any, list[Any]]:
    import multiprocessing

    from api.server import _Worker

    context = multiprocessing.get_context("fork")
    stop = context.Event()
    started: list[Any] = []
    script = iter(behaviours)

    def spawn() -> _Worker:
        serving = context.Event()
        process = context.Process(target=_behave, args=(next(script), serving, stop), daemon=True)
        process.start()
        started.append(process)
        return _Worker(process, serving)

    return spawn, stop, started


def _stop_after(stop: Any, seconds: float) -> None:
    threading.Timer(seconds, stop.set).start()


def test_a_worker_that_dies_while_serving_is_replaced(caplog: pytest.LogCaptureFixture) -> None:
    from api.server import _supervise

    spawn, stop, started = _pool(["die", "serve", "serve"])
    pool = [spawn(), spawn()]
    _stop_after(stop, 3)
    with caplog.at_level("WARNING", logger="facewarden.api"):
        status = _supervise(pool, spawn, stop)
    assert status == 0
    assert len(started) == 3  # the dead one was replaced, once
    assert started[0].exitcode == 9
    assert all(w.process is not started[0] for w in pool)
    assert "died (exit status 9); starting another" in caplog.text
    for process in started:
        process.join(10)


def test_a_worker_that_dies_before_serving_stops_the_server() -> None:
    from api.server import _supervise

    spawn, stop, started = _pool(["serve", "fail-start", "serve"])
    pool = [spawn(), spawn()]
    _stop_after(stop, 20)  # a safety net: the supervisor must return long before
    status = _supervise(pool, spawn, stop)
    stop.set()
    assert status == 3
    assert len(started) == 2  # not replaced: it would fail again
    for process in started:
        process.join(10)


def test_a_worker_killed_while_starting_is_replaced() -> None:
    from api.server import _supervise

    spawn, stop, started = _pool(["serve", "killed-starting", "serve"])
    pool = [spawn(), spawn()]
    _stop_after(stop, 3)
    assert _supervise(pool, spawn, stop) == 0
    assert len(started) == 3
    assert started[1].exitcode == -9
    for process in started:
        process.join(10)


def test_a_crash_loop_stops_the_server(monkeypatch: pytest.MonkeyPatch) -> None:
    import api.server as server

    monkeypatch.setattr(server, "RESPAWN_LIMIT", 3)
    spawn, stop, started = _pool(["serve", *["die"] * 10])
    pool = [spawn(), spawn()]
    _stop_after(stop, 20)
    status = server._supervise(pool, spawn, stop)
    stop.set()
    assert status == 9
    assert len(started) == 2 + 3  # three replacements, then the fourth death stops it
    for process in started:
        process.join(10)
