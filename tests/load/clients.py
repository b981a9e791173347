"""The load profile's clients: the deployment's people, its legal bases, and the locust user.

The agency is tests/crash/harness.py's (its set-up helpers, spoken through nginx); each locust
client has an investigator of its own and a source address of its own, and cycles through
``figures.CYCLE``. Used by bench/load.py.
"""

from __future__ import annotations

import itertools
import math
import random
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.api.faces import dev_photos, variant
from tests.api.helpers import person
from tests.crash.harness import Instance, people
from tests.crash.harness import basis_body as harness_basis_body
from tests.deploy.deployment import Deployment
from tests.load.figures import CYCLE, Recorder

__all__ = [
    "BASIS_SEARCHES",
    "MAX_SEARCHES_PER_CLIENT",
    "Bases",
    "Cast",
    "Shared",
    "Target",
    "approve_basis",
    "baseline_searches",
    "client_class",
    "enrol_gallery",
    "provision",
    "unrecorded",
]

# Per credential and per account, the deployment allows 30 and 60 costly requests a minute
# (FACEWARDEN_SEARCH_RATE_LIMIT, FACEWARDEN_ACCOUNT_RATE_LIMIT): each investigator, and each
# curator shared by four clients, stays at 24 a minute at most.
MAX_SEARCHES_PER_CLIENT = 0.4  # per second
CLIENTS_PER_CURATOR = 4
BASIS_SEARCHES = 50  # FACEWARDEN_MAX_SEARCHES_PER_BASIS's default: each basis allows this many


class Target(Instance):
    """The deployment as tests/crash/harness.py's set-up helpers speak to an instance.

    Only the harness's HTTP, mail and CLI helpers: no database or index server of its own.
    Its requests verify against REQUESTS_CA_BUNDLE, the deployment's certificate.
    """

    def __init__(self, deployment: Deployment) -> None:  # not Instance's: nothing to start
        self.url = deployment.url
        self.home = deployment.directory
        self.data = deployment.directory / "data"
        self.env = deployment.process_env | deployment.settings
        self._addresses = iter(range(1, 1 << 24))


@dataclass
class Cast:
    """Who acts: the harness's cast, and the investigators and curators of the clients."""

    admin: str
    supervisors: tuple[str, str]
    investigators: list[str]
    curators: list[str]


def provision(target: Target, clients: int) -> Cast:
    """An agency (tests/crash/harness.py's), ``clients`` investigators, a curator per four."""
    cast = people(target)
    reason = {"reason": "checked with the prosecutor"}

    def claimed(path: str, email: str) -> str:
        key = target.ok("POST", f"{path}/claim", json={"claim_secret": target.secret(email)})
        return str(key["api_key"])

    investigators = [cast.investigator]
    while len(investigators) < clients:
        someone = person()
        asked = target.ok(
            "POST",
            "/v1/account-requests",
            cast.supervisor,
            json={"role": "investigator", "person": someone},
        )
        path = f"/v1/account-requests/{asked['id']}"
        target.ok("POST", f"{path}/approve", cast.admin, json=reason)
        investigators.append(claimed(path, someone["email"]))
    curators = [cast.curator]
    while len(curators) < math.ceil(clients / CLIENTS_PER_CURATOR):
        someone = person()
        staff = target.ok(
            "POST", "/v1/staff", cast.admin, json={"role": "curator", "person": someone}
        )
        curators.append(claimed(f"/v1/account-requests/{staff['id']}", someone["email"]))
    return Cast(cast.admin, (cast.supervisor, cast.supervisor2), investigators, curators)


def basis_body() -> dict[str, Any]:
    """The harness's legal basis, allowing as many searches as the policy does."""
    return harness_basis_body() | {"max_searches": BASIS_SEARCHES}


class Bases:
    """Approved legal bases with searches left; refilled, one basis at a time, when low."""

    def __init__(self, low: int) -> None:
        self.left: deque[list[Any]] = deque()  # [basis id, searches left]
        self.low = low
        self.refilling = False
        self.ids: list[str] = []

    def add(self, basis_id: str) -> None:
        self.left.append([basis_id, BASIS_SEARCHES])
        self.ids.append(basis_id)

    @property
    def remaining(self) -> int:
        return sum(n for _, n in self.left)

    def take(self) -> str | None:
        while self.left and self.left[0][1] == 0:
            self.left.popleft()
        if not self.left:
            return None
        self.left[0][1] -= 1
        return str(self.left[0][0])


