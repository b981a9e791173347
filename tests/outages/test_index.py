"""The Milvus server goes away under a running service: 503 naming it, nothing spent, recovery.

A real Milvus standalone server, reached through a relay the test cuts (every connection reset,
new ones refused: what the service sees when the server stops) or freezes (nothing answered: a
server that hangs), then restores.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask

from tests.api.bases import Team, approved, make_team
from tests.api.faces import dev_photos, enroll, variant
from tests.api.helpers import make_staff, problem, runtime_of
from tests.api.test_searches import search
from tests.milvus import milvus_server
from tests.outages.load import OUTAGES, Load, assert_no_partial_search
from tests.outages.relay import Relay
from tests.outages.test_database import embedded_app

pytestmark = [pytest.mark.slow, pytest.mark.milvus_server]

RECOVERY_SECONDS = 60  # gRPC's reconnection backoff, at most, once the server is back
TIMEOUT = 2  # FACEWARDEN_MILVUS_TIMEOUT_SECONDS in these tests
WITHIN = 30  # the longest a request may take: a search on a busy 2-core machine, with a margin


@pytest.fixture(scope="module")
def relayed(
    tmp_path_factory: pytest.TempPathFactory, shared_dir: Path
) -> Iterator[tuple[Flask, Relay]]:
    with milvus_server(tmp_path_factory.mktemp("milvus")) as uri:
        port = int(uri.rsplit(":", 1)[1])
        relay = Relay(("127.0.0.1", port))
        try:
            home = tmp_path_factory.mktemp("instance")
            app = embedded_app(
                home,
                milvus_uri=f"http://127.0.0.1:{relay.port}",
                milvus_timeout_seconds=str(TIMEOUT),
            )
            yield app, relay
            runtime_of(app).engine.dispose()
        finally:
            relay.close()


@OUTAGES
def test_an_index_outage_is_a_503_naming_it_nothing_is_spent_and_it_recovers(
    relayed: tuple[Flask, Relay], shared_dir: Path, how: str, back: str
) -> None:
    app, relay = relayed
    client = app.test_client()
    team: Team = make_team(app)
    curator = make_staff(client, team.admin, "curator")
    photos = dev_photos(shared_dir)["Orlando_Bloom"]
    assert enroll(client, curator, variant(photos[0])).status_code == 201
    basis = approved(client, app, team, max_searches=50)
    assert search(client, team.inv, basis["id"], photos[1].read_bytes()).status_code == 201
    probe = photos[2].read_bytes()
    calls = {
        "healthz": lambda c: c.get("/healthz"),
        "read": lambda c: c.get(f"/v1/legal-bases/{basis['id']}", headers=team.inv.headers),
        "search": lambda c: search(c, team.inv, basis["id"], probe),
    }

    # A reset connection fails a search at once, a frozen one after TIMEOUT; WITHIN leaves room
    # for a busy machine.
    with Load(app, calls, parts={"vector-index-unavailable"}, within=WITHIN, pause=0.5) as load:
        getattr(relay, how)()
        load.refused_since(time.monotonic())
        used = assert_no_partial_search(app, basis["id"])
        started = time.monotonic()
        body = problem(search(client, team.inv, basis["id"], probe), 503)
        took = time.monotonic() - started
        assert took < WITHIN
        assert body["type"] == "/problems/vector-index-unavailable"
        assert "candidates" not in body
        readiness = client.get("/readyz")
        assert readiness.status_code == 503
        assert readiness.get_json()["checks"]["vector_index"]["ok"] is False
        assert assert_no_partial_search(app, basis["id"]) == used  # refusals spent nothing

        getattr(relay, back)()
        restored = time.monotonic()
        while True:
            response = search(client, team.inv, basis["id"], probe)
            if response.status_code == 201:
                break
            assert response.status_code == 503, response.get_json()
            assert time.monotonic() - restored < RECOVERY_SECONDS, "no recovery without a restart"
            time.sleep(1)
        recovered = time.monotonic() - restored
        load.served_since(restored, timeout=RECOVERY_SECONDS)
    assert response.get_json()["candidates"]
    answers = load.check()
    assert client.get("/readyz").status_code == 200
    assert_no_partial_search(app, basis["id"])
    print(
        f"index {how}: refused in {took:.1f} s; {load.refused()} of {len(answers)} answers "
        f"refused; recovered {recovered:.1f} s after the restore"
    )
