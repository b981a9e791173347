"""Ledger append throughput with durable commits, next to the raw canonicalize+hash+sign cost.

Prints one table: SQLite (WAL, synchronous=FULL) and PostgreSQL (when
FACEWARDEN_TEST_DATABASE_URL is set), 1 writer and 8 concurrent writers, median of --repeats,
each without and with the signer state (ledger/signer_state.py: the check before signing and
the fsync'd record after the commit, as the service runs).
    python bench/ledger_append.py [--quick] [--appends N] [--repeats R]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from governance.core.db import make_engine, make_session_factory, unit_of_work
from ledger import storage
from ledger.checkpoint import Checkpoint, sign_checkpoint
from ledger.entry import GENESIS_PREV, Actor, EntryType, build_entry, format_ts
from ledger.hashing import leaf_hash
from ledger.keys import Signer, generate_key
from ledger.signer_state import SignerState

ACTOR = Actor(kind="user", id="7d1f0a52-0000-4000-8000-000000000001", agency="agency-1")
PAYLOAD = {
    "search": "5b0e7f3c-2f7e-4a51-9d7c-1f2e3d4c5b6a",
    "legal_basis": "lb-42",
    "results": 5,
    "threshold": "0.42",
}


def raw_cost(signer: Signer, n: int) -> float:
    """Seconds per entry for canonicalize + sign + leaf hash + checkpoint sign, no database."""
    start = time.perf_counter()
    for i in range(n):
        entry = build_entry(
            seq=i,
            ts=format_ts(datetime.now(UTC)),
            entry_type=EntryType.SEARCH_RUN,
            actor=ACTOR,
            payload=PAYLOAD,
            prev=GENESIS_PREV,
            signer=signer,
        )
        leaf = leaf_hash(entry.raw)
        sign_checkpoint(Checkpoint(signer.name, i + 1, leaf), signer)
    return (time.perf_counter() - start) / n


def run(
    engine: Engine, signer: Signer, writers: int, total: int, state: SignerState | None
) -> float:
    """Appends per second with ``writers`` threads, one committed unit of work per append."""
    factory = make_session_factory(engine)
    if state is not None:
        state.path.unlink(missing_ok=True)
    with unit_of_work(factory) as session:
        storage.metadata.drop_all(session.connection())
        storage.create_tables(session)
    each = total // writers
    barrier = threading.Barrier(writers + 1)

    def work() -> None:
        barrier.wait()
        for _ in range(each):
            with unit_of_work(factory) as session:
                appended = storage.append(
                    session,
                    signer=signer,
                    entry_type=EntryType.SEARCH_RUN,
                    actor=ACTOR,
                    payload=PAYLOAD,
                    now=datetime.now(UTC),
                    state=state,
                )
            if state is not None:
                state.advance(appended.head)

    threads = [threading.Thread(target=work) for _ in range(writers)]
    for t in threads:
        t.start()
    barrier.wait()
    start = time.perf_counter()
    for t in threads:
        t.join()
    return each * writers / (time.perf_counter() - start)


def _pg(url: str) -> tuple[Engine, Callable[[], None]]:
    schema = f"ledger_bench_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin = make_engine(url)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    scoped = make_url(url).update_query_dict({"options": f"-csearch_path={schema}"})
    engine = make_engine(scoped.render_as_string(hide_password=False))

    def drop() -> None:
        engine.dispose()
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()

    return engine, drop


def main() -> None:
    """Run and print the table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="200 appends, 1 repeat")
    parser.add_argument("--appends", type=int, default=800)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    appends, repeats = (200, 1) if args.quick else (args.appends, args.repeats)

    with tempfile.TemporaryDirectory() as tmp:
        signer = generate_key(Path(tmp) / "key.pem", name="bench.example/ledger", passphrase=None)
        raw = statistics.median(raw_cost(signer, 500) for _ in range(3))
        backends: list[tuple[str, Engine, Callable[[], None]]] = []
        sqlite = make_engine(f"sqlite:///{Path(tmp) / 'bench.sqlite'}")
        backends.append(("sqlite (WAL, sync=FULL)", sqlite, sqlite.dispose))
        pg_url = os.environ.get("FACEWARDEN_TEST_DATABASE_URL")
        if pg_url:
            engine, drop = _pg(pg_url)
            backends.append(("postgresql", engine, drop))
        print(
            f"raw canonicalize+sign+hash+checkpoint-sign: {raw * 1e6:.0f} us/entry "
            f"= {1 / raw:,.0f} entries/s (one core, no database)"
        )
        print(
            f"{'backend':<26}{'state':>6}{'writers':>8}{'appends':>9}{'median/s':>10}"
            f"{'min/s':>9}{'max/s':>9}{'us/append':>11}{'x raw':>8}"
        )
        state = SignerState(Path(tmp) / "ledger-signer-state.json")
        for label, engine, close in backends:
            for writers in (1, 8):
                for kept in (None, state):
                    rates = [run(engine, signer, writers, appends, kept) for _ in range(repeats)]
                    median = statistics.median(rates)
                    print(
                        f"{label:<26}{'on' if kept else 'off':>6}{writers:>8}{appends:>9}"
                        f"{median:>10,.0f}{min(rates):>9,.0f}{max(rates):>9,.0f}"
                        f"{1e6 / median:>11,.0f}{(1 / median) / raw:>8.1f}"
                    )
            close()


if __name__ == "__main__":
    main()
