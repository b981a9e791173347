"""C2SP tlog-tiles: the log's Merkle tree and entries as static, cacheable resources.

A hash tile at level ``L`` and index ``N`` is the run of up to 256 consecutive hashes at tree
height ``8 * L`` starting at ``N * 256``: level 0 holds leaf hashes, and each hash of a higher
level is the root of a full tile below it. The rightmost tile of a level is partial (``.p/W``)
and is never hashed into the level above. Entry bundles carry the entries of a level-0 tile,
each prefixed by its big-endian uint16 length.

``TileHashes`` is the client side: it reads the tiles a tree of one checkpoint needs and
authenticates every one before it uses a hash from it. The partial tiles of the right edge
must fold into the checkpoint's root; every other (full) tile must hash to its slot in the
tile above. Proofs computed from authenticated tiles are then the RFC 6962 proofs, with no
trust in the server that served them. Imports only the standard library and ``ledger``'s pure
modules: the offline verifier uses it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from ledger.bundle import BundleError, HttpFetcher
from ledger.checkpoint import MalformedNote, parse_checkpoint, split_note
from ledger.entry import LedgerError
from ledger.hashing import EMPTY_ROOT, HASH_SIZE, fold_subtrees, node_hash
from ledger.proofs import (
    MemoryTree,
    NodeID,
    ProofPlan,
    consistency_plan,
    inclusion_plan,
    perfect_cover,
)

__all__ = [
    "MAX_LEVEL",
    "TILE_HEIGHT",
    "TILE_WIDTH",
    "Tile",
    "TileError",
    "TileFetcher",
    "TileHashes",
    "check_tiles",
    "encode_bundle",
    "parse_bundle",
    "parse_tile_path",
    "tile_width",
    "tiles_for_size",
]

TILE_HEIGHT = 8
TILE_WIDTH = 1 << TILE_HEIGHT
MAX_LEVEL = 63
# 3-digit groups of a tile index: 7 reach 10**21, past any 64-bit tree size (Go's tlog parses
# the index as an int64). More would be a number no log grows to, and a cost to parse.
MAX_INDEX_GROUPS = 7
ENTRIES = "entries"
OCTETS = "application/octet-stream"


class TileError(LedgerError):
    """A tile path that is not canonical, or a tile that does not match the tree it claims."""


@dataclass(frozen=True, slots=True, order=True)
class Tile:
    """Hash tile ``level``/``index`` of ``width`` hashes, or its entry bundle (``entries``)."""

    level: int
    index: int
    width: int = TILE_WIDTH
    entries: bool = False

    @property
    def partial(self) -> bool:
        return self.width < TILE_WIDTH

    @property
    def start(self) -> int:
        """The first position, at height ``8 * level``, that the tile holds."""
        return self.index * TILE_WIDTH

    @property
    def path(self) -> str:
        """``tile/<L>/<N>[.p/<W>]`` or ``tile/entries/<N>[.p/<W>]``, ``N`` in 3-digit groups."""
        digits = str(self.index)
        digits = "0" * (-len(digits) % 3) + digits
        groups = [digits[i : i + 3] for i in range(0, len(digits), 3)]
        index = "/".join([*("x" + g for g in groups[:-1]), groups[-1]])
        suffix = f".p/{self.width}" if self.partial else ""
        return f"tile/{ENTRIES if self.entries else self.level}/{index}{suffix}"


_LEVEL = re.compile(r"0|[1-9][0-9]?")
_WIDTH = re.compile(r"[1-9][0-9]{0,2}")


def parse_tile_path(path: str) -> Tile:
    """The tile a path names: ``tile/<L>/<N>[.p/<W>]`` or ``tile/entries/<N>[.p/<W>]``. Only
    the canonical encoding is accepted, so one tile has one path.

    Raises TileError.
    """
    first, *parts = path.split("/")
    if first != "tile" or len(parts) < 2:
        raise TileError(f"{path!r} is not a tile path: expected tile/<L>/<N>[.p/<W>]")
    head, *elements = parts
    if len(elements) > MAX_INDEX_GROUPS + 1:
        raise TileError(f"the tile index in {path!r} has more than {MAX_INDEX_GROUPS} groups")
    entries = head == ENTRIES
    if not entries and not (_LEVEL.fullmatch(head) and int(head) <= MAX_LEVEL):
        raise TileError(f"tile level {head!r} must be 0 to {MAX_LEVEL} or {ENTRIES!r}")
    width = TILE_WIDTH
    if len(elements) >= 2 and elements[-2].endswith(".p"):
        if not _WIDTH.fullmatch(elements[-1]) or int(elements[-1]) >= TILE_WIDTH:
            raise TileError(f"partial tile width {elements[-1]!r} must be 1 to {TILE_WIDTH - 1}")
        width = int(elements[-1])
        elements = [*elements[:-2], elements[-2].removesuffix(".p")]
    if len(elements) > MAX_INDEX_GROUPS:
        raise TileError(f"the tile index in {path!r} has more than {MAX_INDEX_GROUPS} groups")
    if not all(re.fullmatch(r"x[0-9]{3}", e) for e in elements[:-1]) or not re.fullmatch(
        r"[0-9]{3}", elements[-1]
    ):
        raise TileError(f"tile index in {path!r} must be 3-digit groups like x001/234")
    index = int("".join(e.removeprefix("x") for e in elements))
    tile = Tile(0 if entries else int(head), index, width, entries)
    if tile.path != path:
        raise TileError(f"{path!r} is not the canonical path of its tile ({tile.path})")
    return tile


def tile_width(size: int, level: int, index: int) -> int:
    """How many hashes tile ``level``/``index`` holds in a tree of ``size`` leaves (0: none)."""
    count = size >> (TILE_HEIGHT * level)
    return max(0, min(TILE_WIDTH, count - index * TILE_WIDTH))


def tiles_for_size(new: int, old: int = 0) -> list[Tile]:
    """The hash tiles that publishing the tree of ``new`` leaves adds to the tree of ``old``
    (every tile, from 0), level by level: the full tiles completed, then the level's partial
    tile at every width in between, since this log signs a checkpoint at every size. This is
    what ``NewTiles`` of golang.org/x/mod/sumdb/tlog lists."""
    tiles: list[Tile] = []
    level = 0
    while new >> (TILE_HEIGHT * level):
        old_count = old >> (TILE_HEIGHT * level)
        new_count = new >> (TILE_HEIGHT * level)
        last = new_count >> TILE_HEIGHT
        tiles += [Tile(level, n) for n in range(old_count >> TILE_HEIGHT, last)]
        start = last << TILE_HEIGHT
        narrowest = old_count - start if old_count > start else 1
        tiles += [Tile(level, last, w) for w in range(narrowest, new_count - start + 1)]
        level += 1
    return tiles


def encode_bundle(entries: Iterable[bytes]) -> bytes:
    """An entry bundle: each entry prefixed by its big-endian uint16 length."""
    out = bytearray()
    for entry in entries:
        if len(entry) >= 1 << 16:
            raise TileError(f"an entry of {len(entry)} bytes does not fit a bundle")
        out += len(entry).to_bytes(2, "big") + entry
    return bytes(out)


def parse_bundle(data: bytes, width: int) -> list[bytes]:
    """The ``width`` entries of a bundle. Raises TileError on any other shape."""
    entries, at = [], 0
    while at < len(data):
        if at + 2 > len(data):
            raise TileError("the entry bundle ends inside a length prefix")
        length = int.from_bytes(data[at : at + 2], "big")
        if at + 2 + length > len(data):
            raise TileError("the entry bundle ends inside an entry")
        entries.append(data[at + 2 : at + 2 + length])
        at += 2 + length
    if len(entries) != width:
        raise TileError(f"the entry bundle holds {len(entries)} entries, not {width}")
    return entries


def _split_hashes(data: bytes, width: int, tile: Tile) -> list[bytes]:
    if len(data) != width * HASH_SIZE:
        raise TileError(f"{tile.path} is {len(data)} bytes, not {width * HASH_SIZE}")
    return [data[i : i + HASH_SIZE] for i in range(0, len(data), HASH_SIZE)]


def _perfect_root(hashes: Sequence[bytes]) -> bytes:
    """The root of a perfect subtree over ``hashes`` (a power of two of them)."""
    level = list(hashes)
    while len(level) > 1:
        level = [node_hash(level[i], level[i + 1]) for i in range(0, len(level), 2)]
    return level[0]


def _range_subtrees(hashes: Sequence[bytes]) -> list[bytes]:
    """The perfect subtrees covering a tile's hashes, largest first (RFC 6962 §2.1)."""
    return [
        _perfect_root(hashes[n.index << n.level : (n.index + 1) << n.level])
        for n in perfect_cover(0, len(hashes))
    ]