@dataclass
class Shared:
    """What the clients share (greenlets of one process: no locks needed between switches)."""

    deployment: Deployment
    cast: Cast
    probes: list[bytes]
    gallery: list[Path]
    recorder: Recorder
    bases: Bases
    period: float = 1.0  # seconds per act, per client
    photos: list[str] = field(default_factory=list)
    reviews: deque[tuple[str, str, str]] = field(default_factory=deque)
    numbers: Iterator[int] = field(default_factory=itertools.count)


def _describe(response: Any) -> str:
    """A failed response as the problem it carries (status, type, detail)."""
    try:
        body = response.json()
        return f"{response.status_code} {body.get('type')} {body.get('detail')}"
    except ValueError:
        return f"{response.status_code} {response.text[:200]!r}"


def approve_basis(ok: Callable[..., Any], investigator: str, supervisor: str, bases: Bases) -> None:
    """Create a legal basis as ``investigator``; a second supervisor approves it."""
    created = ok("POST", "/v1/legal-bases", investigator, "basis: create", json=basis_body())
    ok(
        "POST",
        f"/v1/legal-bases/{created['id']}/approve",
        supervisor,
        "basis: approve",
        json={"reason": "warrant checked"},
    )
    bases.add(created["id"])


def client_class(shared: Shared) -> type:
    """The locust user: one investigator, one source address, the acts of CYCLE in turn."""
    from locust import HttpUser, constant_pacing, task
    from requests.adapters import HTTPAdapter

    class Client(HttpUser):
        host = shared.deployment.url

        def wait_time(self) -> float:
            return constant_pacing(shared.period)(self)

        def on_start(self) -> None:
            number = next(shared.numbers)
            self.investigator = shared.cast.investigators[number % len(shared.cast.investigators)]
            curators = shared.cast.curators
            self.curator = curators[number // CLIENTS_PER_CURATOR % len(curators)]
            self.acts = itertools.islice(itertools.cycle(CYCLE), number % len(CYCLE), None)
            self.searches: deque[str] = deque(maxlen=10)
            self.client.verify = shared.deployment.cert
            # Its own address: nginx's per-address connection limit is for one client.
            adapter = HTTPAdapter(pool_connections=1, pool_maxsize=1)
            adapter.init_poolmanager(1, 1, source_address=(f"127.0.2.{number % 250 + 1}", 0))
            self.client.mount("https://", adapter)

        def ok(self, method: str, path: str, token: str, kind: str, **kw: Any) -> dict[str, Any]:
            """One request, recorded as ``kind``; raises RuntimeError when it fails."""
            started = time.perf_counter()
            try:
                response = self.client.request(
                    method,
                    path,
                    name=kind,
                    headers={"Authorization": f"Bearer {token}"},
                    timeout=120,
                    catch_response=True,
                    **kw,
                )
            except Exception as exc:
                shared.recorder.add(kind, time.perf_counter() - started, repr(exc))
                raise RuntimeError(kind) from exc
            seconds = time.perf_counter() - started
            with response:
                failed = response.status_code >= 300
                if failed:
                    response.failure(f"HTTP {response.status_code}")
            if failed:
                shared.recorder.add(kind, seconds, _describe(response))
                raise RuntimeError(kind)
            shared.recorder.add(kind, seconds)
            body: dict[str, Any] = response.json()
            return body

        @task
        def act(self) -> None:
            with suppress(RuntimeError):  # a failed request, already recorded
                getattr(self, next(self.acts))()

        def search(self) -> None:
            bases = shared.bases
            if bases.remaining <= bases.low and not bases.refilling:
                bases.refilling = True
                try:
                    approve_basis(self.ok, self.investigator, shared.cast.supervisors[1], bases)
                finally:
                    bases.refilling = False
            basis = bases.take()
            while basis is None:  # another client is refilling
                time.sleep(0.05)
                basis = bases.take()
            answer = self.ok(
                "POST",
                "/v1/searches",
                self.investigator,
                "search",
                files={"image": ("probe.jpg", random.choice(shared.probes), "image/jpeg")},
                data={"legal_basis_id": basis, "purpose": "identify the abductor", "top_k": "3"},
            )
            self.searches.append(answer["id"])
            for candidate in answer["candidates"][:1]:
                for supervisor in shared.cast.supervisors:
                    shared.reviews.append((answer["id"], candidate["face_id"], supervisor))

        def review(self) -> None:
            if not shared.reviews:
                self.read()
                return
            search_id, face_id, supervisor = shared.reviews.popleft()
            self.ok(
                "POST",
                f"/v1/searches/{search_id}/reviews",
                supervisor,
                "review",
                json={
                    "reviews": [{"face_id": face_id, "verdict": "possible_match", "note": "scar"}]
                },
            )

        def read(self) -> None:
            which = random.randrange(3)
            if which == 0 and self.searches:
                self.ok("GET", f"/v1/searches/{self.searches[-1]}", self.investigator, "read")
            elif which == 1 and shared.photos:
                photo = random.choice(shared.photos)
                self.ok("GET", f"/v1/gallery/photos/{photo}", self.curator, "read")
            else:
                basis = random.choice(shared.bases.ids)
                self.ok("GET", f"/v1/legal-bases/{basis}", self.investigator, "read")

        def enrolment(self) -> None:
            photo = self.ok(
                "POST",
                "/v1/gallery/photos",
                self.curator,
                "enrolment",
                files={"image": ("photo.png", variant(random.choice(shared.gallery)), "image/png")},
                data={
                    "source_url": f"https://photos.example.org/p/{random.getrandbits(40)}.jpg",
                    "collected_at": "2026-01-15T10:00:00Z",
                    "collection_basis": "public_record",
                },
            )
            shared.photos.append(photo["id"])

    return Client


def enrol_gallery(
    target: Target, cast: Cast, shared_dir: Path, identities: int
) -> tuple[list[str], list[bytes], list[Path]]:
    """Two photos of each of ``identities`` people into the gallery; a third of each is a probe.

    Returns the photo ids, the probes, and the photos the clients enrol variants of: those
    enrolled here, in which the service found a face (some dev photos are too small for it).
    """
    import gevent.pool

    groups = [g for g in dev_photos(shared_dir).values() if len(g) >= 3][:identities]
    jobs = [(n, path) for n, group in enumerate(groups) for path in group[:2]]

    def enrol(job: tuple[int, Path]) -> str:
        n, path = job
        photo = target.ok(
            "POST",
            "/v1/gallery/photos",
            cast.curators[n % len(cast.curators)],
            files={"image": (path.name, path.read_bytes(), "image/jpeg")},
            data={
                "source_url": f"https://photos.example.org/p/{path.stem}.jpg",
                "collected_at": "2026-01-15T10:00:00Z",
                "collection_basis": "public_record",
            },
        )
        return str(photo["id"])

    ids = list(gevent.pool.Pool(4).imap_unordered(enrol, jobs))
    return ids, [g[2].read_bytes() for g in groups], [path for _, path in jobs]


def baseline_searches(
    target: Target, cast: Cast, probes: list[bytes], bases: Bases
) -> tuple[list[float], list[bytes]]:
    """One search at a time, each probe once, each by the next investigator: the seconds of
    each, and the probes the service searched with (the others are left out of the run)."""
    times, kept = [], []
    for n, probe in enumerate(probes):
        if bases.remaining < 2:
            approve_basis(unrecorded(target), cast.investigators[0], cast.supervisors[1], bases)
        started = time.perf_counter()
        response = target.call(
            "POST",
            "/v1/searches",
            cast.investigators[n % len(cast.investigators)],
            files={"image": ("probe.jpg", probe, "image/jpeg")},
            data={"legal_basis_id": bases.take(), "purpose": "baseline", "top_k": "3"},
        )
        if response.status_code < 300:
            times.append(time.perf_counter() - started)
            kept.append(probe)
    return times, kept


def unrecorded(target: Target) -> Callable[..., Any]:
    """``target.ok`` with the (unrecorded) kind argument of the clients' ``ok``."""

    def ok(method: str, path: str, token: str, _kind: str, **kw: Any) -> Any:
        return target.ok(method, path, token, **kw)

    return ok
