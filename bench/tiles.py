"""Serving and reading the log as C2SP tlog-tiles, next to the proof endpoints and the bundle.

Builds the embedded default (SQLite) with a log of ``--entries`` entries (default 100k) signed
by its own key, bulk-loaded, then, in-process through the Flask test client (no TLS, no HTTP
server, one thread):

1. **Serving**: requests per second and median latency of random full hash tiles, random full
   entry bundles, and the inclusion and consistency proof endpoints they stand in for.
2. **A client verifying every entry**: ``verify_increment`` from the tiles alone
   (``TileFetcher``: entry bundles, then every hash tile rebuilt and compared), from the
   ``/entries`` and proof endpoints (``HttpFetcher``), and ``verify_log`` of an exported bundle
   with one worker; median of ``--repeats``.

    python bench/tiles.py [--entries 100000] [--requests 500] [--repeats 3]
"""

from __future__ import annotations

import argparse
import hashlib
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from flask.testing import FlaskClient  # noqa: E402
from sqlalchemy import insert, select  # noqa: E402

from governance.core.db import unit_of_work  # noqa: E402
from ledger import storage  # noqa: E402
from ledger.bundle import BundleFetcher, HttpFetcher  # noqa: E402
from ledger.checkpoint import Checkpoint, sign_checkpoint  # noqa: E402
from ledger.compact import CompactRange  # noqa: E402
from ledger.entry import Actor, EntryType, build_entry, format_ts, parse_entry  # noqa: E402
from ledger.hashing import leaf_hash  # noqa: E402
from ledger.proofs import completed_nodes  # noqa: E402
from ledger.tiles import TILE_WIDTH, Tile, TileFetcher, check_tiles  # noqa: E402
from ledger.verify import verify_log  # noqa: E402
from ledger.witness import verify_increment  # noqa: E402
from tests.api.helpers import make_admin, make_staff, runtime_of  # noqa: E402
from tests.api.test_ledger_api import flask_transport  # noqa: E402
from tests.outages.test_database import embedded_app  # noqa: E402

ACTOR = Actor(kind="user", id="7d1f0a52-0000-4000-8000-000000000001", agency="agency-1")


def extend(app: object, target: int) -> None:
    """Append entries up to ``target``, signed by the app's key, in bulk (a search:run load)."""
    rt = runtime_of(app)  # type: ignore[arg-type]
    signer = rt.signer
    with rt.sessions() as session:
        rows = session.execute(select(storage.entries.c.body).order_by(storage.entries.c.seq)).all()
    lines = [bytes(body) for (body,) in rows]
    last = parse_entry(lines[-1])
    tree = CompactRange()
    tree.extend(leaf_hash(line) for line in lines)
    prev, ts = hashlib.sha256(lines[-1]).hexdigest(), last.ts
    batch_entries: list[dict[str, object]] = []
    batch_nodes: list[dict[str, object]] = []
    base = rt.now()

    def flush() -> None:
        with unit_of_work(rt.sessions) as session:
            session.execute(insert(storage.entries), batch_entries)
            session.execute(insert(storage.nodes), batch_nodes)
        batch_entries.clear()
        batch_nodes.clear()

    for seq in range(len(lines), target):
        ts = max(ts, format_ts(base + timedelta(milliseconds=seq)))
        entry = build_entry(
            seq=seq,
            ts=ts,
            entry_type=EntryType.SEARCH_RUN,
            actor=ACTOR,
            payload={"search": f"s-{seq}", "legal_basis": "lb-42", "results": seq % 9},
            prev=prev,
            signer=signer,
        )
        h = leaf_hash(entry.raw)
        batch_entries.append(
            {
                "seq": seq,
                "body": entry.raw,
                "leaf_hash": h,
                "type": "search:run",
                "ts": ts,
                "key_id": signer.key_id,
            }
        )
        for node, node_hash in zip(completed_nodes(seq), tree.append(h), strict=True):
            batch_nodes.append({"level": node.level, "idx": node.index, "hash": node_hash})
        prev = hashlib.sha256(entry.raw).hexdigest()
        if len(batch_entries) >= 20_000:
            flush()
    flush()
    note = sign_checkpoint(Checkpoint(signer.name, target, tree.root()), signer)
    with unit_of_work(rt.sessions) as session:
        session.execute(
            insert(storage.checkpoints).values(
                size=target, root=tree.root(), key_id=signer.key_id, note=note
            )
        )


