"""Crash consistency: a real ``facewarden serve --http --workers 2`` killed at random under load.

Client threads search, enrol, review and decide legal bases while, at a random moment, one
worker or the whole process group gets SIGKILL. The server replaces a killed worker by itself
(a worker is not killed more often than ``api.server.RESPAWN_LIMIT`` allows: more is a crash
loop, which stops the server), and a killed server is started again. No act starts after the
kill. Once ``/readyz`` answers, the instance is checked against what the clients were told:

- every acknowledged search (2xx with a receipt) is in the ledger: its receipt verifies, the
  exported log holds its entry at its seq, and the log's prefix of the receipt's tree size has
  the receipt checkpoint's root (the current log is consistent with the receipt);
- every acknowledged enrolment can be read, and the index holds every face the rows name;
- an act that was not acknowledged leaves no trace ``facewarden doctor --repair --grace 0``
  does not find and remove, after which the doctor finds nothing;
- each legal basis's ``searches_used`` is the number of its ``search:run`` entries;
- the whole ledger verifies and audits clean (``facewarden ledger export`` and
  ``facewarden-verify bundle`` and ``audit``).

The ledger and every receipt are checked after every trial. The reads of enrolments, reviews
and bases cover, after most trials, those that acts reached since the trial before, and every
one acknowledged so far after each ``full_every``-th trial and the last.

The vectors live in a ``biometrics.index_server`` process of their own, which is not killed:
the index stands for the Milvus server of a deployment. ``run_trials(deploy=True)`` runs the
same trials against a whole ``deploy/run`` deployment instead (``DeployedInstance``): nginx,
PostgreSQL under the restricted role, the Milvus server, Redis and S3 stay up while ``serve``
is killed.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager, redirect_stderr, redirect_stdout, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from io import StringIO
from pathlib import Path
from typing import Any

import requests

from api.server import RESPAWN_LIMIT, RESPAWN_WINDOW
from tests.api.faces import dev_photos, variant
from tests.api.helpers import person, registration_body
from tests.api.served import free_port, worker_pids
from tests.conftest import (
    REPO,
    create_test_database,
    drop_test_database,
    ensure_starter_pack,
    models_dir_for_tests,
)
from tests.deploy.deployment import Deployment, deployed, read_env

__all__ = [
    "Acts",
    "Cast",
    "DeployedInstance",
    "Instance",
    "Report",
    "Traffic",
    "basis_body",
    "check",
    "instance",
    "people",
    "run_trials",
    "unindexed_faces",
]

READY_SECONDS = 120
SERVE = [sys.executable, "-m", "api.cli", "serve", "--http", "--workers", "2"]
JUSTIFICATION = (
    "The victim was abducted on 2026-11-20; CCTV stills of the suspect must be compared "
    "with the gallery to identify him before the ransom deadline."
)


@dataclass
class Report:
    """What the trials did and found."""

    trials: int = 0
    acknowledged: Counter[str] = field(default_factory=Counter)
    attempted: Counter[str] = field(default_factory=Counter)
    kills: Counter[str] = field(default_factory=Counter)
    recoveries: list[float] = field(default_factory=list)
    checks: list[float] = field(default_factory=list)  # seconds the checks of each trial took
    full_checks: int = 0  # trials whose checks read back every act acknowledged so far
    repaired: Counter[str] = field(default_factory=Counter)
    violations: list[str] = field(default_factory=list)
    clean_restart: float | None = None  # SIGTERM -> ready, with no load: the baseline

    @property
    def median_recovery(self) -> float:
        return statistics.median(self.recoveries) if self.recoveries else float("nan")

    def rows(self) -> list[tuple[str, str]]:
        """The report as (what, value) rows."""
        rows = [("trials", str(self.trials))]
        rows += [(f"kills: {k}", str(n)) for k, n in sorted(self.kills.items())]
        for kind in sorted(self.attempted):
            rows.append(
                (
                    f"{kind}: acknowledged / attempted",
                    f"{self.acknowledged[kind]} / {self.attempted[kind]}",
                )
            )
        rows += [(f"doctor repaired: {k}", str(n)) for k, n in sorted(self.repaired.items())]
        if self.recoveries:
            ordered = sorted(self.recoveries)
            rows.append(("recovery (kill -> ready) median s", f"{self.median_recovery:.2f}"))
            rows.append(("recovery max s", f"{ordered[-1]:.2f}"))
        if self.checks:
            rows.append(("checks per trial median s", f"{statistics.median(self.checks):.2f}"))
            rows.append(("trials that re-read every act", str(self.full_checks)))
        if self.clean_restart is not None:
            rows.append(
                ("baseline: clean restart (SIGTERM -> ready) s", f"{self.clean_restart:.2f}")
            )
        rows.append(("violations", str(len(self.violations))))
        return rows


@dataclass
class Acts:
    """What the server acknowledged, over all trials."""

    searches: dict[str, dict[str, Any]] = field(default_factory=dict)  # id -> answer
    photos: dict[str, list[str]] = field(default_factory=dict)  # photo id -> face ids
    bases: list[str] = field(default_factory=list)  # approved, usable
    created_bases: set[str] = field(default_factory=set)
    reviews: dict[tuple[str, str], set[str]] = field(default_factory=dict)  # -> reviewers
    lock: threading.Lock = field(default_factory=threading.Lock)
    # What the checks saw of the acts before, so that a trial need not re-read them all.
    checked_photos: int = 0  # acts.photos is in acknowledgement order: the first n were read
    changed_reviews: set[tuple[str, str]] = field(default_factory=set)  # since the last check
    touched_bases: set[str] = field(default_factory=set)  # searched or created since then
    heads: dict[str, tuple[int, bytes]] = field(default_factory=dict)  # search -> its checkpoint


class Instance:
    """A data directory, a database, an index server and the served API on it."""

    verify: str | bool = True  # what requests checks the server's certificate with

    def __init__(self, home: Path, database_url: str | None) -> None:
        from biometrics.index_server import IndexServer

        models = models_dir_for_tests()
        ensure_starter_pack(models)
        self.home = home
        self.database_url, self._admin_engine = create_test_database(database_url, home)
        self.index = IndexServer(home / "index" / "gallery.db", port=free_port())
        address = self.index.start()
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.data = home / "var"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("FACEWARDEN_")}
        self.env |= {
            "PYTHONPATH": str(REPO),
            "FACEWARDEN_DATA_DIR": str(self.data),
            "FACEWARDEN_DATABASE_URL": self.database_url,
            "FACEWARDEN_MODELS_DIR": str(models),
            "FACEWARDEN_MILVUS_URI": address.uri,
            "FACEWARDEN_TRUSTED_PROXIES": "127.0.0.1",
        }
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = home / "serve.log"
        self._addresses = iter(range(1, 1 << 24))
        self.cli("init", "--no-tls")

    # -- processes

    def cli(self, *args: str) -> str:
        run = subprocess.run(
            [sys.executable, "-m", "api.cli", *args],
            cwd=self.home,
            env=self.env,
            capture_output=True,
            text=True,
            check=False,
        )
        if run.returncode != 0:
            raise AssertionError(f"facewarden {' '.join(args)}: {run.stdout}{run.stderr}")
        return run.stdout

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [*SERVE, "--port", str(self.port)],
                cwd=self.home,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group, to kill whole
            )

    def wait_ready(self) -> None:
        deadline = time.monotonic() + READY_SECONDS
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(f"the server stopped:\n{self.log.read_text()[-4000:]}")
            try:
                ready = requests.get(f"{self.url}/readyz", timeout=15, verify=self.verify)
                if ready.status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.05)
        raise AssertionError(f"not ready in {READY_SECONDS} s:\n{self.log.read_text()[-4000:]}")

    def workers(self) -> list[int]:
        assert self.proc is not None
        return worker_pids(self.proc.pid)

    def replaced(self, killed: int, since: int, timeout: float = READY_SECONDS) -> None:
        """Wait until a new worker, in place of ``killed``, serves and ``/readyz`` answers.

        ``since``: the log's size before the kill; only what was logged after it is read.
        """
        deadline = time.monotonic() + timeout
        with self.log.open("rb") as log:
            log.seek(since)
            after = b""
            while time.monotonic() < deadline:
                assert self.proc is not None
                if self.proc.poll() is not None:
                    raise AssertionError(f"the server stopped:\n{self.log.read_text()[-4000:]}")
                after += log.read()
                died = after.rfind(f"worker {killed} died".encode())
                if died >= 0 and b"Running on" in after[died:] and killed not in self.workers():
                    self.wait_ready()
                    return
                time.sleep(0.02)
        raise AssertionError(f"worker {killed} not replaced in {timeout} s")

    def kill(self, what: str) -> int | None:
        """SIGKILL one worker (``worker``: return its pid) or the process group (``server``)."""
        assert self.proc is not None
        if what == "worker":
            workers = self.workers()
            if workers:
                victim = random.choice(workers)
                os.kill(victim, signal.SIGKILL)
                return victim
        os.killpg(self.proc.pid, signal.SIGKILL)
        return None

    def down(self, timeout: float = 30) -> None:
        """Wait for the server to stop, then clear its group."""
        assert self.proc is not None
        with suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout)
        with suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        """Stop the server as an operator does (SIGTERM to the parent)."""
        assert self.proc is not None
        self.proc.terminate()
        self.down()

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            with suppress(subprocess.TimeoutExpired):
                self.proc.wait(30)
            self.down(0)
        self.index.stop()
        drop_test_database(self._admin_engine, self.database_url)

    # -- HTTP

    def call(
        self, method: str, path: str, token: str | None = None, **kw: Any
    ) -> requests.Response:
        headers = {"X-Forwarded-For": self._address()}  # so no address meets its rate limit
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return requests.request(
            method, self.url + path, headers=headers, timeout=60, verify=self.verify, **kw
        )

    def _address(self) -> str:
        n = next(self._addresses)
        return f"10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}"

    def ok(self, method: str, path: str, token: str | None = None, **kw: Any) -> dict[str, Any]:
        response = self.call(method, path, token, **kw)
        assert response.status_code < 300, (method, path, response.status_code, response.text)
        body: dict[str, Any] = response.json()
        return body

    def secret(self, address: str) -> str:
        outbox = self.data / "mail" / "outbox"
        for path in sorted(outbox.glob("*.eml"), key=lambda p: p.stat().st_mtime, reverse=True):
            message = message_from_bytes(path.read_bytes(), policy=policy.default)
            if message["To"] == address:
                body = message.get_body(("plain",))
                assert body is not None
                found = re.search(r"^Claim secret: (\S+)", body.get_content(), re.M)
                assert found is not None
                return found.group(1)
        raise AssertionError(f"no mail to {address}")


@dataclass(frozen=True)
class Cast:
    admin: str
    supervisor: str
    supervisor2: str
    investigator: str
    curator: str


def people(inst: Instance) -> Cast:
    """An agency with two supervisors and an investigator, and a gallery curator, over HTTP."""
    admin = inst.cli("admin", "create", "--email", "admin@example.org", "--name", "Ada Admin")
    admin = admin.strip().splitlines()[-1]
    reason = {"reason": "checked with the prosecutor"}
    body = registration_body()
    rid = inst.ok("POST", "/v1/registrations", json=body)["id"]
    inst.ok("POST", f"/v1/registrations/{rid}/approve", admin, json=reason)
    claim = {"claim_secret": inst.secret(body["contact"]["email"])}
    supervisor = inst.ok("POST", f"/v1/registrations/{rid}/claim", json=claim)["api_key"]

    def account(role: str) -> str:
        someone = person()
        asked = inst.ok(
            "POST", "/v1/account-requests", supervisor, json={"role": role, "person": someone}
        )
        path = f"/v1/account-requests/{asked['id']}"
        inst.ok("POST", f"{path}/approve", admin, json=reason)
        claim = {"claim_secret": inst.secret(someone["email"])}
        return str(inst.ok("POST", f"{path}/claim", json=claim)["api_key"])

    supervisor2, investigator = account("supervisor"), account("investigator")
    someone = person()
    staff = inst.ok("POST", "/v1/staff", admin, json={"role": "curator", "person": someone})
    claim = {"claim_secret": inst.secret(someone["email"])}
    curator = inst.ok("POST", f"/v1/account-requests/{staff['id']}/claim", json=claim)["api_key"]
    return Cast(admin, supervisor, supervisor2, investigator, str(curator))


def basis_body() -> dict[str, Any]:
    now = datetime.now(UTC)
    return {
        "case_number": "PJ-LYON-2026-00417",
        "offence_category": "kidnapping_hostage_taking",
        "legal_provision": "Code de procédure pénale, art. 706-96",
        "authorisation": {
            "kind": "judicial",
            "reference": "JLD-2026-1187",
            "authority": "Tribunal judiciaire de Lyon",
            "issued_at": (now - timedelta(hours=1)).isoformat(),
            "expires_at": (now + timedelta(days=3)).isoformat(),
        },
        "justification": JUSTIFICATION,
        "max_searches": 10,
    }


class Traffic:
    """The client threads of one trial; each act counts as attempted, then as acknowledged."""

    def __init__(
        self, inst: Instance, cast: Cast, acts: Acts, report: Report, photos: list[Path]
    ) -> None:
        self.inst, self.cast, self.acts, self.report = inst, cast, acts, report
        self.photos = photos
        self.stop = threading.Event()
        self._count = threading.Lock()

    def _attempt(self, kind: str) -> None:
        with self._count:
            self.report.attempted[kind] += 1

    def _ack(self, kind: str) -> None:
        with self._count:
            self.report.acknowledged[kind] += 1

    def _loop(self, act: Callable[[], None]) -> None:
        while not self.stop.is_set():
            try:
                act()
            except (requests.RequestException, ValueError):
                time.sleep(0.02)  # the server is going down: not acknowledged

    def search(self) -> None:
        with self.acts.lock:
            bases = list(self.acts.bases[-3:])
        if not bases:
            time.sleep(0.05)
            return
        basis = random.choice(bases)
        probe = random.choice(self.photos)
        with self.acts.lock:  # an unacknowledged search may still have spent the quota
            self.acts.touched_bases.add(basis)
        self._attempt("search")
        response = self.inst.call(
            "POST",
            "/v1/searches",
            self.cast.investigator,
            files={"image": ("probe.jpg", probe.read_bytes(), "image/jpeg")},
            data={"legal_basis_id": basis, "purpose": "identify the abductor", "top_k": "3"},
        )
        if response.status_code < 300:
            answer = response.json()
            assert "receipt" in answer, answer
            with self.acts.lock:
                self.acts.searches[answer["id"]] = answer
            self._ack("search")
        elif response.status_code == 403:  # the basis is spent: take it out of the pool
            with self.acts.lock:
                if basis in self.acts.bases:
                    self.acts.bases.remove(basis)

    def enrol(self) -> None:
        self._attempt("enrolment")
        response = self.inst.call(
            "POST",
            "/v1/gallery/photos",
            self.cast.curator,
            files={"image": ("photo.png", variant(random.choice(self.photos)), "image/png")},
            data={
                "source_url": f"https://photos.example.org/p/{random.getrandbits(40)}.jpg",
                "collected_at": "2026-01-15T10:00:00Z",
                "collection_basis": "public_record",
            },
        )
        if response.status_code < 300:
            photo = response.json()
            with self.acts.lock:
                self.acts.photos[photo["id"]] = [f["id"] for f in photo["faces"]]
            self._ack("enrolment")

    def review(self) -> None:
        with self.acts.lock:
            pending = [
                (sid, c["face_id"])
                for sid, answer in list(self.acts.searches.items())[-20:]
                for c in answer["candidates"][:1]
            ]
        if not pending:
            time.sleep(0.05)
            return
        search_id, face_id = random.choice(pending)
        reviewer = random.choice([self.cast.supervisor, self.cast.supervisor2])
        self._attempt("review")
        response = self.inst.call(
            "POST",
            f"/v1/searches/{search_id}/reviews",
            reviewer,
            json={"reviews": [{"face_id": face_id, "verdict": "possible_match", "note": "scar"}]},
        )
        if response.status_code < 300:
            with self.acts.lock:
                self.acts.reviews.setdefault((search_id, face_id), set()).add(reviewer)
                self.acts.changed_reviews.add((search_id, face_id))
            self._ack("review")

    def decide(self) -> None:
        self._attempt("basis decision")
        created = self.inst.call(
            "POST", "/v1/legal-bases", self.cast.investigator, json=basis_body()
        )
        if created.status_code >= 300:
            return
        basis = created.json()["id"]
        with self.acts.lock:
            self.acts.created_bases.add(basis)
            self.acts.touched_bases.add(basis)
        approved = self.inst.call(
            "POST",
            f"/v1/legal-bases/{basis}/approve",
            self.cast.supervisor2,
            json={"reason": "warrant checked"},
        )
        if approved.status_code < 300:
            with self.acts.lock:
                self.acts.bases.append(basis)
            self._ack("basis decision")
        time.sleep(0.2)

    @contextmanager
    def running(self) -> Iterator[None]:
        threads = [
            threading.Thread(target=self._loop, args=(act,), daemon=True)
            for act in (self.search, self.search, self.enrol, self.review, self.decide)
        ]
        for thread in threads:
            thread.start()
        try:
            yield
        finally:
            self.stop.set()
            for thread in threads:
                thread.join(90)
            # The checks read the acts without the lock: no client may still be adding to them.
            stuck = [t.name for t in threads if t.is_alive()]
            assert not stuck, f"client threads still running after 90 s: {stuck}"


def _in_process(args: list[str], env: dict[str, str]) -> tuple[int, str]:
    """``facewarden ARGS`` in this process (no interpreter start-up per check)."""
    from click.testing import CliRunner

    from api.cli import cli

    result = CliRunner().invoke(cli, args, env=env)
    # A command that failed before it printed anything: what it said on stderr.
    return result.exit_code, result.stdout or result.output


def unindexed_faces(inst: Instance) -> list[str] | None:
    """The face rows the doctor finds without a vector (None when it cannot tell)."""
    _code, out = _in_process(["doctor", "--json"], inst.env)
    try:
        return list(json.loads(out)["findings"]["unindexed_faces"])
    except (ValueError, KeyError):
        return None


def check(
    inst: Instance, cast: Cast, acts: Acts, report: Report, trial: int, *, full: bool = True
) -> None:
    """The invariants, on the restarted, idle instance; violations go to the report.

    The ledger is checked whole every time: it is verified and audited, and every
    acknowledged search's checkpoint has the root of the current log's prefix of its size.
    Without ``full``, only the enrolments, reviews and bases that acts reached since the last
    check are read back through the API (the reads grow with the acts, and a full run of
    them would soon cost more than the trial); with it, all of them are.
    """
    from ledger.checkpoint import open_note, parse_checkpoint, parse_verifier_key
    from ledger.cli import main as verify_main
    from ledger.hashing import leaf_hash
    from ledger.proofs import MemoryTree
    from ledger.receipt import verify_receipt

    def violated(what: str) -> None:
        report.violations.append(f"trial {trial}: {what}")

    env = inst.env
    photos = list(acts.photos.items())[0 if full else acts.checked_photos :]
    reviews = list(acts.reviews) if full else sorted(acts.changed_reviews)
    bases = sorted(acts.created_bases if full else acts.touched_bases & acts.created_bases)
    acts.checked_photos = len(acts.photos)
    acts.changed_reviews, acts.touched_bases = set(), set()
    # Enrolments: readable, and (the doctor, below) every face row has its vector.
    for photo_id, faces in photos:
        got = inst.call("GET", f"/v1/gallery/photos/{photo_id}", cast.curator)
        if got.status_code != 200:
            violated(f"enrolled photo {photo_id} answers {got.status_code}")
        elif sorted(f["id"] for f in got.json()["faces"]) != sorted(faces):
            violated(f"enrolled photo {photo_id} lost faces")
    # Reviews: each acknowledged vote is counted.
    for search_id, face_id in reviews:
        reviewers = acts.reviews[search_id, face_id]
        answer = inst.ok("GET", f"/v1/searches/{search_id}", cast.investigator)
        seen = {c["face_id"]: c for c in answer["candidates"]}
        if seen.get(face_id, {}).get("possible_match_votes", 0) < len(reviewers):
            violated(
                f"{search_id}/{face_id}: {len(reviewers)} reviews acknowledged, {seen.get(face_id)}"
            )
    code, out = _in_process(["doctor", "--json"], env)
    try:
        findings = json.loads(out)["findings"]
    except (ValueError, KeyError):
        violated(f"doctor --json failed (exit {code}): {out.strip()}")
        return
    if findings["unindexed_faces"]:
        violated(f"faces without vectors after restart: {findings['unindexed_faces']}")
    if findings["rows_without_files"]:
        violated(f"rows whose file is missing: {findings['rows_without_files']}")
    for kind in ("vectors_without_rows", "files_without_rows", "stale_temporary_files"):
        report.repaired[kind] += len(findings[kind])
    if code != 0:
        code, out = _in_process(["doctor", "--repair", "--grace", "0", "--json"], env)
        if code != 0:
            violated(f"doctor --repair failed: {out}")
        code, out = _in_process(["doctor", "--json"], env)
        if code != 0:
            violated(f"doctor not clean after repair: {out}")
    # The ledger: exported, verified, audited; each receipt is in it.
    key = _in_process(["ledger", "key"], env)[1].strip()
    bundle = inst.home / f"bundle-{trial}"
    code, out = _in_process(["ledger", "export", str(bundle)], env)
    if code != 0:
        violated(f"ledger export: {out}")
        return
    # ``audit`` verifies the whole log against the key first (as ``facewarden-verify bundle``
    # does: signatures, chain, roots), then audits the verified entries.
    with redirect_stdout(StringIO()) as said, redirect_stderr(StringIO()) as complained:
        if verify_main(["audit", "bundle", str(bundle), "--key", key]) != 0:
            violated(
                "the bundle does not verify or audit clean: "
                f"{said.getvalue()}{complained.getvalue()}"
            )
    lines = (bundle / "entries.jsonl").read_bytes().splitlines()
    leaves = [leaf_hash(line) for line in lines]
    runs: Counter[str] = Counter()
    for line in lines:
        entry = json.loads(line)
        if entry["type"] == "search:run":
            runs[entry["payload"]["legal_basis_id"]] += 1
    tree = MemoryTree(leaves)
    verifier = [parse_verifier_key(key)]
    for search_id, answer in list(acts.searches.items()):
        receipt = answer["receipt"]
        if search_id not in acts.heads:  # its signatures, once
            try:
                verify_receipt(receipt, [key])
            except Exception as exc:  # any failure is the finding
                violated(f"receipt of {search_id}: {exc}")
                continue
            signed = parse_checkpoint(open_note(receipt["checkpoint"], verifier)[0])
            acts.heads[search_id] = (signed.size, signed.root)
        seq = receipt["seq"]
        if seq >= len(lines) or leaves[seq].hex() != receipt["leaf_hash"]:
            violated(f"search {search_id}: entry {seq} is not the receipt's")
            continue
        # The current log's first tree_size leaves have the receipt checkpoint's root.
        size, root = acts.heads[search_id]
        if size > tree.size or tree.root(size) != root:
            violated(f"search {search_id}: the log is not consistent with its checkpoint")
    for basis in bases:
        used = inst.ok("GET", f"/v1/legal-bases/{basis}", cast.investigator)["searches_used"]
        if used != runs[basis]:
            violated(f"basis {basis}: searches_used {used}, search:run entries {runs[basis]}")
    shutil.rmtree(bundle)


class DeployedInstance(Instance):
    """A ``deploy/run`` deployment whose ``serve`` the trials kill and start again.

    nginx, PostgreSQL (the application under its restricted role), the Milvus server, Redis
    and the S3 store stay up. The trials take ``serve`` over from ``deploy/run``: its own is
    stopped, and the same command on the same settings is started in its place, its pid noted
    where ``deploy/run stop`` looks. Requests go through nginx over TLS, so every client is
    127.0.0.1 to the rate limits: the per-credential and per-account limits are raised for the
    trials, which would otherwise spend them in a minute.
    """

    def __init__(  # not Instance's: deploy/run made it
        self, deployment: Deployment, settings: dict[str, str] | None = None
    ) -> None:
        self.deployment = deployment
        self.home = deployment.directory
        self.data = self.home / "data"
        self.url = deployment.url
        self.verify = deployment.cert
        self.port = int(read_env(self.home / "deploy.conf")["SERVE_PORT"])
        self.env = deployment.process_env | deployment.settings
        self.env |= {
            "FACEWARDEN_SEARCH_RATE_LIMIT": "100000 per minute",
            "FACEWARDEN_ACCOUNT_RATE_LIMIT": "100000 per minute",
        }
        self.env |= settings or {}
        self.log = self.home / "logs" / "serve.log"
        self.proc = None
        self._addresses = iter(range(1, 1 << 24))
        self._pidfile = self.home / "run" / "serve.pid"
        theirs = int(self._pidfile.read_text())
        os.kill(theirs, signal.SIGTERM)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and _alive(theirs):
            time.sleep(0.1)
        with suppress(ProcessLookupError):
            os.killpg(theirs, signal.SIGKILL)

    def start(self) -> None:
        super().start()
        assert self.proc is not None
        self._pidfile.write_text(f"{self.proc.pid}\n")

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.stop()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@contextmanager
def instance(home: Path, database_url: str | None, *, deploy: bool = False) -> Iterator[Instance]:
    """An instance on its own database and index server, or (``deploy``) a whole deployment."""
    if deploy:
        with deployed() as deployment:
            started = deployment.started
            assert started.returncode == 0, f"deploy/run start:\n{started.stdout}{started.stderr}"
            inst: Instance = DeployedInstance(deployment)
            try:
                yield inst
            finally:
                inst.close()
        return
    inst = Instance(home, database_url)
    try:
        yield inst
    finally:
        inst.close()


def run_trials(
    home: Path,
    photos_dir: Path,
    *,
    trials: int,
    database_url: str | None = None,
    deploy: bool = False,
    traffic_seconds: tuple[float, float] = (0.5, 1.5),
    seed: int | None = None,
    baseline: bool = False,
    full_every: int = 10,
    progress: Callable[[str], None] = lambda _line: None,
) -> Report:
    """``trials`` kills under load, each followed by a restart and the checks.

    ``deploy``: against a ``deploy/run`` deployment (``DeployedInstance``), not an instance
    on ``database_url``. With ``baseline``, the time of one clean restart (SIGTERM, no load) is
    measured first. Every ``full_every``-th trial, and the last, reads back every act ever
    acknowledged; the others read back those of the acts since the check before (``check``).
    """
    rng = random.Random(seed)
    report = Report()
    photos = [p for group in dev_photos(photos_dir).values() for p in group[:2]][:24]
    with instance(home, database_url, deploy=deploy) as inst:
        inst.start()
        inst.wait_ready()
        cast = people(inst)
        acts = Acts()
        if baseline:
            stopped = time.monotonic()
            inst.stop()
            inst.start()
            inst.wait_ready()
            report.clean_restart = time.monotonic() - stopped
        deaths: deque[float] = deque()  # worker kills the running server has replaced
        for trial in range(1, trials + 1):
            traffic = Traffic(inst, cast, acts, report, photos)
            what = rng.choice(["worker", "server"])
            # (with a margin: the server counts a death from when it sees it)
            while deaths and time.monotonic() - deaths[0] > RESPAWN_WINDOW + 5:
                deaths.popleft()
            if what == "worker" and len(deaths) >= RESPAWN_LIMIT:
                what = "server"  # one more would be a crash loop, which stops the server
            with traffic.running():
                time.sleep(rng.uniform(*traffic_seconds))
                since = inst.log.stat().st_size
                killed = time.monotonic()
                victim = inst.kill(what)
                # No act starts after the kill; those in flight end (answered or cut off)
                # while the server recovers.
                traffic.stop.set()
                if victim is None:
                    inst.down()
                    inst.start()
                    inst.wait_ready()
                    deaths.clear()
                else:  # the server replaces a dead worker by itself
                    inst.replaced(victim, since)
                    deaths.append(killed)
                report.recoveries.append(time.monotonic() - killed)
            report.kills[what] += 1
            report.trials = trial
            checked = time.monotonic()
            full = trial % full_every == 0 or trial == trials
            check(inst, cast, acts, report, trial, full=full)
            report.checks.append(time.monotonic() - checked)
            report.full_checks += full
            progress(
                f"trial {trial}: killed {what}, ready after {report.recoveries[-1]:.2f} s, "
                f"checked {'all' if full else 'the new'} in {report.checks[-1]:.2f} s, "
                f"{sum(report.acknowledged.values())} acts acknowledged, "
                f"{len(report.violations)} violations"
            )
    return report
