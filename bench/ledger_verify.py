"""Offline verification rate of a large bundle vs raw Ed25519 verification, and proof latency.

Part 1 builds an N-entry bundle (default 100k, with one key rotation), then times
``verify_log`` with 1 and 2 worker processes next to the raw one-core Ed25519 verify rate of
the same entries. Part 2 bulk-loads an M-leaf tree (default 1M) into SQLite (and PostgreSQL
with --pg) and times root, inclusion and consistency proof generation.
    python bench/ledger_verify.py [--quick] [--entries N] [--leaves M] [--pg]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import resource
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy import Engine, insert, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from governance.core.db import make_engine, make_session_factory, unit_of_work
from ledger import storage
from ledger.bundle import BundleFetcher, write_manifest
from ledger.checkpoint import Checkpoint, parse_verifier_key, sign_checkpoint
from ledger.compact import CompactRange
from ledger.entry import (
    GENESIS_PREV,
    Actor,
    EntryType,
    build_entry,
    format_ts,
    parse_entry,
    signing_bytes,
)
from ledger.hashing import leaf_hash
from ledger.keys import Signer
from ledger.proofs import MemoryTree, completed_nodes
from ledger.verify import verify_log

NAME = "bench.example/ledger"
ACTOR = Actor(kind="user", id="7d1f0a52-0000-4000-8000-000000000001", agency="agency-1")
T0 = datetime(2026, 11, 27, tzinfo=UTC)


def build_bundle(directory: Path, n: int) -> tuple[str, list[bytes]]:
    """Write an n-entry bundle signed by two keys (rotation half-way); returns the first vkey."""
    first = Signer(NAME, Ed25519PrivateKey.generate())
    second = Signer(NAME, Ed25519PrivateKey.generate())
    signer, prev, lines, tree = first, GENESIS_PREV, [], MemoryTree()
    for seq in range(n):
        rotate = seq == n // 2
        entry = build_entry(
            seq=seq,
            ts=format_ts(T0 + timedelta(milliseconds=seq)),
            entry_type=EntryType.KEY_ROTATE if rotate else EntryType.SEARCH_RUN,
            actor=ACTOR,
            payload={"old_key": first.verifier_key, "new_key": second.verifier_key}
            if rotate
            else {"search": f"s-{seq}", "legal_basis": "lb-42", "results": seq % 9},
            prev=prev,
            signer=signer,
        )
        lines.append(entry.raw)
        tree.append_leaf(entry.raw)
        prev = hashlib.sha256(entry.raw).hexdigest()
        if rotate:
            signer = second
    (directory / "checkpoints").mkdir(parents=True)
    (directory / "entries.jsonl").write_bytes(b"".join(x + b"\n" for x in lines))
    sizes = sorted(
        {1 << k for k in range(n.bit_length()) if 1 << k < n} | set(range(1024, n, 1024))
    )
    for size in sizes:
        key = first if size <= n // 2 else second
        note = sign_checkpoint(Checkpoint(NAME, size, tree.root(size)), key)
        (directory / "checkpoints" / str(size)).write_text(note)
    (directory / "checkpoint").write_text(sign_checkpoint(Checkpoint(NAME, n, tree.root()), second))
    (directory / "keys").write_text(f"{first.verifier_key}\n{second.verifier_key}\n")
    write_manifest(directory, origin=NAME, size=n)
    return first.verifier_key, lines


def _cpu() -> float:
    # CPU seconds of this process and its reaped children (the verifier's worker pool).
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def raw_verify_rate(lines: list[bytes], vkeys: dict[str, bytes]) -> tuple[float, float]:
    """Entries per wall second and per CPU second of bare one-core Ed25519 verification."""
    keys = {k: Ed25519PublicKey.from_public_bytes(v) for k, v in vkeys.items()}
    work = []
    for line in lines:
        entry = parse_entry(line)
        work.append((keys[entry.key_id], entry.signature, signing_bytes(entry)))
    start, cpu = time.perf_counter(), _cpu()
    for key, sig, message in work:
        key.verify(sig, message)
    return len(work) / (time.perf_counter() - start), len(work) / (_cpu() - cpu)


def part_verify(n: int, repeats: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        vkey, lines = build_bundle(Path(tmp) / "bundle", n)
        print(f"built a {n:,}-entry bundle in {time.perf_counter() - started:.1f} s")
        keys = [parse_verifier_key(k) for k in BundleFetcher(Path(tmp) / "bundle").verifier_keys()]
        raws = [
            raw_verify_rate(lines, {k.key_id_hex: k.public_key for k in keys})
            for _ in range(repeats)
        ]
        raw_wall = statistics.median(r[0] for r in raws)
        raw_cpu = statistics.median(r[1] for r in raws)
        print("(wall rates depend on machine load; CPU rates count CPU seconds of all processes)")
        print(f"{'what':<40}{'entries/wall s':>15}{'x raw':>7}{'entries/CPU s':>15}{'x raw':>7}")
        print(
            f"{'raw Ed25519 verify (1 core)':<40}{raw_wall:>15,.0f}{1.0:>7.2f}"
            f"{raw_cpu:>15,.0f}{1.0:>7.2f}"
        )
        for workers in (1, 2):
            walls, cpus = [], []
            for _ in range(repeats):
                start, cpu = time.perf_counter(), _cpu()
                report = verify_log(
                    BundleFetcher(Path(tmp) / "bundle"), pinned=[vkey], workers=workers
                )
                walls.append(report.size / (time.perf_counter() - start))
                cpus.append(report.size / (_cpu() - cpu))
            wall, cpu_rate = statistics.median(walls), statistics.median(cpus)
            print(
                f"{f'verify_log, {workers} worker(s), all 6 steps':<40}{wall:>15,.0f}"
                f"{raw_wall / wall:>7.2f}{cpu_rate:>15,.0f}{raw_cpu / cpu_rate:>7.2f}"
            )


def _bulk_tree(engine: Engine, m: int) -> None:
    factory = make_session_factory(engine)
    with unit_of_work(factory) as session:
        storage.metadata.drop_all(session.connection())
        storage.metadata.create_all(session.connection())
    compact = CompactRange()
    batch_entries: list[dict[str, object]] = []
    batch_nodes: list[dict[str, object]] = []

    def flush() -> None:
        with unit_of_work(factory) as session:
            if batch_entries:
                session.execute(insert(storage.entries), batch_entries)
            if batch_nodes:
                session.execute(insert(storage.nodes), batch_nodes)
        batch_entries.clear()
        batch_nodes.clear()

    for i in range(m):
        body = b'{"bench":%d}' % i
        h = leaf_hash(body)
        batch_entries.append(
            {
                "seq": i,
                "body": body,
                "leaf_hash": h,
                "type": "search:run",
                "ts": "2026-11-27T00:00:00.000000Z",
                "key_id": "00000000",
            }
        )
        for node, node_hash in zip(completed_nodes(i), compact.append(h), strict=True):
            batch_nodes.append({"level": node.level, "idx": node.index, "hash": node_hash})
        if len(batch_entries) >= 50_000:
            flush()
    flush()
    # Fresh planner statistics, as autovacuum (PostgreSQL) would gather after a bulk load.
    with engine.begin() as conn:
        conn.execute(text("ANALYZE"))


def part_proofs(label: str, engine: Engine, m: int, samples: int) -> None:
    started = time.perf_counter()
    _bulk_tree(engine, m)
    print(f"{label}: bulk-loaded a {m:,}-leaf tree in {time.perf_counter() - started:.1f} s")
    factory = make_session_factory(engine)
    rng = random.Random(1)
    calls: dict[str, Callable[[Session], object]] = {
        "root_at(random size)": lambda s: storage.root_at(s, rng.randrange(1, m + 1)),
        "inclusion_proof(random seq, M)": lambda s: storage.inclusion_proof(
            s, seq=rng.randrange(m), size=m
        ),
        "consistency_proof(random, M)": lambda s: storage.consistency_proof(
            s, first=rng.randrange(1, m), second=m
        ),
    }
    print(f"{'call':<34}{'median ms':>10}{'p95 ms':>9}{'max ms':>9}")
    with factory() as session:
        for name, call in calls.items():
            times = []
            for _ in range(samples):
                start = time.perf_counter()
                call(session)
                times.append((time.perf_counter() - start) * 1000)
            times.sort()
            print(
                f"{name:<34}{statistics.median(times):>10.2f}"
                f"{times[int(len(times) * 0.95)]:>9.2f}{times[-1]:>9.2f}"
            )


def main() -> None:
    """Run both parts and print their tables."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="20k entries, 100k leaves")
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--leaves", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--pg", action="store_true", help="also PostgreSQL (bulk load is slow)")
    args = parser.parse_args()
    n, m = (20_000, 100_000) if args.quick else (args.entries, args.leaves)
    part_verify(n, 1 if args.quick else args.repeats)
    with tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(f"sqlite:///{Path(tmp) / 'tree.sqlite'}")
        part_proofs("sqlite", engine, m, 300)
        engine.dispose()
    url = os.environ.get("FACEWARDEN_TEST_DATABASE_URL")
    if args.pg and url:
        schema = f"ledger_bench_{os.getpid()}_{uuid.uuid4().hex[:6]}"
        admin = make_engine(url)
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        scoped = make_url(url).update_query_dict({"options": f"-csearch_path={schema}"})
        engine = make_engine(scoped.render_as_string(hide_password=False))
        try:
            part_proofs("postgresql", engine, m, 300)
        finally:
            engine.dispose()
            with admin.begin() as conn:
                conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
            admin.dispose()


if __name__ == "__main__":
    main()
