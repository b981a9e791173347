"""Outages of a whole deployment under load: each part of ``deploy/run`` goes away and returns.

The crash harness's clients (searches, enrolments, reviews, legal-basis decisions) speak to the
deployment through nginx while, in turn, PostgreSQL, the Milvus server and Redis are stopped
with ``deploy/run stop --part`` and started again with ``start --part``, and the S3 store is
frozen (SIGSTOP to its process group: moto keeps its objects in memory, so a restarted stand-in
would be an empty bucket, which a real S3 never is) and thawed. For each part:

- every answer is a success, a refusal of the act itself (403, 409), or a 503 problem whose
  ``type`` names the part, in no more than the part's configured wait plus a margin: never a
  500, a 502 or 504 from nginx, or a 401 because the credentials could not be read;
- ``/readyz`` answers 503 with the part's check ``ok: false`` while it is away;
- the service serves the part's requests again by itself once the part is back (no restart);
- afterwards the crash harness's checks hold: every acknowledged search is in the ledger as its
  receipt says, every acknowledged enrolment is readable, each basis spent exactly its recorded
  searches, the doctor finds nothing left over, and the ledger verifies and audits clean.

``pytest -s`` prints each part's figures.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.api.faces import dev_photos
from tests.crash.harness import (
    Acts,
    Cast,
    DeployedInstance,
    Report,
    Traffic,
    check,
    people,
    unindexed_faces,
)
from tests.deploy.deployment import MISSING, Deployment, deployed

pytestmark = [
    pytest.mark.milvus_server,
    pytest.mark.models,
    pytest.mark.slow,
    pytest.mark.skipif(bool(MISSING), reason=f"the deployment needs {', '.join(MISSING)}"),
]

S3_TIMEOUT = 3  # FACEWARDEN_S3_TIMEOUT_SECONDS for these tests; three attempts per request
MARGIN = 5.0
RECOVERY_SECONDS = 90  # the longest a part's requests may take to succeed again, once it is back


@dataclass(frozen=True)
class Part:
    name: str  # deploy/run's
    how: str  # "stop" (deploy/run stop --part, start --part) or "freeze" (SIGSTOP, SIGCONT)
    problem: str  # the type of its 503s
    check: str  # its /readyz check
    needed_by: tuple[str, str]  # a request that needs it: method, path prefix
    within: float  # the longest an answer may take while it is away


PARTS = [
    Part("postgres", "stop", "database-unavailable", "database", ("POST", "/v1/searches"), 35),
    # While the server comes back, an enrolment can wait for more than one index call, each
    # bounded by FACEWARDEN_MILVUS_TIMEOUT_SECONDS (10 s): two of them, and a margin.
    Part(
        "milvus", "stop", "vector-index-unavailable", "vector_index", ("POST", "/v1/searches"), 25
    ),
    Part(
        "redis", "stop", "rate-limit-store-unavailable", "rate_limits", ("POST", "/v1/searches"), 7
    ),
    Part(
        "s3",
        "freeze",
        "service-unavailable",
        "photo_store",
        ("POST", "/v1/gallery/photos"),
        3 * S3_TIMEOUT + 8,
    ),
]


@dataclass(frozen=True)
class Answer:
    method: str
    path: str
    sent: float
    seconds: float
    status: int | None  # None: no answer (the connection failed)
    mimetype: str
    type: str | None


class Recorded(DeployedInstance):
    """The deployment, every answer it gives recorded."""

    def __init__(self, deployment: Deployment) -> None:
        super().__init__(deployment, {"FACEWARDEN_S3_TIMEOUT_SECONDS": str(S3_TIMEOUT)})
        self.answers: list[Answer] = []
        self._lock = threading.Lock()

    def call(
        self, method: str, path: str, token: str | None = None, **kw: Any
    ) -> requests.Response:
        sent = time.monotonic()
        try:
            response = super().call(method, path, token, **kw)
        except requests.RequestException:
            self._note(Answer(method, path, sent, time.monotonic() - sent, None, "", None))
            raise
        kind = None
        if response.headers.get("Content-Type", "").startswith("application/problem+json"):
            kind = response.json().get("type")
        mimetype = response.headers.get("Content-Type", "").split(";")[0]
        self._note(
            Answer(
                method, path, sent, time.monotonic() - sent, response.status_code, mimetype, kind
            )
        )
        return response

    def _note(self, answer: Answer) -> None:
        with self._lock:
            self.answers.append(answer)

    def since(self, moment: float) -> list[Answer]:
        with self._lock:
            return [a for a in self.answers if a.sent >= moment]


@dataclass
class World:
    inst: Recorded
    cast: Cast
    acts: Acts
    report: Report
    photos: list[Path]


@pytest.fixture(scope="module")
def world(shared_dir: Path) -> Iterator[World]:
    with deployed() as deployment:
        started = deployment.started
        assert started.returncode == 0, f"deploy/run start:\n{started.stdout}{started.stderr}"
        inst = Recorded(deployment)
        try:
            inst.start()
            inst.wait_ready()
            photos = [p for group in dev_photos(shared_dir).values() for p in group[:2]][:24]
            yield World(inst, people(inst), Acts(), Report(), photos)
        finally:
            inst.close()


def _until(what: str, condition: Any, seconds: float) -> float:
    """Wait for ``condition()`` to hold; the monotonic time it did."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return time.monotonic()
        time.sleep(0.2)
    raise AssertionError(f"{what}: not within {seconds} s")


