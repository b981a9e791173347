"""End-to-end HTTPS search latency and throughput, next to the raw cost of the same work.

Builds a throw-away deployment: the dev set's first two photos per identity enrolled (through
the real ingest), plus synthetic face-like distractor faces (default 100k) written straight to
the index and the database; an agency, an investigator and an approved legal basis; then
`facewarden serve` (TLS) on loopback. Clients (1, 2, 4 by default) each keep one
HTTPS connection and search with the remaining dev photos. In the same run, the raw cost of the
same probes is measured in-process (decode + detect + embed + exact numpy search over the same
gallery matrix), in blocks alternating with the single client's (``--rounds``), so both see the
same load on a noisy machine.
Measures ``--runs`` times (default 3) on the same deployment and server, and prints each run's
table (medians, p95, the ratio end-to-end p50 / raw p50, and each client count's throughput
over the raw work's on every core at once), then each ratio's median over the runs and its
spread. A kept-alive connection the server closed meanwhile is opened again.

    python bench/search.py --shared-dir ../shared [--distractors 100000] [--requests 200]
    python bench/search.py --milvus-uri http://127.0.0.1:19530 [--index HNSW --ef 128]
    python bench/search.py --keep DIR ...   # then again with --keep DIR: a settled deployment
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import http.client
import json
import os
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from vector_search import distractors, wait_for_index  # noqa: E402

from api.bootstrap import initialize  # noqa: E402
from api.context import build_engines, open_index, signing_keys  # noqa: E402
from api.ingest import ingest_manifest  # noqa: E402
from api.settings import Settings  # noqa: E402
from biometrics.images import decode_image  # noqa: E402
from biometrics.index import IndexedFace  # noqa: E402
from biometrics.packs import install_pack, load_pack  # noqa: E402
from governance.core.db import make_engine, make_session_factory, unit_of_work  # noqa: E402
from governance.gallery.models import GalleryFace, GalleryPhoto  # noqa: E402
from governance.gallery.photos import count_faces  # noqa: E402

BOUNDARY = "----facewarden-bench"


def multipart(fields: dict[str, str], image: bytes) -> bytes:
    parts = []
    for name, value in fields.items():
        parts.append(
            f"--{BOUNDARY}\r\n"
            f'Content-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        )
    parts.append(
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="image"; filename="p.jpg"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n".encode()
        + image
        + b"\r\n"
    )
    parts.append(f"--{BOUNDARY}--\r\n".encode())
    return b"".join(parts)


def pctl(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def split(shared: Path) -> tuple[list[Path], list[Path]]:
    dev = shared / "faces" / "dev"
    groups: dict[str, list[Path]] = {}
    with (dev / "manifest.csv").open(newline="") as fh:
        for row in csv.DictReader(fh):
            groups.setdefault(row["identity"], []).append(dev / row["file"])
    gallery = [p for g in groups.values() for p in g[:2]]
    probes = [p for g in groups.values() for p in g[2:]]
    return gallery, probes


def setup(args: argparse.Namespace, data: Path) -> tuple[Settings, dict[str, str], np.ndarray]:
    models = Path(args.models_dir)
    if not (models / "starter" / "pack.json").is_file():
        install_pack("starter", models)
    env = {
        "FACEWARDEN_DATA_DIR": str(data),
        "FACEWARDEN_MODELS_DIR": str(models),
        "FACEWARDEN_MAX_SEARCHES_PER_BASIS": "100000",
        "FACEWARDEN_LOG_LEVEL": "WARNING",
    }
    if args.milvus_uri:
        env |= {
            "FACEWARDEN_MILVUS_URI": args.milvus_uri,
            "FACEWARDEN_MILVUS_INDEX": args.index,
            "FACEWARDEN_MILVUS_HNSW_EF": str(args.ef),
            "FACEWARDEN_MILVUS_CONSISTENCY": args.consistency,
        }
    settings = Settings.from_env(env)
    if args.milvus_uri:  # a server outlives the run: start from an empty collection
        stale = open_index(settings, load_pack(models / settings.model_pack))
        stale._client.drop_collection(stale.collection)
        stale.close()
    initialize(settings, progress=lambda _m: None)
    gallery_photos, _ = split(Path(args.shared_dir))
    manifest = data / "gallery.csv"
    with manifest.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["path", "source_url", "collected_at", "collection_basis"])
        for p in gallery_photos:
            writer.writerow(
                [p, f"https://dev.example.org/{p.name}", "2025-01-01T00:00:00Z", "consent"]
            )
    started = time.perf_counter()
    summary = ingest_manifest(settings, manifest, batch_size=16)
    print(
        f"ingest: {summary.enrolled} photos in {time.perf_counter() - started:.1f} s",
        file=sys.stderr,
    )

    pack = load_pack(settings.models_dir / settings.model_pack)
    engines = build_engines(settings, model_pack=pack)
    engine = make_engine(settings.database_url)
    sessions = make_session_factory(engine)
    with unit_of_work(sessions) as session:
        real = np.stack(
            [np.frombuffer(f.embedding, dtype=np.float32) for f in session.query(GalleryFace)]
        )
    extra = distractors(real, args.distractors, np.random.default_rng(7))
    now = datetime.now(UTC)
    for start in range(0, len(extra), 5000):
        block = extra[start : start + 5000]
        photo = GalleryPhoto(
            id=uuid.uuid4(),
            sha256=uuid.uuid4().hex * 2,
            media_type="image/jpeg",
            width=1,
            height=1,
            source_url=f"https://distractors.example.net/{start}",
            source_site="example.net",
            collected_at=now,
            collection_basis="licence",
            enrolled_at=now,
            enrolled_by="bench",
            pack_name=pack.name,
            pack_version=pack.version,
            recognizer_sha256=pack.recognizer.sha256,
        )
        faces = [
            GalleryFace(
                id=uuid.uuid4(),
                photo_id=photo.id,
                source_site="example.net",
                x1=0,
                y1=0,
                x2=1,
                y2=1,
                detection_score=1,
                size_px=112,
                blur=100,
                yaw=0,
                pitch=0,
                roll=0,
                thumbnail_sha256="0" * 64,
                recognizer_sha256=pack.recognizer.sha256,
                embedding=v.tobytes(),
                created_at=now,
            )
            for v in block
        ]
        with unit_of_work(sessions) as session:
            session.add(photo)
            session.add_all(faces)
            session.flush()
            count_faces(session, pack.recognizer.sha256, len(faces))
        engines.index.insert(
            [
                IndexedFace(str(f.id), str(photo.id), "example.net", v)
                for f, v in zip(faces, block, strict=True)
            ]
        )
    engines.index.flush()
    if args.milvus_uri:
        wait_for_index(engines.index, len(real) + len(extra))
    engines.index.close()
    engine.dispose()
    matrix = np.concatenate([real, extra]).astype(np.float32)
    return settings, env, matrix


def people(settings: Settings) -> tuple[str, str]:
    """An investigator's key and an approved legal basis id, made with the services."""
    from governance import wiring
    from governance.core.work import Units
    from governance.identity.admin import create_admin
    from governance.identity.credentials import issue_credential
    from governance.identity.models import Account, Agency
    from governance.identity.permissions import Role
    from governance.identity.principals import Principal
    from governance.legal_basis.decisions import decide_basis
    from governance.legal_basis.offences import parse_offence_categories
    from governance.legal_basis.services import create_basis
    from governance.legal_basis.values import (
        Authorisation,
        AuthorisationKind,
        BasisDraft,
        BasisPolicy,
        Verdict,
    )
    from ledger.entry import Actor

    keys = signing_keys(settings)
    engine = make_engine(settings.database_url)
    sessions = make_session_factory(engine)
    now = datetime.now(UTC)
    with Units(sessions, keys, now, wiring.hooks())() as work:
        session = work.session
        create_admin(work, email="bench@example.org", name="Bench Admin")
        agency = Agency(
            name="Bench Police",
            kind="police",
            country="FR",
            jurisdiction="Bench",
            status="active",
            created_at=now,
            status_changed_at=now,
        )
        session.add(agency)
        session.flush()
        accounts = []
        for role in ("investigator", "supervisor"):
            account = Account(
                agency_id=agency.id,
                role=role,
                status="active",
                name=f"Bench {role}",
                phone="+33123456789",
                email=f"{role}@bench.example.org",
                person_key=f"{role}@bench.example.org",
                scope_key=str(agency.id),
                job_title=role,
                created_at=now,
                status_changed_at=now,
            )
            session.add(account)
            accounts.append(account)
        session.flush()
        issued = issue_credential(
            work,
            account_id=accounts[0].id,
            ttl=timedelta(days=1),
            actor=Actor(kind="operator", id="bench", agency=None),
        )
        principals = [Principal(a.id, Role(a.role), agency.id, uuid.uuid4()) for a in accounts]
        policy = BasisPolicy(offences=parse_offence_categories("annex_ii"), max_searches=100000)
        basis = create_basis(
            work,
            principal=principals[0],
            draft=BasisDraft(
                case_number="BENCH-1",
                offence_category="terrorism",
                legal_provision="bench",
                authorisation=Authorisation(
                    AuthorisationKind.JUDICIAL,
                    "REF-1",
                    "Court",
                    now - timedelta(hours=1),
                    now + timedelta(days=30),
                ),
                justification="Benchmark of the search path end to end, on loopback only.",
                max_searches=100000,
            ),
            policy=policy,
        )
        decide_basis(
            work,
            principal=principals[1],
            basis_id=basis.id,
            verdict=Verdict.APPROVE,
            reason="bench",
        )
    engine.dispose()
    return issued.api_key, str(basis.id)