class TileHashes:
    """The hashes of the tree of one checkpoint (``size``, ``root``), read from tiles.

    ``fetch`` returns a tile's bytes (raising LedgerError when it cannot). Every tile is
    authenticated before use: the right edge against the root at construction, the rest
    against the tile above. Raises TileError when a tile does not match.
    """

    def __init__(self, fetch: Callable[[Tile], bytes], *, size: int, root: bytes) -> None:
        self.size, self.root = size, root
        self._fetch = fetch
        self._tiles: dict[tuple[int, int], list[bytes]] = {}
        self._authenticate_edge()

    def _read(self, level: int, index: int) -> list[bytes]:
        width = tile_width(self.size, level, index)
        if not width:
            raise TileError(f"the tree of {self.size} has no tile {level}/{index}")
        tile = Tile(level, index, width)
        return _split_hashes(self._fetch(tile), width, tile)

    def _authenticate_edge(self) -> None:
        subtrees: list[bytes] = []
        level = 0
        while self.size >> (TILE_HEIGHT * level):
            index = self.size >> (TILE_HEIGHT * (level + 1))
            if tile_width(self.size, level, index):
                hashes = self._read(level, index)
                self._tiles[level, index] = hashes
                subtrees = _range_subtrees(hashes) + subtrees
            level += 1
        root = fold_subtrees(subtrees) if subtrees else EMPTY_ROOT
        if root != self.root:
            raise TileError(
                f"the right-edge tiles of the tree of {self.size} do not fold into its root"
            )

    def tile(self, level: int, index: int) -> list[bytes]:
        """Tile ``level``/``index`` of this tree, authenticated. Raises TileError."""
        found = self._tiles.get((level, index))
        if found is not None:
            return found
        hashes = self._read(level, index)
        # A tile that is not on the right edge is full, and its root is a hash one level up.
        above = self.tile(level + 1, index >> TILE_HEIGHT)
        if _perfect_root(hashes) != above[index % TILE_WIDTH]:
            raise TileError(
                f"tile {Tile(level, index).path} does not hash to its slot in the tile above"
            )
        self._tiles[level, index] = hashes
        return hashes

    def node(self, node: NodeID) -> bytes:
        """The hash of a perfect subtree of this tree."""
        level, rest = divmod(node.level, TILE_HEIGHT)
        first = node.index << rest
        hashes = self.tile(level, first >> TILE_HEIGHT)
        offset = first % TILE_WIDTH
        return _perfect_root(hashes[offset : offset + (1 << rest)])

    def _resolve(self, plan: ProofPlan) -> list[bytes]:
        return plan.resolve({n: self.node(n) for n in plan.node_ids()})

    def leaf_hashes(self, start: int, end: int) -> list[bytes]:
        """Leaf hashes ``[start, end)`` from the level-0 tiles."""
        out: list[bytes] = []
        for index in range(start >> TILE_HEIGHT, (end + TILE_WIDTH - 1) >> TILE_HEIGHT):
            hashes = self.tile(0, index)
            lo, hi = max(start - index * TILE_WIDTH, 0), min(end - index * TILE_WIDTH, len(hashes))
            out += hashes[lo:hi]
        return out

    def inclusion(self, index: int) -> list[bytes]:
        """The RFC 6962 inclusion proof of leaf ``index`` in this tree."""
        return self._resolve(inclusion_plan(index, self.size))

    def consistency(self, first: int) -> list[bytes]:
        """The RFC 6962 consistency proof from the tree of ``first`` leaves to this one."""
        return self._resolve(consistency_plan(first, self.size))