def serve_rate(name: str, client: FlaskClient, paths: Callable[[], str], n: int, **h: str) -> None:
    times = []
    for _ in range(n):
        path = paths()
        started = time.perf_counter()
        response = client.get(path, headers=h)
        times.append(time.perf_counter() - started)
        assert response.status_code == 200, (path, response.status_code)
    median = statistics.median(times)
    print(f"  {name:<44}{median * 1000:>8.2f} ms{1 / median:>10.0f} /s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    n = args.entries
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        app = embedded_app(home, log_level="WARNING")
        client = app.test_client()
        oversight = make_staff(client, make_admin(app), "oversight")
        started = time.perf_counter()
        extend(app, n)
        print(f"bulk-loaded a log of {n:,} entries in {time.perf_counter() - started:.1f} s")
        key = runtime_of(app).signer.verifier_key
        auth = {"Authorization": f"Bearer {oversight.token}"}
        rng = random.Random(1)
        full = n // TILE_WIDTH

        print(f"serving, {args.requests} requests each:{'median':>17}{'rate':>13}")
        serve_rate(
            "hash tile (random full, level 0)",
            client,
            lambda: f"/v1/ledger/{Tile(0, rng.randrange(full)).path}",
            args.requests,
        )
        serve_rate(
            "entry bundle (random full)",
            client,
            lambda: f"/v1/ledger/{Tile(0, rng.randrange(full), entries=True).path}",
            args.requests,
            **auth,
        )
        serve_rate(
            "inclusion proof (random seq, whole tree)",
            client,
            lambda: f"/v1/ledger/proofs/inclusion?seq={rng.randrange(n)}&size={n}",
            args.requests,
            **auth,
        )
        serve_rate(
            "consistency proof (random size, whole tree)",
            client,
            lambda: f"/v1/ledger/proofs/consistency?from={rng.randrange(1, n)}&to={n}",
            args.requests,
            **auth,
        )
        bundle = home / "bundle"
        with runtime_of(app).sessions() as session:
            storage.export_bundle(session, bundle)

        transport = flask_transport(client)

        def from_tiles() -> None:
            fetcher = TileFetcher("http://l", token=oversight.token, transport=transport)
            lines: list[bytes] = []
            original = fetcher.entries

            def keep(start: int, end: int) -> list[bytes]:
                got = original(start, end)
                lines.extend(got)
                return got

            fetcher.entries = keep  # type: ignore[method-assign]
            report, _ = verify_increment(fetcher, pinned=[key], state=None)
            assert report.size == n
            check_tiles(fetcher.tile, [leaf_hash(line) for line in lines])

        def from_endpoints() -> None:
            fetcher = HttpFetcher("http://l", token=oversight.token, transport=transport)
            assert verify_increment(fetcher, pinned=[key], state=None)[0].size == n

        def from_bundle() -> None:
            assert verify_log(BundleFetcher(bundle), pinned=[key], workers=1).size == n

        print(f"a client verifying all {n:,} entries, median of {args.repeats}:")
        for name, run in (
            ("from tiles alone (bundles + every tile rebuilt)", from_tiles),
            ("from /entries pages (HttpFetcher)", from_endpoints),
            ("exported bundle, verify_log, 1 worker", from_bundle),
        ):
            times = []
            for _ in range(args.repeats):
                started = time.perf_counter()
                run()
                times.append(time.perf_counter() - started)
            median = statistics.median(times)
            print(f"  {name:<50}{median:>7.2f} s{n / median:>10.0f} entries/s")


if __name__ == "__main__":
    main()