# What a kept-alive connection that the server closed meanwhile raises on its next request
# (an idle deadline passed during a raw block, or under load): the client connects again.
CLOSED = (http.client.RemoteDisconnected, http.client.BadStatusLine, ConnectionError, ssl.SSLError)


class Client:
    """One client's kept-alive HTTPS connection, opened again when the server closed it."""

    def __init__(self, port: int, cert: Path) -> None:
        self.port = port
        self.context = ssl.create_default_context(cafile=str(cert))
        self.conn = self._connect()

    def _connect(self) -> http.client.HTTPSConnection:
        return http.client.HTTPSConnection("127.0.0.1", self.port, context=self.context, timeout=60)

    def search(self, key: str, basis: str, probe: bytes) -> float:
        """One POST /v1/searches; its latency in seconds (a reconnection included, if any)."""
        body = multipart({"legal_basis_id": basis, "purpose": "bench", "top_k": "20"}, probe)
        headers = {
            "Authorization": f"Bearer {key}",
            "Content-Type": f"multipart/form-data; boundary={BOUNDARY}",
        }
        started = time.perf_counter()
        try:
            self.conn.request("POST", "/v1/searches", body=body, headers=headers)
            response = self.conn.getresponse()
        except CLOSED:
            self.conn.close()
            self.conn = self._connect()
            self.conn.request("POST", "/v1/searches", body=body, headers=headers)
            response = self.conn.getresponse()
        payload = response.read()
        elapsed = time.perf_counter() - started
        if response.status not in (201, 422):
            raise RuntimeError(f"{response.status}: {payload[:300]!r}")
        return elapsed

    def close(self) -> None:
        self.conn.close()


