"""The rate-limit store (Redis) goes away under a running service: 503 naming it, recovery.

A real ``redis-server`` on a free port, stopped (the process exits: connections reset, new ones
refused) or frozen (SIGSTOP: connections accepted, nothing answered), then brought back.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from api.ratelimit import limiter
from tests.api.helpers import Agent, make_admin, problem, registration_body, runtime_of
from tests.outages.load import OUTAGES, Load
from tests.outages.test_database import embedded_app
from tests.s3 import free_port

pytestmark = pytest.mark.slow

TIMEOUT = 1  # FACEWARDEN_RATELIMIT_STORAGE_TIMEOUT_SECONDS in these tests
WITHIN = TIMEOUT + 2  # the longest a request may wait, with a margin for a busy machine
RECOVERY_SECONDS = 10


@dataclass
class Redis:
    """A redis-server the test stops, freezes and starts again on the same port."""

    port: int
    home: Path
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                *("redis-server", "--port", str(self.port), "--bind", "127.0.0.1"),
                *("--save", "", "--appendonly", "no", "--dir", str(self.home)),
            ],
            stdout=subprocess.DEVNULL,
        )
        import redis

        client = redis.Redis(port=self.port, socket_connect_timeout=1)
        deadline = time.monotonic() + 10
        while True:
            try:
                if client.ping():
                    return
            except redis.ConnectionError:
                assert time.monotonic() < deadline, "redis-server did not start"
                time.sleep(0.05)

    def stop(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait()

    cut, restore = stop, start  # an outage's names for them (tests.outages.load.OUTAGES)

    def freeze(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)


@pytest.fixture
def redis_limited(tmp_path: Path) -> Iterator[tuple[Flask, Redis]]:
    if shutil.which("redis-server") is None:
        pytest.skip("no redis-server (Debian: apt-get install redis-server)")
    server = Redis(port=free_port(), home=tmp_path)
    server.start()
    # The process has one limiter (api.ratelimit), whose storage the last app made rebinds: put
    # back the suite's, so that later tests do not count in this Redis once it is gone.
    saved = limiter._storage, limiter._limiter
    try:
        app = embedded_app(
            tmp_path,
            ratelimit_storage_uri=f"redis://127.0.0.1:{server.port}/0",
            ratelimit_storage_timeout_seconds=str(TIMEOUT),
        )
        yield app, server
        runtime_of(app).engine.dispose()
    finally:
        limiter._storage, limiter._limiter = saved
        if server.process is not None:
            server.thaw()
            server.stop()


def _calls(admin: Agent) -> dict[str, object]:
    return {
        "healthz": lambda c: c.get("/healthz"),
        "read": lambda c: c.get("/v1/accounts/me", headers=admin.headers),
        "register": lambda c: c.post("/v1/registrations", json=registration_body()),
    }


def _refused(client: FlaskClient, admin: Agent) -> list[dict[str, object]]:
    """The answers of a registration (public) and of a read (with a key), both 503s."""
    started = time.monotonic()
    bodies = [
        problem(client.post("/v1/registrations", json=registration_body()), 503),
        problem(client.get("/v1/accounts/me", headers=admin.headers), 503),
    ]
    assert time.monotonic() - started < 2 * WITHIN
    return bodies


@OUTAGES
def test_a_rate_limit_store_outage_is_a_503_naming_it_and_the_service_recovers(
    redis_limited: tuple[Flask, Redis], how: str, back: str
) -> None:
    app, server = redis_limited
    client = app.test_client()
    admin = make_admin(app)
    assert client.get("/readyz").get_json()["checks"]["rate_limits"]["ok"] is True

    with Load(app, _calls(admin), parts={"rate-limit-store-unavailable"}, within=WITHIN) as load:
        getattr(server, how)()
        load.refused_since(time.monotonic())
        for body in _refused(client, admin):
            assert body["type"] == "/problems/rate-limit-store-unavailable"
            assert "FACEWARDEN_RATELIMIT_STORAGE_URI" in str(body["detail"])
            assert f"FACEWARDEN_RATELIMIT_STORAGE_TIMEOUT_SECONDS={TIMEOUT}" in str(body["detail"])
        assert client.get("/healthz").status_code == 200  # it consults no limit
        readiness = client.get("/readyz")
        assert readiness.status_code == 503
        assert readiness.get_json()["checks"]["rate_limits"]["ok"] is False

        getattr(server, back)()
        restored = time.monotonic()
        load.served_since(restored, timeout=RECOVERY_SECONDS)
        recovered = time.monotonic() - restored
    answers = load.check()
    assert client.get("/readyz").status_code == 200
    print(
        f"rate-limit store {how}: {load.refused()} of {len(answers)} answers refused; "
        f"recovered {recovered:.2f} s after the {back}"
    )