def _ready_check(inst: Recorded, name: str) -> tuple[int, bool | None]:
    try:
        got = requests.get(f"{inst.url}/readyz", verify=inst.verify, timeout=30)
    except requests.RequestException:
        return 0, None
    checks = got.json().get("checks", {}) if got.status_code in (200, 503) else {}
    return got.status_code, checks.get(name, {}).get("ok")


def _switch(deployment: Deployment, part: Part, *, away: bool) -> None:
    """Take ``part`` away (``away``) or bring it back, as its ``how`` says."""
    if part.how == "freeze":
        os.killpg(_pid(deployment, part), signal.SIGSTOP if away else signal.SIGCONT)
        return
    done = deployment.run("stop" if away else "start", "--part", part.name)
    assert done.returncode == 0, done.stdout + done.stderr


def _pid(deployment: Deployment, part: Part) -> int:
    return int((deployment.directory / "run" / f"{part.name}.pid").read_text())


@pytest.mark.parametrize("part", PARTS, ids=[p.name for p in PARTS])
def test_a_part_that_goes_away_is_a_503_naming_it_and_the_deployment_recovers(
    world: World, part: Part
) -> None:
    inst = world.inst
    deployment = inst.deployment
    method, prefix = part.needed_by

    def served(since: float) -> bool:
        return any(
            a.method == method
            and a.path.startswith(prefix)
            and a.status is not None
            and a.status < 300
            for a in inst.since(since)
        )

    traffic = Traffic(inst, world.cast, world.acts, world.report, world.photos)
    began = time.monotonic()
    with traffic.running():
        _until(f"a {method} {prefix} served before the outage", lambda: served(began), 60)
        away = time.monotonic()
        _switch(deployment, part, away=True)
        try:
            gone = _until(
                f"/readyz names {part.check} while {part.name} is away",
                lambda: _ready_check(inst, part.check) == (503, False),
                60,
            )
            named = _until(
                f"a 503 {part.problem} while {part.name} is away",
                lambda: any(a.type == f"/problems/{part.problem}" for a in inst.since(away)),
                60,
            )
        finally:
            _switch(deployment, part, away=False)
        back = time.monotonic()
        recovered = _until(
            f"{method} {prefix} served again", lambda: served(back), RECOVERY_SECONDS
        )
        _until("/readyz ready again", lambda: _ready_check(inst, part.check) == (200, True), 60)
        # Enrolments acknowledged while the index was away have their vectors pending: the
        # sweep (FACEWARDEN_LEGAL_BASIS_SWEEP_SECONDS, 60 s, per worker) applies them in the
        # background, a batch at a time, while the service serves.
        applied = _until(
            "every acknowledged enrolment indexed", lambda: unindexed_faces(inst) == [], 180
        )
    print(
        f"\n{part.name} ({part.how}): /readyz named it after {gone - away:.2f} s, "
        f"the first 503 {part.problem} after {named - away:.2f} s; "
        f"{method} {prefix} served {recovered - back:.2f} s after it was back; every "
        f"acknowledged enrolment indexed {applied - back:.2f} s after it was back"
    )

    wrong = [
        a
        for a in inst.since(began)
        if not (
            (a.status is not None and (a.status < 300 or a.status in (403, 409)))
            or (
                a.status == 503
                and a.mimetype == "application/problem+json"
                and a.type == f"/problems/{part.problem}"
            )
            # A request cut off by the client's own patience is a hang: none may be.
        )
    ]
    assert wrong == [], f"answers outside the outage promise while {part.name} was away: {wrong}"
    slow = [a for a in inst.since(began) if a.seconds > part.within + MARGIN]
    assert slow == [], f"answers slower than {part.within + MARGIN} s: {slow}"

    report = world.report
    check(inst, world.cast, world.acts, report, trial=len(PARTS))
    assert report.violations == [], "\n".join(report.violations)
