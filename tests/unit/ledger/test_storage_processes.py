"""Several processes (as serve workers are) append to one ledger: no seq is taken twice."""

from __future__ import annotations

import multiprocessing
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from governance.core.db import make_engine, make_session_factory, unit_of_work
from ledger import storage
from ledger.bundle import BundleFetcher
from ledger.entry import Actor, EntryType, parse_entry
from ledger.keys import Signer, load_signer
from ledger.verify import verify_log
from tests.unit.ledger.conftest import NAME, LedgerDB

PROCESSES = 4
EACH = 60


def _worker(url: str, key_path: str, worker: int, start: multiprocessing.synchronize.Event) -> None:
    """Runs in its own process: its own engine, its own loaded key, appends in a loop."""
    engine = make_engine(url)
    factory = make_session_factory(engine)
    signer = load_signer(Path(key_path), name=NAME, passphrase=None)
    actor = Actor(kind="process", id=str(worker), agency=None)
    start.wait(30)
    for i in range(EACH):
        with unit_of_work(factory) as session:
            storage.append(
                session,
                signer=signer,
                entry_type=EntryType.SEARCH_RUN,
                actor=actor,
                payload={"worker": worker, "n": i},
                now=datetime.now(UTC),
            )
    engine.dispose()


@pytest.mark.slow
def test_processes_appending_concurrently_keep_the_log_contiguous_and_valid(
    ledger_db: LedgerDB, signer: Signer, key_path: Path, tmp_path: Path
) -> None:
    url = ledger_db.engine.url.render_as_string(hide_password=False)
    context = multiprocessing.get_context("spawn")
    start = context.Event()
    workers = [
        context.Process(target=_worker, args=(url, str(key_path), w, start))
        for w in range(PROCESSES)
    ]
    for p in workers:
        p.start()
    start.set()
    for p in workers:
        p.join(timeout=240)
    assert [p.exitcode for p in workers] == [0] * PROCESSES

    with unit_of_work(ledger_db.factory) as session:
        assert storage.tree_size(session) == PROCESSES * EACH
        seqs = session.execute(select(storage.entries.c.seq)).scalars().all()
        assert sorted(seqs) == list(range(PROCESSES * EACH))
        bodies = session.execute(select(storage.entries.c.body)).scalars().all()
        per_worker = Counter(parse_entry(bytes(b)).payload["worker"] for b in bodies)
        assert per_worker == dict.fromkeys(range(PROCESSES), EACH)
        storage.export_bundle(session, tmp_path / "bundle")
    report = verify_log(BundleFetcher(tmp_path / "bundle"), pinned=[signer.verifier_key])
    assert report.size == PROCESSES * EACH