def check_tiles(fetch: Callable[[Tile], bytes], leaf_hashes: Sequence[bytes]) -> int:
    """Rebuild every hash tile of the tree over ``leaf_hashes`` and compare it with the served
    one (the full tiles and each level's partial tile); returns how many were compared.

    Raises TileError naming the first tile that differs.
    """
    tree = MemoryTree(leaf_hashes)
    size = tree.size
    tiles = [t for t in tiles_for_size(size) if t.width == tile_width(size, t.level, t.index)]
    for tile in tiles:
        rebuilt = b"".join(
            tree.node(NodeID(TILE_HEIGHT * tile.level, tile.start + i)) for i in range(tile.width)
        )
        if fetch(tile) != rebuilt:
            raise TileError(f"{tile.path} differs from the tile the entries rebuild")
    return len(tiles)


class TileFetcher(HttpFetcher):
    """A live log read from its C2SP tlog-tiles alone: the checkpoint, entry bundles and hash
    tiles under ``<base>/v1/ledger/``; proofs are computed here from authenticated tiles.

    Hash tiles are public; entry bundles need an API key with ``ledger:read``, as entries do.
    """

    def __init__(self, base_url: str, **options: Any) -> None:
        super().__init__(base_url, **options)
        self._roots: dict[int, bytes] = {}
        self._readers: dict[int, TileHashes] = {}
        self.fetched = 0

    def tile(self, tile: Tile) -> bytes:
        """GET one tile or entry bundle. Raises BundleError."""
        self.fetched += 1
        return self._get(f"/v1/ledger/{tile.path}", accept=OCTETS)

    def checkpoint(self) -> str:
        """The checkpoint; its root is kept to authenticate the tiles of its size."""
        note = super().checkpoint()
        try:
            latest = parse_checkpoint(split_note(note).text)
        except (MalformedNote, ValueError) as exc:
            raise BundleError(f"the checkpoint is malformed: {exc}") from exc
        self._roots[latest.size] = latest.root
        return note

    def hashes(self, size: int) -> TileHashes:
        """The tiles of the tree of ``size``, authenticated against the root of the checkpoint
        read for that size. Raises LedgerError."""
        if size not in self._readers:
            if size not in self._roots:
                raise BundleError(f"no checkpoint of size {size} was read to check tiles against")
            self._readers[size] = TileHashes(self.tile, size=size, root=self._roots[size])
        return self._readers[size]

    def entries(self, start: int, end: int) -> list[bytes]:
        """Entries ``[start, end)`` from the entry bundles of the tree of ``end`` entries."""
        lines: list[bytes] = []
        for index in range(start >> TILE_HEIGHT, (end + TILE_WIDTH - 1) >> TILE_HEIGHT):
            width = min(TILE_WIDTH, end - index * TILE_WIDTH)
            bundle = parse_bundle(self.tile(Tile(0, index, width, entries=True)), width)
            lines += bundle[max(start - index * TILE_WIDTH, 0) :]
        return lines

    def consistency(self, first: int, second: int) -> list[bytes]:
        return self.hashes(second).consistency(first)

    def inclusion(self, seq: int, size: int) -> list[bytes]:
        return self.hashes(size).inclusion(seq)
