"""What the load profile watches: the deployment's processes, their memory and CPU, its sizes,
and, while it measures, slow clients held against nginx and a probe of /healthz.

Used by bench/load.py; every function runs in its gevent hub (greenlets, not threads).
"""

from __future__ import annotations

import os
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.deploy.deployment import Deployment
from tests.load.figures import megabytes

__all__ = [
    "PARTS",
    "Probe",
    "SlowClients",
    "Usage",
    "healthz_latency",
    "keepalive_healthz",
    "sizes",
    "usage",
]

PARTS = ("nginx", "serve", "postgres", "milvus", "redis", "s3")
SLOW_ADDRESSES = 25  # slow clients come from 127.0.1.1-25 (nginx allows 32 per address)


def processes(directory: Path) -> dict[str, list[Any]]:
    """Each part's processes: the one in DIR/run/PART.pid, its descendants and its session."""
    import psutil

    found: dict[str, list[Any]] = {}
    everyone = list(psutil.process_iter())
    for part in PARTS:
        try:
            pid = int((directory / "run" / f"{part}.pid").read_text())
            root = psutil.Process(pid)
        except (OSError, ValueError, psutil.Error):
            continue
        members = {root.pid: root} | {p.pid: p for p in root.children(recursive=True)}
        for proc in everyone:  # what left the tree but kept the session (milvus's engine)
            if proc.pid not in members and _sid(proc) == pid:
                members[proc.pid] = proc
        found[part] = sorted(members.values(), key=lambda p: p.pid)
    return found


def _sid(proc: Any) -> int:
    try:
        return os.getsid(proc.pid)
    except OSError:
        return -1


@dataclass(frozen=True)
class Usage:
    part: str
    pid: int
    name: str
    rss: int  # bytes
    anon: int  # bytes: its heap and stacks (RssAnon), without shared memory or mapped files
    cpu: float  # seconds, user + system, since the process started


def usage(directory: Path) -> dict[int, Usage]:
    """Every deployment process's memory and CPU time now, by pid."""
    import psutil

    now: dict[int, Usage] = {}
    for part, procs in processes(directory).items():
        for proc in procs:
            try:
                with proc.oneshot():
                    times = proc.cpu_times()
                    now[proc.pid] = Usage(
                        part,
                        proc.pid,
                        _label(proc.cmdline()) or proc.name(),
                        proc.memory_info().rss,
                        _anonymous(proc.pid),
                        times.user + times.system,
                    )
            except psutil.Error:
                continue
    return now


def _anonymous(pid: int) -> int:
    """RssAnon of /proc/PID/status: what a leak grows. RSS also grows as a process touches
    shared memory (a PostgreSQL backend or its checkpointer, the shared buffers)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("RssAnon:"):
            return int(line.split()[1]) * 1024
    return 0


def _label(cmdline: list[str]) -> str:
    """What a process is, in a few words: a serve worker, a PostgreSQL backend, nginx's master."""
    line = " ".join(cmdline)
    if "spawn_main" in line:
        return "worker"
    if "resource_tracker" in line:
        return "multiprocessing resource tracker"
    if line.startswith("postgres: ") and "(" in line:
        return "backend " + line.split()[1]  # postgres: ROLE DATABASE ADDRESS(PORT) STATE
    if line.startswith(("postgres: ", "nginx: ")):
        return line.split(": ", 1)[1][:40]
    program = Path(cmdline[0]).name if cmdline else ""
    if program.startswith("python"):
        return " ".join(cmdline[1:4])[:40]
    return program


# The tables that grow with the load.
TABLES = ("ledger_entries", "ledger_nodes", "searches", "search_candidates", "search_reviews")
TABLES += ("gallery_photos", "gallery_faces", "legal_bases", "pending_effects")


def sizes(deployment: Deployment) -> dict[str, str]:
    """The database's size and its growing tables', the index's faces and its data on disk."""
    import psycopg
    import requests
    from psycopg import sql
    from sqlalchemy.engine import make_url

    url = make_url(deployment.settings["FACEWARDEN_DATABASE_URL"]).set(drivername="postgresql")
    found: dict[str, str] = {}
    with psycopg.connect(url.render_as_string(hide_password=False)) as conn:
        total = conn.execute("SELECT pg_database_size(current_database())").fetchone()
        found["database (pg_database_size)"] = megabytes(int(total[0]) if total else 0)
        for name in TABLES:
            row = conn.execute(
                sql.SQL("SELECT count(*), pg_total_relation_size({}) FROM {}").format(
                    sql.Literal(name), sql.Identifier(name)
                )
            ).fetchone()
            if row:
                found[f"  {name}: rows, size"] = f"{row[0]}, {megabytes(row[1])}"
    ready = requests.get(f"{deployment.url}/readyz", verify=deployment.cert, timeout=30).json()
    found["index: faces (/readyz)"] = ready["checks"]["vector_index"]["detail"].split(": ")[-1]
    data = deployment.directory / "milvus" / "data"
    disk = sum(p.stat().st_size for p in data.rglob("*") if p.is_file())
    found["index: Milvus data on disk"] = megabytes(disk)
    return found


