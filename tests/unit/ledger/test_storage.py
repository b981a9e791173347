"""SQL storage: appends, O(log n) proofs, database-enforced append-only tables, concurrency."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import threading
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import delete, insert, select, text, update
from sqlalchemy.exc import DBAPIError, IntegrityError

from governance.core.db import make_engine, make_session_factory, unit_of_work
from ledger import storage
from ledger.bundle import BundleFetcher
from ledger.checkpoint import open_note, parse_checkpoint, parse_verifier_key
from ledger.entry import EntryType, parse_entry
from ledger.hashing import EMPTY_ROOT
from ledger.keys import Signer
from ledger.proofs import MemoryTree, NodeID
from ledger.tiles import parse_bundle, parse_tile_path
from ledger.verify import verify_consistency, verify_inclusion, verify_log
from tests.conftest import REPO

from .conftest import ACTOR, T0, LedgerDB, fill

MIGRATIONS = [
    REPO / "governance" / "migrations" / "versions" / name
    for name in ("0001_ledger.py", "0012_cosignatures.py")
]


def test_append_returns_entry_leaf_and_signed_checkpoint(
    ledger_db: LedgerDB, signer: Signer
) -> None:
    first, second = fill(ledger_db, signer, 2)
    assert (first.seq, second.seq) == (0, 1)
    entry = parse_entry(second.entry)
    assert entry.seq == 1 and entry.key_id == signer.key_id
    text_, _ = open_note(second.checkpoint, [parse_verifier_key(signer.verifier_key)])
    checkpoint = parse_checkpoint(text_)
    assert (checkpoint.origin, checkpoint.size) == (signer.name, 2)
    assert checkpoint.root == second.root == MemoryTree([first.leaf_hash, second.leaf_hash]).root()
    with ledger_db.factory() as session:
        assert storage.tree_size(session) == 2
        assert storage.latest_checkpoint(session) == second.checkpoint
        assert storage.entry_bytes(session, 0, 2) == [first.entry, second.entry]
        assert storage.key_history(session) == [signer.verifier_key]


def test_empty_log(ledger_db: LedgerDB) -> None:
    with ledger_db.factory() as session:
        assert storage.tree_size(session) == 0
        assert storage.root_at(session, 0) == EMPTY_ROOT
        assert storage.latest_checkpoint(session) is None
        with pytest.raises(storage.LedgerRangeError):
            storage.root_at(session, 1)


def test_roots_and_proofs_for_every_size(ledger_db: LedgerDB, signer: Signer) -> None:
    appended = fill(ledger_db, signer, 37)
    tree = MemoryTree(a.leaf_hash for a in appended)
    with ledger_db.factory() as session:
        for size in range(1, 38):
            root = storage.root_at(session, size)
            assert root == tree.root(size) == appended[size - 1].root
            # The proof an append returns for its own entry, without another query.
            assert list(appended[size - 1].inclusion) == tree.inclusion(size - 1, size)
            for seq in range(size):
                proof = storage.inclusion_proof(session, seq=seq, size=size)
                assert proof == tree.inclusion(seq, size)
                verify_inclusion(seq, size, appended[seq].leaf_hash, proof, root)
            for first in range(size + 1):
                proof = storage.consistency_proof(session, first=first, second=size)
                assert proof == tree.consistency(first, size)
                verify_consistency(first, size, tree.root(first), root, proof)
        with pytest.raises(storage.LedgerRangeError):
            storage.inclusion_proof(session, seq=5, size=5)
        with pytest.raises(storage.LedgerRangeError):
            storage.consistency_proof(session, first=3, second=38)
        with pytest.raises(storage.LedgerRangeError):
            storage.entry_bytes(session, 3, 2)


def test_timestamps_never_run_backwards(ledger_db: LedgerDB, signer: Signer) -> None:
    fill(ledger_db, signer, 1)
    with unit_of_work(ledger_db.factory) as session:
        late = storage.append(
            session,
            signer=signer,
            entry_type=EntryType.SEARCH_RUN,
            actor=ACTOR,
            payload={},
            now=T0 - timedelta(hours=1),
        )
    assert parse_entry(late.entry).ts == "2026-11-27T18:07:05.123456Z"


def test_append_joins_the_callers_transaction(ledger_db: LedgerDB, signer: Signer) -> None:
    session = ledger_db.factory()
    storage.append(
        session, signer=signer, entry_type=EntryType.SEARCH_RUN, actor=ACTOR, payload={}, now=T0
    )
    session.rollback()
    session.close()
    with ledger_db.factory() as session:
        assert storage.tree_size(session) == 0
        assert session.execute(select(storage.keys)).all() == []


def _leaves(db: LedgerDB) -> list[bytes]:
    with db.factory() as session:
        rows = session.execute(select(storage.entries.c.leaf_hash).order_by(storage.entries.c.seq))
        return [bytes(h) for (h,) in rows]


def _append_one(db: LedgerDB, signer: Signer, payload: dict[str, object]) -> storage.Appended:
    with unit_of_work(db.factory) as session:
        return storage.append(
            session,
            signer=signer,
            entry_type=EntryType.SEARCH_RUN,
            actor=ACTOR,
            payload=payload,
            now=T0,
        )


def test_interleaved_logs_of_one_size_keep_their_own_trees(
    ledger_db: LedgerDB, signer: Signer, tmp_path: Path
) -> None:
    # An append reuses the frontier this process's last append left only for the same log:
    # two logs growing in step (same sizes, other entries) must never borrow each other's.
    engine = make_engine(f"sqlite:///{tmp_path / 'other.sqlite'}")
    other = LedgerDB("sqlite", engine, make_session_factory(engine))
    try:
        with unit_of_work(other.factory) as session:
            storage.create_tables(session)
        for i in range(12):
            for db, name in ((ledger_db, "one"), (other, "two")):
                appended = _append_one(db, signer, {"log": name, "i": i})
                tree = MemoryTree(_leaves(db))
                assert appended.seq == i and appended.root == tree.root()
                assert list(appended.inclusion) == tree.inclusion(i, i + 1)
    finally:
        engine.dispose()


def test_an_append_after_another_process_appended_reads_the_tree_again(
    ledger_db: LedgerDB, signer: Signer, key_path: Path
) -> None:
    fill(ledger_db, signer, 3)
    # This process appends at seq 3 and rolls back; another process then appends its own entry
    # at seq 3. The next append here must build on that entry, not on the rolled-back one.
    session = ledger_db.factory()
    storage.append(
        session, signer=signer, entry_type=EntryType.SEARCH_RUN, actor=ACTOR, payload={}, now=T0
    )
    session.rollback()
    session.close()
    url = ledger_db.engine.url.render_as_string(hide_password=False)
    script = (
        "import sys; from pathlib import Path\n"
        "from governance.core.db import make_engine, make_session_factory, unit_of_work\n"
        "from ledger import storage\n"
        "from ledger.keys import load_signer\n"
        "from tests.unit.ledger.conftest import ACTOR, NAME, T0\n"
        "signer = load_signer(Path(sys.argv[2]), name=NAME, passphrase=None)\n"
        "with unit_of_work(make_session_factory(make_engine(sys.argv[1]))) as session:\n"
        "    storage.append(session, signer=signer, entry_type='search:run', actor=ACTOR,\n"
        "                   payload={'by': 'another process'}, now=T0)\n"
    )
    subprocess.run([sys.executable, "-c", script, url, str(key_path)], check=True, cwd=REPO)
    appended = _append_one(ledger_db, signer, {"by": "this process"})
    tree = MemoryTree(_leaves(ledger_db))
    assert appended.seq == 4 and appended.root == tree.root()
    assert list(appended.inclusion) == tree.inclusion(4, 5)


@pytest.mark.parametrize(
    ("table", "where"),
    [
        ("ledger_entries", "seq = 0"),
        ("ledger_nodes", "level = 0"),
        ("ledger_checkpoints", "size = 1"),
        ("ledger_keys", "since_seq = 0"),
    ],
)
def test_database_refuses_update_and_delete(
    ledger_db: LedgerDB, signer: Signer, table: str, where: str
) -> None:
    fill(ledger_db, signer, 2)
    column = where.split(maxsplit=1)[0]
    for statement in (
        f"UPDATE {table} SET {column} = {column} WHERE {where}",
        f"DELETE FROM {table} WHERE {where}",
    ):
        with (
            pytest.raises(DBAPIError, match="append-only"),
            unit_of_work(ledger_db.factory) as session,
        ):
            session.execute(text(statement))
    if ledger_db.dialect == "postgresql":
        with (
            pytest.raises(DBAPIError, match="append-only"),
            unit_of_work(ledger_db.factory) as session,
        ):
            session.execute(text(f"TRUNCATE {table}"))
    with ledger_db.factory() as session:
        assert storage.tree_size(session) == 2


def test_orm_style_update_is_refused_too(ledger_db: LedgerDB, signer: Signer) -> None:
    fill(ledger_db, signer, 1)
    with pytest.raises(DBAPIError, match="append-only"), unit_of_work(ledger_db.factory) as s:
        s.execute(update(storage.entries).values(body=b"{}").where(storage.entries.c.seq == 0))
    with pytest.raises(DBAPIError, match="append-only"), unit_of_work(ledger_db.factory) as s:
        s.execute(delete(storage.checkpoints))


def test_one_root_per_size(ledger_db: LedgerDB, signer: Signer) -> None:
    fill(ledger_db, signer, 1)
    with pytest.raises(IntegrityError), unit_of_work(ledger_db.factory) as session:
        session.execute(
            insert(storage.checkpoints).values(
                size=1, root=b"\x00" * 32, key_id=signer.key_id, note="forged"
            )
        )


def test_guard_ddl_knows_its_dialects() -> None:
    with pytest.raises(ValueError, match="mysql"):
        storage.guard_ddl("mysql")


def _hammer(db: LedgerDB, signer: Signer, writers: int, each: int) -> list[BaseException]:
    errors: list[BaseException] = []
    barrier = threading.Barrier(writers)

    def work(worker: int) -> None:
        barrier.wait()
        try:
            for i in range(each):
                with unit_of_work(db.factory) as session:
                    storage.append(
                        session,
                        signer=signer,
                        entry_type=EntryType.THUMBNAIL_VIEW,
                        actor=ACTOR,
                        payload={"worker": worker, "i": i},
                        now=T0 + timedelta(milliseconds=i),
                    )
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return errors


@pytest.mark.slow
def test_eight_concurrent_writers_then_full_verification(
    ledger_db: LedgerDB, signer: Signer, tmp_path: Path
) -> None:
    assert _hammer(ledger_db, signer, writers=8, each=200) == []
    with ledger_db.factory() as session:
        assert storage.tree_size(session) == 1600
        rows = session.execute(select(storage.entries.c.body)).scalars().all()
        per_worker = Counter(parse_entry(bytes(r)).payload["worker"] for r in rows)
        assert per_worker == dict.fromkeys(range(8), 200)
        storage.export_bundle(session, tmp_path / "bundle")
    report = verify_log(BundleFetcher(tmp_path / "bundle"), pinned=[signer.verifier_key])
    assert report.size == 1600


def test_migration_matches_metadata_and_installs_guards(ledger_db: LedgerDB) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from alembic.operations import Operations

    migrations = []
    for path in MIGRATIONS:
        spec = importlib.util.spec_from_file_location(f"ledger_{path.stem}", path)
        assert spec is not None and spec.loader is not None
        migrations.append(importlib.util.module_from_spec(spec))
        spec.loader.exec_module(migrations[-1])

    with ledger_db.engine.begin() as conn:
        storage.metadata.drop_all(conn)
        if ledger_db.dialect == "postgresql":
            conn.execute(text("DROP FUNCTION ledger_refuse_change() CASCADE"))
        context = MigrationContext.configure(conn)
        with Operations.context(context):
            for migration in migrations:
                migration.upgrade()
        assert (
            compare_metadata(
                MigrationContext.configure(conn, opts={"compare_type": True}), storage.metadata
            )
            == []
        )
        conn.execute(insert(storage.keys).values(since_seq=0, key_id="00000000", vkey="k"))
    with pytest.raises(DBAPIError, match="append-only"), ledger_db.engine.begin() as conn:
        conn.execute(text("DELETE FROM ledger_keys"))


def test_tiles_are_the_stored_hashes_and_entries(ledger_db: LedgerDB, signer: Signer) -> None:
    appended = fill(ledger_db, signer, 300)
    tree = MemoryTree(a.leaf_hash for a in appended)
    with ledger_db.factory() as session:
        for path in ("tile/0/000", "tile/0/001.p/44", "tile/0/001.p/1", "tile/1/000.p/1"):
            tile = parse_tile_path(path)
            expected = b"".join(
                tree.node(NodeID(8 * tile.level, tile.start + i)) for i in range(tile.width)
            )
            assert storage.hash_tile(session, tile) == expected
        bundle = storage.entry_bundle(session, parse_tile_path("tile/entries/001.p/44"))
        assert parse_bundle(bundle, 44) == [a.entry for a in appended[256:]]
        for path in ("tile/0/001", "tile/0/001.p/45", "tile/1/000", "tile/entries/001"):
            with pytest.raises(storage.LedgerRangeError):
                tile = parse_tile_path(path)
                (storage.entry_bundle if tile.entries else storage.hash_tile)(session, tile)
