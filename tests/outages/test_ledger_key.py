"""The ledger signing key becomes unreadable under a running service: 503, nothing kept.

The key file is removed, overwritten with garbage, or replaced by a directory (what a lost
mount, a corrupted volume or a botched deployment leaves; as root, a chmod would not stop a
read), then put back.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from tests.api.bases import Team, approved, make_team
from tests.api.faces import dev_photos, enroll, variant
from tests.api.helpers import ledger_size, make_staff, problem, registration_body, runtime_of
from tests.api.test_searches import search
from tests.outages.load import Load, assert_no_partial_search
from tests.outages.test_database import embedded_app

pytestmark = pytest.mark.slow

WITHIN = 30  # no timeout is involved: the margin is for searches on a busy 2-core machine
RECOVERY_SECONDS = 10


def _removed(key: Path) -> None:
    key.unlink()


def _garbage(key: Path) -> None:
    key.write_bytes(b"-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n")


def _directory(key: Path) -> None:
    key.unlink()
    key.mkdir()


def _put_back(key: Path, saved: bytes) -> None:
    if key.is_dir():
        key.rmdir()
    tmp = key.with_name(key.name + ".restoring")
    tmp.write_bytes(saved)
    os.chmod(tmp, 0o600)
    os.replace(tmp, key)


@pytest.fixture(scope="module")
def searching(tmp_path_factory: pytest.TempPathFactory, shared_dir: Path) -> Iterator[Any]:
    home = tmp_path_factory.mktemp("instance")
    app = embedded_app(home)
    client = app.test_client()
    team: Team = make_team(app)
    curator = make_staff(client, team.admin, "curator")
    photos = dev_photos(shared_dir)["Orlando_Bloom"]
    assert enroll(client, curator, variant(photos[0])).status_code == 201
    basis = approved(client, app, team, max_searches=50)
    yield app, team, basis, photos[1].read_bytes()
    runtime_of(app).engine.dispose()
    shutil.rmtree(home, ignore_errors=True)


@pytest.mark.parametrize("break_key", [_removed, _garbage, _directory], ids=lambda f: f.__name__)
def test_an_unreadable_ledger_key_is_a_503_naming_it_nothing_is_kept_and_it_recovers(
    searching: tuple[Flask, Team, dict[str, Any], bytes], break_key: Callable[[Path], None]
) -> None:
    app, team, basis, probe = searching
    client = app.test_client()
    key = runtime_of(app).settings.ledger_key_path
    saved = key.read_bytes()
    assert search(client, team.inv, basis["id"], probe).status_code == 201
    calls = {
        "healthz": lambda c: c.get("/healthz"),
        "read": lambda c: c.get(f"/v1/legal-bases/{basis['id']}", headers=team.inv.headers),
        "search": lambda c: search(c, team.inv, basis["id"], probe),
    }

    with Load(app, calls, parts={"ledger-key-unavailable"}, within=WITHIN) as load:
        break_key(key)
        load.refused_since(time.monotonic())
        size = ledger_size(app)
        refused = [
            problem(search(client, team.inv, basis["id"], probe), 503),
            problem(client.post("/v1/registrations", json=registration_body()), 503),
        ]
        for body in refused:
            assert body["type"] == "/problems/ledger-key-unavailable"
            assert "FACEWARDEN_LEDGER_KEY_PATH" in str(body["detail"])
        assert ledger_size(app) == size  # nothing was recorded
        readiness = client.get("/readyz")
        assert readiness.status_code == 503
        assert readiness.get_json()["checks"]["ledger_key"]["ok"] is False

        _put_back(key, saved)
        restored = time.monotonic()
        load.served_since(restored, timeout=RECOVERY_SECONDS)
        recovered = time.monotonic() - restored
    answers = load.check()
    assert client.get("/readyz").status_code == 200
    assert search(client, team.inv, basis["id"], probe).status_code == 201
    used = assert_no_partial_search(app, basis["id"])
    print(
        f"ledger key {break_key.__name__}: {load.refused()} of {len(answers)} answers refused, "
        f"{used} searches spent and recorded; recovered {recovered:.2f} s after the key returned"
    )
