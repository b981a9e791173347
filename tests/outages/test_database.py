"""The database goes away under a running service: 503 naming it, nothing kept, recovery.

PostgreSQL is reached through a relay that the test cuts (every connection reset, new ones
refused: what the service sees when the server stops) and restores. The full disk is real: the
data directory is a small tmpfs, filled up by the test, then freed.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import text
from sqlalchemy.engine import make_url

from api.app import create_app
from api.bootstrap import initialize
from api.settings import Settings
from tests.api.helpers import make_admin, registration_body, runtime_of
from tests.conftest import (
    create_test_database,
    drop_test_database,
    ensure_starter_pack,
    models_dir_for_tests,
)
from tests.outages.load import OUTAGES, Load
from tests.outages.relay import Relay

pytestmark = pytest.mark.slow

ANSWER_TIMEOUT = 2  # FACEWARDEN_DATABASE_TIMEOUT_SECONDS in the PostgreSQL test
# The longest a request may wait: a pooled connection's check (the answer timeout), then a new
# connection's (the 5 s connect timeout), with a margin for a busy machine.
WITHIN = ANSWER_TIMEOUT + 5 + 3


def _settings(data_dir: Path, database_url: str, **more: str) -> Settings:
    return Settings.from_mapping(
        {
            **more,
            "data_dir": str(data_dir),
            "database_url": database_url,
            "ledger_origin": "outage.facewarden.local/ledger",
            "models_dir": str(models_dir_for_tests()),
            "registration_rate_limit": "1000 per minute",
        }
    )


def app_on(data_dir: Path, database_url: str, **more: str) -> Flask:
    """An initialised application of its own, on ``database_url``, with settings ``more``."""
    return _app(_settings(data_dir, database_url, **more))


def embedded_app(home: Path, **more: str) -> Flask:
    """An application on a SQLite database under ``home``, whose costly requests (searches,
    enrolments) are limited only far above what a test sends."""
    return app_on(
        home / "var",
        f"sqlite:///{home / 'facewarden.db'}",
        **{"search_rate_limit": "1000 per minute", "account_rate_limit": "1000 per minute"},
        **more,
    )


def _app(settings: Settings) -> Flask:
    ensure_starter_pack(settings.models_dir)
    initialize(settings, tls=False, progress=lambda _msg: None)
    return create_app(settings)


def _register(client: FlaskClient) -> tuple[int, dict[str, object], float]:
    started = time.monotonic()
    response = client.post("/v1/registrations", json=registration_body())
    return response.status_code, response.get_json(), time.monotonic() - started


def _submitted(app: Flask) -> tuple[int, int]:
    """How many registrations the database holds, and how many ledger entries record one."""
    with runtime_of(app).engine.connect() as conn:
        rows = conn.execute(text("SELECT count(*) FROM registrations")).scalar_one()
        entries = conn.execute(
            text("SELECT count(*) FROM ledger_entries WHERE type = 'registration:submit'")
        ).scalar_one()
    return rows, entries


# -- PostgreSQL stops and comes back


@pytest.fixture
def relayed_postgres(tmp_path: Path) -> Iterator[tuple[Flask, Relay]]:
    server = os.environ.get("FACEWARDEN_TEST_DATABASE_URL") or os.environ.get(
        "FACEWARDEN_TEST_PG_URL"
    )
    if not server:
        pytest.skip("no PostgreSQL server: set FACEWARDEN_TEST_PG_URL (.ci/run sets it)")
    url, admin = create_test_database(server, tmp_path)
    parsed = make_url(url)
    relay = Relay((parsed.host or "127.0.0.1", parsed.port or 5432))
    relayed = parsed.set(host="127.0.0.1", port=relay.port)
    try:
        app = _app(
            _settings(
                tmp_path / "var",
                relayed.render_as_string(hide_password=False),
                database_timeout_seconds=str(ANSWER_TIMEOUT),
            )
        )
        yield app, relay
        runtime_of(app).engine.dispose()
    finally:
        relay.close()
        drop_test_database(admin, url)


@OUTAGES
def test_a_database_outage_is_a_503_naming_it_and_the_service_recovers_by_itself(
    relayed_postgres: tuple[Flask, Relay], how: str, back: str
) -> None:
    app, relay = relayed_postgres
    client = app.test_client()
    admin = make_admin(app)
    assert _register(client)[0] == 202
    assert client.get("/readyz").status_code == 200
    calls = {
        "healthz": lambda c: c.get("/healthz"),
        "read": lambda c: c.get("/v1/accounts/me", headers=admin.headers),
        "register": lambda c: c.post("/v1/registrations", json=registration_body()),
    }

    # The connect and answer timeouts, not the operating system's (minutes) or none at all.
    with Load(app, calls, parts={"database-unavailable"}, within=WITHIN) as load:
        getattr(relay, how)()
        load.refused_since(time.monotonic())
        for _ in range(3):
            status, body, took = _register(client)
            assert status == 503, body
            assert body["type"] == "/problems/database-unavailable"
            assert "retry" in str(body["detail"]).lower()
            assert took < WITHIN
        readiness = client.get("/readyz")
        assert readiness.status_code == 503
        assert readiness.get_json()["checks"]["database"]["ok"] is False

        getattr(relay, back)()
        restored = time.monotonic()
        assert _register(client)[0] == 202  # no restart: the pool replaces dead connections
        load.served_since(restored, timeout=30)
        recovered = time.monotonic() - restored
    answers = load.check()
    assert client.get("/readyz").status_code == 200
    # Nothing of a refused request was kept: as many registrations as ledger entries.
    registered = 2 + sum(a.call == "register" and a.status == 202 for a in answers)
    assert _submitted(app) == (registered, registered)
    print(
        f"database {how}: {load.refused()} of {len(answers)} answers refused; "
        f"recovered {recovered:.2f} s after the restore"
    )


# -- a full disk under SQLite


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here (needs root): {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def _fill(disk: Path) -> Path:
    filler = disk / "filler"
    with filler.open("wb") as out:
        try:
            while True:
                out.write(b"\0" * 65536)
                out.flush()
        except OSError:
            pass
    return filler


def test_a_full_disk_is_a_503_and_nothing_is_half_written(small_disk: Path) -> None:
    if os.environ.get("FACEWARDEN_TEST_DATABASE_URL"):
        pytest.skip("a full disk is tested on the embedded SQLite database")
    settings = _settings(
        small_disk / "var", f"sqlite:///{small_disk / 'facewarden.db'}", min_free_disk_mb="1"
    )
    app = _app(settings)
    client = app.test_client()
    assert _register(client)[0] == 202
    assert client.get("/readyz").get_json()["checks"]["disk"]["ok"] is True

    filler = _fill(small_disk)
    refused = [_register(client) for _ in range(5)]
    assert {status for status, _, _ in refused} == {503}, refused
    body = refused[0][1]
    assert body["type"] == "/problems/database-unavailable"
    assert "disk is full" in str(body["detail"])
    readiness = client.get("/readyz")
    assert readiness.status_code == 503
    assert readiness.get_json()["checks"]["disk"]["ok"] is False

    filler.unlink()
    assert _register(client)[0] == 202
    assert client.get("/readyz").get_json()["checks"]["disk"]["ok"] is True
    assert _submitted(app) == (2, 2)
    runtime_of(app).engine.dispose()