def run_clients(
    port: int, cert: Path, key: str, basis: str, probes: list[bytes], clients: int, total: int
) -> tuple[list[float], float]:
    latencies: list[float] = []
    lock = threading.Lock()
    counter = iter(range(total))

    def worker() -> None:
        client = Client(port, cert)
        for n in counter:
            elapsed = client.search(key, basis, probes[n % len(probes)])
            with lock:
                latencies.append(elapsed)
        client.close()

    return latencies, concurrently(worker, clients)


def concurrently(worker: Callable[[], None], threads: int) -> float:
    """Run ``worker`` on ``threads`` threads at once; the seconds until the last one ends."""
    pool = [threading.Thread(target=worker) for _ in range(threads)]
    started = time.perf_counter()
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return time.perf_counter() - started


class Raw:
    """The raw cost of one probe in-process: decode + detect + embed + exact numpy top-20."""

    def __init__(self, settings: Settings, matrix: np.ndarray) -> None:
        from biometrics.packs import build_pipeline

        self.pipeline = build_pipeline(load_pack(settings.models_dir / settings.model_pack))
        self.matrix = matrix

    def cost(self, data: bytes) -> float:
        started = time.perf_counter()
        image = decode_image(data)
        faces = self.pipeline.analyze(image.pixels)
        if faces:
            scores = self.matrix @ faces[0].embedding
            top = np.argpartition(-scores, 20)[:20]
            top[np.argsort(-scores[top])]
        return time.perf_counter() - started


