"""The ledger in SQL: append-only tables, serialized appends in the caller's transaction, proofs.

Tables live on the ledger's own ``metadata``; the database itself refuses UPDATE and DELETE
(``guard_ddl``). Every append stores the perfect subtrees it completes, so roots and proofs of
any size cost one indexed query (RFC 6962 §2.1, planned by ``ledger.proofs``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    LargeBinary,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    and_,
    func,
    insert,
    or_,
    select,
    text,
)
from sqlalchemy.orm import Session

from ledger.bundle import (
    CHECKPOINT_FILE,
    CHECKPOINTS_DIR,
    ENTRIES_FILE,
    KEYS_FILE,
    BundleError,
    write_manifest,
)
from ledger.checkpoint import Checkpoint, MalformedNote, parse_verifier_key, sign_checkpoint
from ledger.compact import CompactRange
from ledger.entry import (
    GENESIS_PREV,
    Actor,
    EntrySigner,
    EntryType,
    LedgerError,
    build_entry,
    format_ts,
)
from ledger.hashing import EMPTY_ROOT, leaf_hash
from ledger.proofs import (
    NodeID,
    ProofPlan,
    completed_nodes,
    consistency_plan,
    inclusion_plan,
    perfect_cover,
    root_plan,
)
from ledger.signer_state import SignedHead, SignerState
from ledger.tiles import TILE_HEIGHT, Tile, encode_bundle, tile_width

__all__ = [
    "ADVISORY_LOCK_KEY",
    "LEDGER_TABLES",
    "Appended",
    "LedgerCorrupted",
    "LedgerRangeError",
    "StaleSigningKey",
    "append",
    "checkpoint_notes",
    "checkpoints",
    "consistency_proof",
    "cosignatures",
    "create_tables",
    "entries",
    "entry_bundle",
    "entry_bytes",
    "export_bundle",
    "guard_ddl",
    "hash_tile",
    "inclusion_proof",
    "key_history",
    "keys",
    "latest_checkpoint",
    "metadata",
    "nodes",
    "root_at",
    "tree_size",
]

# pg_advisory_xact_lock key serializing appends: ASCII "FWLEDGER" as a signed 64-bit integer.
ADVISORY_LOCK_KEY = int.from_bytes(b"FWLEDGER", "big", signed=True)

metadata = MetaData()

entries = Table(
    "ledger_entries",
    metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("body", LargeBinary, nullable=False),
    Column("leaf_hash", LargeBinary(32), nullable=False),
    Column("type", String(40), nullable=False),
    Column("ts", String(27), nullable=False),
    Column("key_id", String(8), nullable=False),
    CheckConstraint("seq >= 0", name="ledger_entries_seq_nonnegative"),
)
nodes = Table(
    "ledger_nodes",
    metadata,
    Column("level", SmallInteger, primary_key=True, autoincrement=False),
    Column("idx", BigInteger, primary_key=True, autoincrement=False),
    Column("hash", LargeBinary(32), nullable=False),
)
# The primary key on size is what stops the log from ever signing two roots for one size.
checkpoints = Table(
    "ledger_checkpoints",
    metadata,
    Column("size", BigInteger, primary_key=True, autoincrement=False),
    Column("root", LargeBinary(32), nullable=False),
    Column("key_id", String(8), nullable=False),
    Column("note", Text, nullable=False),
)
# Signing keys in order; a key is current from since_seq on. Rotation only ever inserts here.
keys = Table(
    "ledger_keys",
    metadata,
    Column("since_seq", BigInteger, primary_key=True, autoincrement=False),
    Column("key_id", String(8), nullable=False, unique=True),
    Column("vkey", Text, nullable=False),
)
LEDGER_TABLES = ("ledger_entries", "ledger_nodes", "ledger_checkpoints", "ledger_keys")
# Witnesses' cosignature lines by checkpoint size (ledger.cosigned). Not append-only-guarded:
# each line proves itself, so a lost row loses evidence the witness also holds.
cosignatures = Table(
    "ledger_cosignatures",
    metadata,
    Column("size", BigInteger, primary_key=True, autoincrement=False),
    Column("witness", String(255), primary_key=True),
    Column("key_id", String(8), nullable=False),
    Column("timestamp", BigInteger, nullable=False),
    Column("line", Text, nullable=False),
)

# An append's statements, built once: building a statement costs more than running it.
_HEAD = select(entries.c.seq, entries.c.body, entries.c.ts).order_by(entries.c.seq.desc()).limit(1)
_CURRENT_KEY = select(keys.c.key_id, keys.c.vkey).order_by(keys.c.since_seq.desc()).limit(1)
_INSERT_ENTRY = insert(entries)
_INSERT_NODES = insert(nodes)
_INSERT_CHECKPOINT = insert(checkpoints)


class StaleSigningKey(LedgerError):
    """This process signs with a key the ledger has rotated away from: reload the key file."""


class LedgerCorrupted(LedgerError):
    """The stored tree lacks a node it must have."""


class LedgerRangeError(LedgerError, ValueError):
    """A size, sequence number or range outside the log."""


@dataclass(frozen=True, slots=True)
class Appended:
    """What an append produced: the entry's seq, leaf hash and bytes, the new checkpoint, and
    the entry's inclusion proof in that checkpoint's tree (its audit path, RFC 6962 2.1.1)."""

    seq: int
    leaf_hash: bytes
    entry: bytes
    checkpoint: str
    root: bytes
    inclusion: tuple[bytes, ...] = ()
    origin: str = ""

    @property
    def head(self) -> SignedHead:
        """The checkpoint this append signed, as the signer state records it."""
        return SignedHead(origin=self.origin, size=self.seq + 1, root=self.root)


@dataclass(frozen=True, slots=True)
class _Frontier:
    """The compact range of a log of ``size`` entries whose last body hashes to ``head``: what
    the next append merges its leaf with."""

    size: int
    head: str
    hashes: tuple[bytes, ...]


class _FrontierCache:
    """The frontier this process's last append left, so the next append need not read it.

    Sound across processes and databases: each entry holds the SHA-256 of the one before, so
    the last body's hash commits to the whole log, and a frontier is used only for the log
    whose size and last-body hash it was computed for. After a rolled-back append, or another
    writer's append, the head differs and the nodes are read from the database instead.
    """

    def __init__(self) -> None:
        self._last: _Frontier | None = None

    def get(self, size: int, head: str) -> CompactRange | None:
        last = self._last
        if last is None or (last.size, last.head) != (size, head):
            return None
        return CompactRange.from_hashes(size, last.hashes)

    def put(self, frontier: _Frontier) -> None:
        self._last = frontier


_FRONTIERS = _FrontierCache()


def guard_ddl(dialect_name: str) -> list[str]:
    """DDL that makes the database refuse UPDATE and DELETE (and TRUNCATE) on ledger tables.

    Raises ValueError for a dialect other than ``sqlite`` or ``postgresql``.
    """
    statements: list[str] = []
    if dialect_name == "sqlite":
        for table in LEDGER_TABLES:
            for op in ("UPDATE", "DELETE"):
                statements.append(
                    f"CREATE TRIGGER {table}_no_{op.lower()} BEFORE {op} ON {table} "
                    f"BEGIN SELECT RAISE(ABORT, '{table} is append-only: {op} refused'); END"
                )
        return statements
    if dialect_name == "postgresql":
        statements.append(
            "CREATE OR REPLACE FUNCTION ledger_refuse_change() RETURNS trigger "
            "LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION '% is append-only: % refused', "
            "TG_TABLE_NAME, TG_OP USING ERRCODE = 'insufficient_privilege'; END $$"
        )
        for table in LEDGER_TABLES:
            statements.append(
                f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change()"
            )
            statements.append(
                f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
                "FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_change()"
            )
        return statements
    raise ValueError(f"no append-only guard for dialect {dialect_name!r}")


def _lock(session: Session) -> None:
    # SQLite: the engine began this transaction with BEGIN IMMEDIATE, so it already holds the
    # database write lock. PostgreSQL: one advisory lock, released at commit or rollback.
    if session.get_bind().dialect.name == "postgresql":
        session.execute(select(func.pg_advisory_xact_lock(ADVISORY_LOCK_KEY)))


def _fetch_nodes(session: Session, ids: Iterable[NodeID]) -> dict[NodeID, bytes]:
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    by_level: dict[int, list[int]] = {}
    for n in wanted:
        by_level.setdefault(n.level, []).append(n.index)
    # One query; per-level ``level = ? AND idx IN (...)`` terms let SQLite use the primary key
    # index, which it does not for a row-value IN list.
    rows = session.execute(
        select(nodes.c.level, nodes.c.idx, nodes.c.hash).where(
            or_(*(and_(nodes.c.level == lv, nodes.c.idx.in_(ix)) for lv, ix in by_level.items()))
        )
    )
    found = {NodeID(level, idx): bytes(h) for level, idx, h in rows}
    if len(found) != len(wanted):
        missing = [n for n in wanted if n not in found]
        raise LedgerCorrupted(f"the tree lacks nodes {missing[:4]}")
    return found


def _resolve(session: Session, plan: ProofPlan) -> list[bytes]:
    return plan.resolve(_fetch_nodes(session, plan.node_ids()))


def tree_size(session: Session) -> int:
    """The number of entries in the log."""
    top = session.execute(select(func.max(entries.c.seq))).scalar_one_or_none()
    return 0 if top is None else int(top) + 1


def _check_size(session: Session, size: int) -> None:
    if size < 0 or size > tree_size(session):
        raise LedgerRangeError(f"size {size} is outside the log")


def root_at(session: Session, size: int) -> bytes:
    """The RFC 6962 tree head over the first ``size`` entries.

    Raises LedgerRangeError past the end of the log, LedgerCorrupted for a missing node.
    """
    _check_size(session, size)
    return _resolve(session, root_plan(size))[0] if size else EMPTY_ROOT


def inclusion_proof(session: Session, *, seq: int, size: int) -> list[bytes]:
    """The inclusion proof of entry ``seq`` in the tree of ``size`` entries.

    Raises LedgerRangeError unless ``0 <= seq < size <= tree size``; LedgerCorrupted.
    """
    return _prove(session, size, inclusion_plan, seq, size)


def consistency_proof(session: Session, *, first: int, second: int) -> list[bytes]:
    """The consistency proof from size ``first`` to size ``second``.

    Raises LedgerRangeError unless ``0 <= first <= second <= tree size``; LedgerCorrupted.
    """
    return _prove(session, second, consistency_plan, first, second)


def _prove(
    session: Session, size: int, plan: Callable[[int, int], ProofPlan], *args: int
) -> list[bytes]:
    # A proof within the tree of ``size`` entries; the planner refuses sizes RFC 6962 does not.
    _check_size(session, size)
    try:
        planned = plan(*args)
    except ValueError as exc:
        raise LedgerRangeError(str(exc)) from exc
    return _resolve(session, planned)


def latest_checkpoint(session: Session) -> str | None:
    """The signed note of the latest checkpoint, or None for an empty log."""
    row = session.execute(
        select(checkpoints.c.note).order_by(checkpoints.c.size.desc()).limit(1)
    ).first()
    return None if row is None else str(row[0])


def checkpoint_notes(session: Session, sizes: Iterable[int]) -> dict[int, str]:
    """The stored signed checkpoints for ``sizes`` (those that exist)."""
    wanted = sorted(set(sizes))
    found: dict[int, str] = {}
    for at in range(0, len(wanted), 500):
        rows = session.execute(
            select(checkpoints.c.size, checkpoints.c.note).where(
                checkpoints.c.size.in_(wanted[at : at + 500])
            )
        )
        found.update((int(size), str(note)) for size, note in rows)
    return found


def entry_bytes(session: Session, start: int, end: int) -> list[bytes]:
    """The canonical bytes of entries ``start`` (inclusive) to ``end`` (exclusive).

    Raises LedgerRangeError unless ``0 <= start <= end <= tree size``.
    """
    if not 0 <= start <= end:
        raise LedgerRangeError(f"bad range [{start}, {end})")
    _check_size(session, end)
    rows = session.execute(
        select(entries.c.body)
        .where(entries.c.seq >= start, entries.c.seq < end)
        .order_by(entries.c.seq)
    )
    return [bytes(body) for (body,) in rows]


def hash_tile(session: Session, tile: Tile) -> bytes:
    """The bytes of a C2SP hash tile: ``tile.width`` stored hashes at height ``8 * level``.

    Raises LedgerRangeError when the log has not grown that tile (at that width).
    """
    if tile.width > tile_width(tree_size(session), tile.level, tile.index):
        raise LedgerRangeError(f"the log has not grown {tile.path}")
    rows = session.execute(
        select(nodes.c.hash)
        .where(
            nodes.c.level == TILE_HEIGHT * tile.level,
            nodes.c.idx >= tile.start,
            nodes.c.idx < tile.start + tile.width,
        )
        .order_by(nodes.c.idx)
    ).all()
    if len(rows) != tile.width:
        raise LedgerCorrupted(f"the tree lacks hashes of {tile.path}")
    return b"".join(bytes(h) for (h,) in rows)


def entry_bundle(session: Session, tile: Tile) -> bytes:
    """A C2SP entry bundle: the canonical bytes of the tile's entries, length-prefixed.

    Raises LedgerRangeError when the log has not grown that bundle (at that width).
    """
    if tile.width > tile_width(tree_size(session), 0, tile.index):
        raise LedgerRangeError(f"the log has not grown {tile.path}")
    return encode_bundle(entry_bytes(session, tile.start, tile.start + tile.width))


def key_history(session: Session, *, size: int | None = None) -> list[str]:
    """The verifier keys of the rotation chain, oldest first.

    With ``size``, only the keys announced within the first ``size`` entries (what a bundle of
    that size must list).
    """
    query = select(keys.c.vkey).order_by(keys.c.since_seq)
    if size is not None:
        query = query.where(keys.c.since_seq <= size)
    return [str(vkey) for (vkey,) in session.execute(query)]


def _read_frontier(session: Session, size: int) -> CompactRange:
    cover = perfect_cover(0, size)
    found = _fetch_nodes(session, cover)
    return CompactRange.from_hashes(size, [found[n] for n in cover])


def _current_key(session: Session, signer: EntrySigner, seq: int) -> None:
    row = session.execute(_CURRENT_KEY).first()
    if row is None:
        if seq != 0:
            raise LedgerCorrupted("entries exist but no signing key is recorded")
        session.execute(
            insert(keys).values(since_seq=0, key_id=signer.key_id, vkey=signer.verifier_key)
        )
        return
    if row.key_id != signer.key_id:
        raise StaleSigningKey(
            f"the ledger's signing key is now {row.vkey}; this process holds key "
            f"{signer.key_id}, which was rotated out: reload the key file"
        )


def _record_rotation(
    session: Session, signer: EntrySigner, payload: Mapping[str, Any], seq: int
) -> None:
    try:
        new = parse_verifier_key(str(payload.get("new_key")))
    except MalformedNote as exc:
        raise LedgerError(f"key:rotate payload needs a valid new_key: {exc}") from exc
    if new.name != signer.name or new.key_id_hex == signer.key_id:
        raise LedgerError("key:rotate must name a different key under the same name")
    session.execute(insert(keys).values(since_seq=seq + 1, key_id=new.key_id_hex, vkey=new.vkey))


def append(
    session: Session,
    *,
    signer: EntrySigner,
    entry_type: EntryType,
    actor: Actor,
    payload: Mapping[str, Any],
    now: datetime,
    state: SignerState | None = None,
) -> Appended:
    """Append one signed entry and sign the new checkpoint, inside the caller's transaction.

    With ``state``, the tree the entry extends must contain the newest checkpoint the signer
    recorded there (``ledger.signer_state``), or nothing is signed; the caller records the new
    checkpoint in it once the transaction has committed (``Appended.head``).

    Never commits. ``ts`` is ``max(now, previous ts)`` so the log's clock never runs backwards
    when concurrent writers reach the lock out of order. On PostgreSQL the transaction must be
    READ COMMITTED (the default) so the reads after the advisory lock see the last append.
    Raises StaleSigningKey when ``signer`` was rotated out (reload the key and retry),
    LedgerInconsistent when the database's log does not extend what ``state`` holds,
    MalformedEntry for a payload an entry cannot hold, LedgerCorrupted, LedgerError.
    """
    _lock(session)
    last = session.execute(_HEAD).first()
    seq = 0 if last is None else int(last.seq) + 1
    prev = GENESIS_PREV if last is None else hashlib.sha256(bytes(last.body)).hexdigest()
    ts = format_ts(now)
    if last is not None and ts < last.ts:
        ts = str(last.ts)
    _current_key(session, signer, seq)

    entry = build_entry(
        seq=seq,
        ts=ts,
        entry_type=entry_type,
        actor=actor,
        payload=payload,
        prev=prev,
        signer=signer,
    )
    if entry.type is EntryType.KEY_ROTATE:
        _record_rotation(session, signer, entry.payload, seq)

    # The compact range of [0, seq) holds every left sibling the new leaf merges with.
    frontier = _FRONTIERS.get(seq, prev) if seq else CompactRange()
    if frontier is None:
        frontier = _read_frontier(session, seq)
    if state is not None:
        state.check(
            signer.name,
            seq,
            frontier.root(),
            lambda first, second: consistency_proof(session, first=first, second=second),
        )
    # The newest leaf's audit path is that range, smallest subtree first: the nodes just read,
    # so a receipt needs no second query.
    path = tuple(reversed(frontier.hashes))
    leaf = leaf_hash(entry.raw)
    new_nodes = dict(zip(completed_nodes(seq), frontier.append(leaf), strict=True))
    root = frontier.root()
    note = sign_checkpoint(Checkpoint(origin=signer.name, size=seq + 1, root=root), signer)

    session.execute(
        _INSERT_ENTRY,
        {
            "seq": seq,
            "body": entry.raw,
            "leaf_hash": leaf,
            "type": str(entry.type),
            "ts": ts,
            "key_id": signer.key_id,
        },
    )
    session.execute(
        _INSERT_NODES, [{"level": n.level, "idx": n.index, "hash": h} for n, h in new_nodes.items()]
    )
    session.execute(
        _INSERT_CHECKPOINT, {"size": seq + 1, "root": root, "key_id": signer.key_id, "note": note}
    )
    _FRONTIERS.put(
        _Frontier(size=seq + 1, head=hashlib.sha256(entry.raw).hexdigest(), hashes=frontier.hashes)
    )
    return Appended(
        seq=seq,
        leaf_hash=leaf,
        entry=entry.raw,
        checkpoint=note,
        root=root,
        inclusion=path,
        origin=signer.name,
    )


def create_tables(session: Session) -> None:
    """Create the ledger tables and their append-only guards (tests and fresh installs)."""
    connection = session.connection()
    metadata.create_all(connection)
    for statement in guard_ddl(connection.dialect.name):
        session.execute(text(statement))


def _exported_sizes(size: int, interval: int) -> list[int]:
    # Every power of two and every multiple of ``interval`` below ``size``: a handful of
    # earlier tree heads for step (4) of the verifier without one file per entry.
    sizes = {1 << k for k in range(size.bit_length()) if 1 << k < size}
    sizes.update(range(interval, size, interval))
    return sorted(sizes)


def export_bundle(session: Session, directory: Path, *, checkpoint_interval: int = 1024) -> int:
    """Write an offline bundle of the whole log to ``directory``; returns the tree size.

    Reads one consistent snapshot when the caller's transaction is REPEATABLE READ or
    SERIALIZABLE (PostgreSQL) or holds the SQLite lock; the checkpoint is read first, so
    entries appended meanwhile are simply not exported.
    Raises BundleError when the log is empty or ``directory`` exists and is not empty.
    """
    directory = Path(directory)
    if directory.exists() and any(directory.iterdir()):
        raise BundleError(f"{directory} is not empty")
    latest = session.execute(
        select(checkpoints.c.size, checkpoints.c.note).order_by(checkpoints.c.size.desc())
    ).first()
    if latest is None:
        raise BundleError("the ledger is empty: nothing to export")
    size, note = int(latest.size), str(latest.note)
    # The witnesses' cosignatures of that checkpoint, after the log's signature.
    note += "".join(
        session.scalars(
            select(cosignatures.c.line)
            .where(cosignatures.c.size == size)
            .order_by(cosignatures.c.witness)
        )
    )
    (directory / CHECKPOINTS_DIR).mkdir(parents=True, exist_ok=True)
    with (directory / ENTRIES_FILE).open("wb") as out:
        for start in range(0, size, 10_000):
            rows = session.execute(
                select(entries.c.body)
                .where(entries.c.seq >= start, entries.c.seq < min(size, start + 10_000))
                .order_by(entries.c.seq)
            )
            out.writelines(bytes(body) + b"\n" for (body,) in rows)
    (directory / CHECKPOINT_FILE).write_text(note, encoding="utf-8")
    earlier = checkpoint_notes(session, _exported_sizes(size, checkpoint_interval))
    for at, text_ in earlier.items():
        (directory / CHECKPOINTS_DIR / str(at)).write_text(text_, encoding="utf-8")
    (directory / KEYS_FILE).write_text("".join(k + "\n" for k in key_history(session, size=size)))
    origin = note.split("\n", 1)[0]
    write_manifest(directory, origin=origin, size=size)
    return size
