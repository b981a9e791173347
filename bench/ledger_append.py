"""Ledger append throughput with durable commits, next to two baselines of the same run: the raw
canonicalize+hash+sign cost, and the raw durable commit of each database.

Prints one table: SQLite (WAL, synchronous=FULL) and PostgreSQL (when
FACEWARDEN_TEST_DATABASE_URL is set), 1 writer and 8 concurrent writers, median of --repeats,
each without and with the signer state (ledger/signer_state.py: the check before signing and
the fsync'd record after the commit, as the service runs). The raw commit is one 2 KB row
inserted and committed per transaction, on the same engine (so the same pragmas on SQLite and
the same synchronous_commit on PostgreSQL), one writer: what an append cannot go below.
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
from typing import Any

from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

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


def append_one(session: Session, signer: Signer, state: SignerState | None = None) -> Any:
    """The bench's append: one search:run entry and its checkpoint, in ``session``."""
    return storage.append(
        session,
        signer=signer,
        entry_type=EntryType.SEARCH_RUN,
        actor=ACTOR,
        payload=PAYLOAD,
        now=datetime.now(UTC),
        state=state,
    )


def raw_commit(engine: Engine, n: int) -> float:
    """Durable commits per second on ``engine``: one 2 KB row per transaction, one writer."""
    row = os.urandom(1024).hex()  # 2 KB of text, about an entry's size with its checkpoint
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE IF EXISTS bench_raw_commit"))
        conn.execute(text("CREATE TABLE bench_raw_commit (id INTEGER PRIMARY KEY, body TEXT)"))
    try:
        start = time.perf_counter()
        for i in range(n):
            with engine.begin() as conn:
                conn.execute(
                    text("INSERT INTO bench_raw_commit (id, body) VALUES (:id, :body)"),
                    {"id": i, "body": row},
                )
        return n / (time.perf_counter() - start)
    finally:
        with engine.begin() as conn:
            conn.execute(text("DROP TABLE bench_raw_commit"))


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
                appended = append_one(session, signer, state)
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


def profile(engine: Engine, signer: Signer, n: int) -> dict[str, float]:
    """Where one writer's append goes, per append: statements and round trips to the database,
    milliseconds in them, in the commit, in signing (the entry and the checkpoint), and the
    rest (Python: the ORM session, canonical JSON, the frontier)."""
    from sqlalchemy import event

    import ledger.storage as module

    factory = make_session_factory(engine)
    with unit_of_work(factory) as session:
        storage.metadata.drop_all(session.connection())
        storage.create_tables(session)
    spent = {"statements": 0.0, "sql": 0.0, "commit": 0.0, "sign": 0.0}
    started: list[float] = []

    def before(*_args: object) -> None:
        started.append(time.perf_counter())

    def after(*_args: object) -> None:
        spent["sql"] += time.perf_counter() - started.pop()
        spent["statements"] += 1

    def signing(fn: Callable[..., object]) -> Callable[..., object]:
        def wrapper(*args: object, **kwargs: object) -> object:
            begun = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                spent["sign"] += time.perf_counter() - begun

        return wrapper

    event.listen(engine, "before_cursor_execute", before)
    event.listen(engine, "after_cursor_execute", after)
    kept = module.build_entry, module.sign_checkpoint
    module.build_entry = signing(module.build_entry)
    module.sign_checkpoint = signing(module.sign_checkpoint)
    try:
        total = 0.0
        for _ in range(n):
            begun = time.perf_counter()
            session = factory()
            try:
                append_one(session, signer)
                committing = time.perf_counter()
                session.commit()
                spent["commit"] += time.perf_counter() - committing
            finally:
                session.close()
            total += time.perf_counter() - begun
    finally:
        module.build_entry, module.sign_checkpoint = kept
        event.remove(engine, "before_cursor_execute", before)
        event.remove(engine, "after_cursor_execute", after)
    per = {name: value / n for name, value in spent.items()}
    per["total"] = total / n
    per["rest"] = per["total"] - per["sql"] - per["commit"] - per["sign"]
    return per


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
    parser.add_argument(
        "--profile", action="store_true", help="where one writer's append goes, then stop"
    )
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
        if args.profile:
            print(f"{'backend':<26}{'stmts':>6}{'sql ms':>8}{'commit':>8}{'sign':>7}{'rest':>7}")
            for label, engine, close in backends:
                runs = [profile(engine, signer, appends) for _ in range(repeats)]
                per = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
                print(
                    f"{label:<26}{per['statements']:>6.0f}{per['sql'] * 1e3:>8.2f}"
                    f"{per['commit'] * 1e3:>8.2f}{per['sign'] * 1e3:>7.2f}{per['rest'] * 1e3:>7.2f}"
                    f"   total {per['total'] * 1e3:.2f} ms per append"
                )
                close()
            return
        print(
            f"raw canonicalize+sign+hash+checkpoint-sign: {raw * 1e6:.0f} us/entry "
            f"= {1 / raw:,.0f} entries/s (one core, no database)"
        )
        print(
            f"{'backend':<26}{'state':>6}{'writers':>8}{'appends':>9}{'median/s':>10}"
            f"{'min/s':>9}{'max/s':>9}{'us/append':>11}{'x raw':>8}{'/ commit':>10}"
        )
        state = SignerState(Path(tmp) / "ledger-signer-state.json")
        for label, engine, close in backends:
            commits = statistics.median(raw_commit(engine, appends) for _ in range(repeats))
            print(
                f"{label:<26}{'raw durable commit, 1 writer':>32}{commits:>10,.0f}"
                f"{'':>18}{1e6 / commits:>11,.0f}{'':>8}{1.0:>10.2f}"
            )
            for writers in (1, 8):
                for kept in (None, state):
                    rates = [run(engine, signer, writers, appends, kept) for _ in range(repeats)]
                    median = statistics.median(rates)
                    print(
                        f"{label:<26}{'on' if kept else 'off':>6}{writers:>8}{appends:>9}"
                        f"{median:>10,.0f}{min(rates):>9,.0f}{max(rates):>9,.0f}"
                        f"{1e6 / median:>11,.0f}{(1 / median) / raw:>8.1f}"
                        f"{median / commits:>10.2f}"
                    )
            close()


if __name__ == "__main__":
    main()