def alternating(
    port: int,
    cert: Path,
    key: str,
    basis: str,
    probes: list[bytes],
    raw: Raw,
    total: int,
    rounds: int,
) -> tuple[list[float], list[float]]:
    """One client; the probes split into ``rounds`` blocks, each measured raw in-process and
    then end to end. Alternating blocks share the machine's drift on a noisy host, while no
    request follows right after a raw exact search (a pass over the whole gallery matrix that
    evicts the server's caches, which would charge the baseline's cost to the service)."""
    client = Client(port, cert)
    raws: list[float] = []
    ends: list[float] = []
    order = [probes[n % len(probes)] for n in range(total)]
    size = max(1, -(-total // rounds))
    for start in range(0, total, size):
        block = order[start : start + size]
        raws.extend(raw.cost(probe) for probe in block)
        # Not measured: it re-warms the connection (opened again if the raw block outlasted the
        # server's keep-alive deadline) and the server's caches after the raw block.
        client.search(key, basis, block[0])
        ends.extend(client.search(key, basis, probe) for probe in block)
    client.close()
    return raws, ends


def raw_throughput(raw: Raw, probes: list[bytes], total: int, threads: int) -> float:
    """Probes per second of the raw work on ``threads`` threads at once (onnxruntime releases
    the GIL): what the machine's cores can do with no service around them."""
    counter = iter(range(total))

    def worker() -> None:
        for n in counter:
            raw.cost(probes[n % len(probes)])

    return total / concurrently(worker, threads)


def deployment(
    args: argparse.Namespace, data: Path
) -> tuple[Settings, dict[str, str], np.ndarray, str, str]:
    """Build the deployment in ``data``, or reuse the one a ``--keep`` run left there."""
    state = data / "bench-state.json"
    if not state.is_file():
        settings, env, matrix = setup(args, data)
        key, basis = people(settings)
        if args.keep:
            np.save(data / "bench-matrix.npy", matrix)
            state.write_text(json.dumps({"env": env, "key": key, "basis": basis}))
        return settings, env, matrix, key, basis
    saved = json.loads(state.read_text())
    env = saved["env"]
    if "FACEWARDEN_MILVUS_URI" in env:  # search-time settings may change between runs
        env |= {
            "FACEWARDEN_MILVUS_HNSW_EF": str(args.ef),
            "FACEWARDEN_MILVUS_CONSISTENCY": args.consistency,
        }
    settings = Settings.from_env(env)
    matrix = np.load(data / "bench-matrix.npy")
    index = open_index(settings, load_pack(settings.models_dir / settings.model_pack))
    index.ensure_collection(matrix.shape[1])
    held = index.count()
    index.close()
    if held != len(matrix):
        sys.exit(
            f"the index holds {held:,} faces, not the {len(matrix):,} this deployment enrolled "
            f"(another run rebuilt it?): remove {data} and run again to rebuild"
        )
    print(f"reusing the deployment in {data} ({held:,} faces)", file=sys.stderr)
    return settings, env, matrix, str(saved["key"]), str(saved["basis"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared-dir", default=str(REPO.parent / "shared"))
    parser.add_argument(
        "--models-dir", default=str(Path.home() / ".cache" / "facewarden-test" / "models")
    )
    parser.add_argument("--distractors", type=int, default=100_000)
    parser.add_argument(
        "--requests", type=int, default=200, help="searches per client count (the probes: 242)"
    )
    parser.add_argument("--clients", default="1,2,4")
    parser.add_argument("--rounds", type=int, default=8, help="alternating raw / 1-client blocks")
    parser.add_argument(
        "--runs", type=int, default=3, help="measurements on the same deployment (median, spread)"
    )
    parser.add_argument("--milvus-uri", default="", help="a Milvus server; default milvus-lite")
    parser.add_argument("--index", default="HNSW", help="index type on a Milvus server")
    parser.add_argument("--ef", type=int, default=256, help="HNSW search ef on a server")
    parser.add_argument("--consistency", default="Session", help="read consistency on a server")
    parser.add_argument(
        "--keep",
        metavar="DIR",
        help="build the deployment in DIR and keep it; a later run with the same DIR measures "
        "it again, settled, without rebuilding",
    )
    args = parser.parse_args()

    with contextlib.ExitStack() as stack:
        if args.keep:
            data = Path(args.keep).resolve()
        else:
            data = Path(stack.enter_context(tempfile.TemporaryDirectory())) / "var"
        settings, env, matrix, key, basis = deployment(args, data)
        _, probe_paths = split(Path(args.shared_dir))
        probes = [p.read_bytes() for p in probe_paths]
        port = free_port()
        server = subprocess.Popen(
            [sys.executable, "-m", "api.cli", "serve", "--port", str(port), "--threads", "4"],
            # The bench is one investigator searching far faster than a person would: the
            # per-key and per-account limits on searches (tests/api/test_abuse.py) are lifted.
            env={
                **os.environ,
                **env,
                "FACEWARDEN_SEARCH_RATE_LIMIT": "1000000 per minute",
                "FACEWARDEN_ACCOUNT_RATE_LIMIT": "1000000 per minute",
            },
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            for _ in range(120):
                with socket.socket() as s:
                    if s.connect_ex(("127.0.0.1", port)) == 0:
                        break
                time.sleep(0.25)
            ready = ssl.create_default_context(cafile=str(settings.tls_cert_path))
            for _ in range(60):  # the models load and the index opens on first use
                conn = http.client.HTTPSConnection("127.0.0.1", port, context=ready, timeout=60)
                conn.request("GET", "/readyz")
                if conn.getresponse().status == 200:
                    break
                time.sleep(1)
            run_clients(port, settings.tls_cert_path, key, basis, probes, 1, 5)  # warm-up
            baseline = Raw(settings, matrix)
            baseline.cost(probes[0])
            cores = os.cpu_count() or 1
            runs = []
            for n in range(1, args.runs + 1):
                print(f"run {n} of {args.runs}…", file=sys.stderr)
                raw, single = alternating(
                    port,
                    settings.tls_cert_path,
                    key,
                    basis,
                    probes,
                    baseline,
                    args.requests,
                    args.rounds,
                )
                rows = [(1, single, sum(single))]
                for clients in (int(c) for c in args.clients.split(",") if c.strip() != "1"):
                    latencies, wall = run_clients(
                        port, settings.tls_cert_path, key, basis, probes, clients, args.requests
                    )
                    rows.append((clients, latencies, wall))
                rate = raw_throughput(baseline, probes, args.requests, cores)
                runs.append((raw, rows, rate))
        finally:
            server.terminate()
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()

    print(
        f"\nEnd-to-end HTTPS search, gallery {len(matrix):,} faces (dev set + distractors), "
        f"top_k 20, 1 worker x 4 threads, "
        + (
            f"Milvus server {args.index} ef={args.ef} {args.consistency}"
            if args.milvus_uri
            else "milvus-lite FLAT (exact)"
        )
        + f", {args.runs} run(s) on the same deployment and server"
    )
    ratios: dict[int, list[float]] = {}
    shares: dict[int, list[float]] = {}
    for n, (raw, rows, rate) in enumerate(runs, start=1):
        raw_p50 = statistics.median(raw)
        print(
            f"\nrun {n}: raw detect+embed+exact search, same probes in-process, in blocks "
            f"alternating with the 1-client run's: p50 {raw_p50 * 1000:.1f} ms, "
            f"p95 {pctl(raw, 0.95) * 1000:.1f} ms; on {cores} threads at once {rate:.2f}/s"
        )
        print(
            f"{'clients':>7} {'p50 ms':>8} {'p95 ms':>8} {'req/s':>7} {'p50 / raw p50':>14}"
            f" {'req/s / raw':>12}"
        )
        for clients, latencies, wall in rows:
            p50 = statistics.median(latencies)
            throughput = len(latencies) / wall
            ratios.setdefault(clients, []).append(p50 / raw_p50)
            shares.setdefault(clients, []).append(throughput / rate)
            print(
                f"{clients:>7} {p50 * 1000:>8.1f} {pctl(latencies, 0.95) * 1000:>8.1f} "
                f"{throughput:>7.2f} {p50 / raw_p50:>14.2f} {throughput / rate:>12.2f}"
            )
    print(f"\nover the {len(runs)} run(s): median, and the spread (min to max)")
    print(f"{'clients':>7} {'p50 / raw p50':>22} {'req/s / raw req/s':>22}")
    for clients, r in ratios.items():
        t = shares[clients]
        print(
            f"{clients:>7} {statistics.median(r):>8.2f} ({min(r):.2f} to {max(r):.2f})"
            f" {statistics.median(t):>8.2f} ({min(t):.2f} to {max(t):.2f})"
        )
    print(json.dumps({"p50_over_raw": ratios, "throughput_over_raw": shares}), file=sys.stderr)


if __name__ == "__main__":
    main()
