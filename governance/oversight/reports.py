"""Reading the ledger for oversight bodies: entries, proofs, checkpoints, keys, and the
accountability report recomputed from the entries (``ledger.report``, the verifier's code).

Read-only services over a unit of work; the signed checkpoint and the verifier keys are public,
the rest needs ``ledger:read`` or ``report:read``.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from governance.core.errors import InvalidInput, NotFound
from governance.core.work import Work
from governance.identity.permissions import Permission
from governance.identity.principals import Principal, require_scope
from ledger import storage
from ledger.audit import load_records
from ledger.cosigned import latest_cosigned
from ledger.report import build_report, normalize_bound
from ledger.tiles import Tile, TileError, parse_tile_path

__all__ = [
    "MAX_PAGE",
    "ConsistencyProof",
    "EntryPage",
    "InclusionProof",
    "LedgerKey",
    "accountability_report",
    "checkpoint_at",
    "consistency",
    "entry",
    "entry_bundle",
    "entry_page",
    "hash_tile",
    "inclusion",
    "latest_checkpoint",
    "ledger_keys",
]

MAX_PAGE = 1000


@dataclass(frozen=True, slots=True)
class LedgerKey:
    """A verifier key of the rotation chain and the first seq it signs."""

    key: str
    key_id: str
    since_seq: int


@dataclass(frozen=True, slots=True)
class EntryPage:
    """Entries ``[start, end)`` of a log of ``tree_size``; ``next_start`` when more remain."""

    start: int
    end: int
    tree_size: int
    lines: tuple[bytes, ...]
    complete: bool  # the caller asked for no entry past the log's end
    next_start: int | None


@dataclass(frozen=True, slots=True)
class InclusionProof:
    """RFC 6962 §2.1.1 audit path of entry ``seq`` in the tree of ``tree_size``."""

    seq: int
    tree_size: int
    leaf_hash: bytes
    root: bytes
    proof: tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class ConsistencyProof:
    """RFC 6962 §2.1.2 proof that the tree of ``first`` is a prefix of the tree of ``second``."""

    first: int
    second: int
    first_root: bytes
    second_root: bytes
    proof: tuple[bytes, ...]


def latest_checkpoint(work: Work, *, witnesses: Collection[str] = (), quorum: int = 0) -> str:
    """The latest signed checkpoint note; with ``witnesses``, the newest one that ``quorum`` of
    them cosigned, with their cosignature lines (a newer one waits for its cosignatures; before
    the first is cosigned, the newest uncosigned). Raises NotFound while the log is empty."""
    if witnesses:
        cosigned = latest_cosigned(work.session, witnesses, quorum)
        if cosigned is not None:
            return cosigned.note
    note = storage.latest_checkpoint(work.session)
    if note is None:
        raise NotFound("The ledger is empty: nothing has been signed yet.", code="ledger-empty")
    return note


def checkpoint_at(work: Work, *, size: int) -> str:
    """The signed checkpoint of ``size`` entries. Raises NotFound when there is none."""
    found = storage.checkpoint_notes(work.session, [size])
    if size not in found:
        raise NotFound(f"No checkpoint of size {size}.", code="checkpoint-not-found")
    return found[size]


def ledger_keys(work: Work) -> list[LedgerKey]:
    """The verifier keys of the rotation chain, oldest first."""
    rows = work.session.execute(
        select(storage.keys.c.vkey, storage.keys.c.key_id, storage.keys.c.since_seq).order_by(
            storage.keys.c.since_seq
        )
    )
    return [LedgerKey(str(v), str(k), int(s)) for v, k, s in rows]


def entry_page(
    work: Work, *, principal: Principal, start: int, end: int | None, limit: int = MAX_PAGE
) -> EntryPage:
    """Entries from ``start`` up to ``end`` (default: the log's end), at most ``limit``.

    Raises PermissionDenied, InvalidInput (end before start), NotFound (start past the end).
    """
    require_scope(principal, Permission.LEDGER_READ)
    size = storage.tree_size(work.session)
    if end is not None and end < start:
        raise InvalidInput(
            "`end` is before `start`.", fields={"end": ["Must not be less than start."]}
        )
    if start > size:
        raise NotFound(f"The log holds {size} entries; start {start} is past its end.")
    wanted = size if end is None else end
    stop = min(wanted, size, start + limit)
    lines = storage.entry_bytes(work.session, start, stop)
    more = stop < min(wanted, size)
    return EntryPage(
        start=start,
        end=stop,
        tree_size=size,
        lines=tuple(lines),
        complete=end is not None and end <= size and stop == end,
        next_start=stop if more else None,
    )


def entry(work: Work, *, principal: Principal, seq: int) -> bytes:
    """The canonical bytes of entry ``seq``. Raises PermissionDenied, NotFound."""
    require_scope(principal, Permission.LEDGER_READ)
    if seq >= storage.tree_size(work.session):
        raise NotFound(f"No entry {seq} in the log.", code="entry-not-found")
    return storage.entry_bytes(work.session, seq, seq + 1)[0]


def hash_tile(work: Work, *, path: str) -> bytes:
    """The C2SP hash tile at ``tile/<path>`` (``<L>/<N>[.p/<W>]``): public, it holds only
    hashes.

    Raises NotFound for a path that is not a tile's canonical path or a tile not grown yet.
    """
    tile = _tile(path, entries=False)
    try:
        return storage.hash_tile(work.session, tile)
    except storage.LedgerRangeError as exc:
        raise NotFound(f"{exc}: the log is smaller.", code="tile-not-found") from exc


def entry_bundle(work: Work, *, principal: Principal, path: str) -> bytes:
    """The C2SP entry bundle at ``tile/entries/<path>`` (``<N>[.p/<W>]``): entries are
    ``ledger:read``.

    Raises PermissionDenied, NotFound (as ``hash_tile``).
    """
    require_scope(principal, Permission.LEDGER_READ)
    tile = _tile(path, entries=True)
    try:
        return storage.entry_bundle(work.session, tile)
    except storage.LedgerRangeError as exc:
        raise NotFound(f"{exc}: the log is smaller.", code="tile-not-found") from exc


def _tile(path: str, *, entries: bool) -> Tile:
    try:
        tile = parse_tile_path("tile/" + ("entries/" if entries else "") + path)
    except TileError as exc:
        raise NotFound(
            f"{exc}. Tiles are tile/<L>/<N>[.p/<W>] and tile/entries/<N>[.p/<W>] "
            "(C2SP tlog-tiles).",
            code="tile-not-found",
        ) from exc
    if tile.entries != entries:
        raise NotFound(f"No tile at {path!r}.", code="tile-not-found")
    return tile


def _size_error(work: Work, size: int, name: str) -> None:
    if size > storage.tree_size(work.session):
        raise NotFound(f"The log is smaller than {name}={size}.", code="tree-size-not-reached")


def inclusion(work: Work, *, principal: Principal, seq: int, size: int) -> InclusionProof:
    """The inclusion proof of ``seq`` at ``size``.

    Raises PermissionDenied, InvalidInput (seq not below size), NotFound (size past the end).
    """
    require_scope(principal, Permission.LEDGER_READ)
    if seq >= size:
        raise InvalidInput("`seq` must be below `size`.", fields={"seq": ["Must be below size."]})
    _size_error(work, size, "size")
    proof = storage.inclusion_proof(work.session, seq=seq, size=size)
    row = work.session.execute(
        select(storage.entries.c.leaf_hash).where(storage.entries.c.seq == seq)
    ).scalar_one()
    return InclusionProof(seq, size, bytes(row), storage.root_at(work.session, size), tuple(proof))


def consistency(work: Work, *, principal: Principal, first: int, second: int) -> ConsistencyProof:
    """The consistency proof from ``first`` to ``second``.

    Raises PermissionDenied, InvalidInput (from after to), NotFound (to past the end).
    """
    require_scope(principal, Permission.LEDGER_READ)
    if first > second:
        raise InvalidInput(
            "`from` is after `to`.", fields={"from": ["Must not be greater than to."]}
        )
    _size_error(work, second, "to")
    proof = storage.consistency_proof(work.session, first=first, second=second)
    return ConsistencyProof(
        first,
        second,
        storage.root_at(work.session, first),
        storage.root_at(work.session, second),
        tuple(proof),
    )


def accountability_report(
    work: Work, *, principal: Principal, start: str | None, end: str | None
) -> dict[str, Any]:
    """The accountability figures recomputed from the ledger's entries (``ledger.report``).

    Raises PermissionDenied, InvalidInput (a bound that is not an ISO 8601 date or time).
    """
    require_scope(principal, Permission.OVERSIGHT_REPORT)
    for name, value in (("from", start), ("to", end)):
        try:
            normalize_bound(value)
        except ValueError as exc:
            raise InvalidInput(
                f"`{name}` is not an ISO 8601 date or time.", fields={name: [str(exc)]}
            ) from exc
    size = storage.tree_size(work.session)
    lines: list[bytes] = []
    for at in range(0, size, 10_000):
        lines += storage.entry_bytes(work.session, at, min(size, at + 10_000))
    return build_report(load_records(lines), start=start, end=end)