class SlowClients:
    """``count`` slow clients held against nginx: each one, dropped, comes back at once.

    Three in five send half a request line, one in five a head and one byte of a 100 kB body,
    one in five never starts TLS (tests/api/slow_clients.py's openings).
    """

    def __init__(self, port: int, cert: str, count: int) -> None:
        import ssl

        self.port, self.count = port, count
        self.context = ssl.create_default_context(cafile=cert)
        self.open = 0
        self.reconnects = 0
        self.failures: Counter[str] = Counter()
        self.held: list[int] = []  # sampled
        self._stop = False
        self._greenlets: list[Any] = []

    def start(self) -> None:
        import gevent

        from tests.api.slow_clients import HALF_LINE, SLOW_BODY

        openings = [(self.context, HALF_LINE)] * 3 + [(self.context, SLOW_BODY), (None, b"")]
        for n in range(self.count):
            context, opening = openings[n % len(openings)]
            source = f"127.0.1.{n % SLOW_ADDRESSES + 1}"
            self._greenlets.append(gevent.spawn(self._hold, context, opening, source))
            if n % 50 == 49:
                gevent.sleep(0.1)  # nginx's accept queue is not the point

    def _hold(self, context: Any, opening: bytes, source: str) -> None:

        from tests.api.slow_clients import hold

        while not self._stop:
            try:
                conn = hold(self.port, context, 1, opening, source=source)[0]
            except OSError as exc:
                self.failures[type(exc).__name__] += 1
                time.sleep(0.5)
                continue
            self.open += 1
            try:
                conn.settimeout(60)
                while not self._stop and conn.recv(4096):
                    pass  # nginx answers 408 or closes; either way it let go
            except (TimeoutError, OSError):
                pass
            finally:
                self.open -= 1
                conn.close()
            self.reconnects += 1

    def sample(self) -> None:
        self.held.append(self.open)

    def stop(self) -> None:
        import gevent

        self._stop = True
        gevent.killall(self._greenlets, timeout=5)


def healthz_latency(url: str, cert: str, requests_: int) -> list[float]:
    """Seconds of ``requests_`` GETs of /healthz, each on a new TLS connection, from 127.0.3.1."""
    import http.client
    import ssl

    context = ssl.create_default_context(cafile=cert)
    port = int(url.rsplit(":", 1)[1])
    times = []
    for _ in range(requests_):
        started = time.perf_counter()
        conn = http.client.HTTPSConnection(
            "127.0.0.1", port, context=context, timeout=10, source_address=("127.0.3.1", 0)
        )
        try:
            conn.request("GET", "/healthz")
            response = conn.getresponse()
            response.read()
            if response.status != 200:
                raise OSError(f"/healthz answered {response.status}")
        finally:
            conn.close()
        times.append(time.perf_counter() - started)
    return times


def keepalive_healthz(url: str, requests_: int) -> list[float]:
    """Seconds of ``requests_`` GETs of /healthz on one kept-alive connection: raw requests."""
    import requests

    times = []
    with requests.Session() as session:
        for _ in range(requests_ + 1):
            started = time.perf_counter()
            session.get(f"{url}/healthz", timeout=10).raise_for_status()
            times.append(time.perf_counter() - started)
    return times[1:]  # the first one opens the connection


class Probe:
    """GET /healthz on a new TLS connection every ``every`` seconds: is the service there?"""

    def __init__(self, url: str, cert: str, every: float = 2.0) -> None:
        self.url, self.cert, self.every = url, cert, every
        self.times: list[float] = []
        self.failures: list[str] = []
        self._greenlet: Any = None

    def _run(self) -> None:
        while True:
            try:
                self.times += healthz_latency(self.url, self.cert, 1)
            except OSError as exc:
                self.failures.append(repr(exc))
            time.sleep(self.every)

    def start(self) -> None:
        import gevent

        self._greenlet = gevent.spawn(self._run)

    def stop(self) -> None:
        self._greenlet.kill()
