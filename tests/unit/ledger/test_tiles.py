"""C2SP tlog-tiles against the known answers of golang.org/x/mod/sumdb/tlog.

``tests/vectors/tlog_tiles.json`` was computed by Go's reference implementation
(``tests/vectors/tlog_tiles/main.go``): tile paths and the ``x001/234`` encoding, which paths
parse, which tiles each tree size publishes (partial tiles at every width), each tile's bytes
(as SHA-256), and inclusion and consistency proofs computed from tiles. Leaf ``i`` is
``b"leaf <i>"``. Where the Go toolchain and ``golang-golang-x-mod-dev`` are installed, the
answers are also recomputed and compared.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from ledger.hashing import leaf_hash
from ledger.proofs import MemoryTree, NodeID
from ledger.tiles import (
    TILE_HEIGHT,
    Tile,
    TileError,
    TileHashes,
    encode_bundle,
    parse_bundle,
    parse_tile_path,
    tiles_for_size,
)
from ledger.verify import verify_consistency, verify_inclusion

VECTORS = Path(__file__).parents[2] / "vectors"
ANSWERS = json.loads((VECTORS / "tlog_tiles.json").read_text(encoding="utf-8"))
GO_MOD_SOURCE = Path("/usr/share/gocode")


@cache
def _tree() -> MemoryTree:
    return MemoryTree(leaf_hash(f"leaf {i}".encode()) for i in range(70000))


def _tile_bytes(tree: MemoryTree, tile: Tile) -> bytes:
    return b"".join(
        tree.node(NodeID(TILE_HEIGHT * tile.level, tile.start + i)) for i in range(tile.width)
    )


def _reader(size: int, **tampered: bytes) -> TileHashes:
    tree = _tree()

    def fetch(tile: Tile) -> bytes:
        return tampered.get(tile.path) or _tile_bytes(tree, tile)

    return TileHashes(fetch, size=size, root=tree.root(size))


@pytest.mark.parametrize("case", ANSWERS["paths"], ids=lambda c: c["path"])
def test_a_tile_is_named_as_go_names_it(case: dict[str, Any]) -> None:
    tile = Tile(case["level"], case["index"], case["width"], case["entries"])
    assert tile.path == case["path"]
    assert parse_tile_path(case["path"]) == tile


@pytest.mark.parametrize("case", ANSWERS["parse"], ids=lambda c: c["path"])
def test_a_path_parses_exactly_when_go_parses_it(case: dict[str, Any]) -> None:
    if case["ok"]:
        assert parse_tile_path(case["path"]).path == case["path"]
    else:
        with pytest.raises(TileError):
            parse_tile_path(case["path"])


@pytest.mark.parametrize("case", ANSWERS["sizes"], ids=lambda c: str(c["size"]))
def test_each_size_publishes_go_s_tiles_with_go_s_bytes(case: dict[str, Any]) -> None:
    tree = _tree()
    tiles = tiles_for_size(case["size"])
    assert [t.path for t in tiles] == [t["path"] for t in case["tiles"]]
    digests = [hashlib.sha256(_tile_bytes(tree, t)).hexdigest() for t in tiles]
    assert digests == [t["sha256"] for t in case["tiles"]]
    assert tree.root(case["size"]).hex() == case["root"]


@pytest.mark.parametrize("case", ANSWERS["new_tiles"], ids=lambda c: f"{c['old']}-{c['new']}")
def test_growing_the_tree_publishes_the_tiles_go_publishes(case: dict[str, Any]) -> None:
    assert [t.path for t in tiles_for_size(case["new"], case["old"])] == case["paths"]


@pytest.mark.parametrize("case", ANSWERS["inclusion"], ids=lambda c: f"{c['index']}@{c['size']}")
def test_an_inclusion_proof_from_tiles_is_go_s(case: dict[str, Any]) -> None:
    size, index = case["size"], case["index"]
    proof = _reader(size).inclusion(index)
    assert [p.hex() for p in proof] == case["proof"]
    verify_inclusion(index, size, _tree().node(NodeID(0, index)), proof, _tree().root(size))


@pytest.mark.parametrize("case", ANSWERS["consistency"], ids=lambda c: f"{c['first']}-{c['size']}")
def test_a_consistency_proof_from_tiles_is_go_s(case: dict[str, Any]) -> None:
    first, size = case["first"], case["size"]
    proof = _reader(size).consistency(first)
    assert [p.hex() for p in proof] == case["proof"]
    tree = _tree()
    verify_consistency(first, size, tree.root(first), tree.root(size), proof)


def test_leaf_hashes_come_from_the_level_0_tiles() -> None:
    tree = _tree()
    assert _reader(70000).leaf_hashes(250, 70000) == [
        tree.node(NodeID(0, i)) for i in range(250, 70000)
    ]


@pytest.mark.parametrize(
    ("path", "why"),
    [
        ("tile/0/273.p/112", "the right edge"),  # folds into the root
        ("tile/2/000.p/1", "the top of the tree"),
        ("tile/0/005", "an interior tile"),  # hashes to its slot in tile/1/000
        ("tile/1/000", "an interior tile one level up"),
    ],
)
def test_a_forged_tile_is_refused(path: str, why: str) -> None:
    tile = parse_tile_path(path)
    forged = bytearray(_tile_bytes(_tree(), tile))
    forged[7] ^= 1
    with pytest.raises(TileError):
        reader = _reader(70000, **{path: bytes(forged)})
        reader.inclusion(5 * 256 + 3)
        reader.leaf_hashes(0, 70000)


@pytest.mark.parametrize(
    "path",
    [
        "0/000",  # without tile/
        "tile/tile/0/000",  # one tile, one path
        "tile/0/" + "x001/" * 7 + "000",  # an index past any 64-bit size
        "tile/0/" + "x999/" * 2500 + "999",  # past Python's int digit limit: no ValueError
    ],
)
def test_a_path_no_log_serves_is_refused_cheaply(path: str) -> None:
    with pytest.raises(TileError):
        parse_tile_path(path)


def test_a_tile_of_the_wrong_length_is_refused() -> None:
    with pytest.raises(TileError, match="bytes, not"):
        _reader(300, **{"tile/0/001.p/44": b"\0" * 32 * 43})


def test_an_entry_bundle_round_trips_and_refuses_any_other_shape() -> None:
    entries = [b"{}", b"", b"x" * 16384]
    data = encode_bundle(entries)
    assert parse_bundle(data, 3) == entries
    for bad, width in ((data, 2), (data[:-1], 3), (data + b"\0", 3)):
        with pytest.raises(TileError):
            parse_bundle(bad, width)


@pytest.mark.skipif(
    shutil.which("go") is None or not (GO_MOD_SOURCE / "src/golang.org/x/mod/sumdb/tlog").is_dir(),
    reason="the Go toolchain and golang.org/x/mod are not installed "
    "(Debian: golang-go golang-golang-x-mod-dev)",
)
def test_the_known_answers_are_what_go_computes(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "GO111MODULE": "off",
        "GOPATH": str(GO_MOD_SOURCE),
        "GOCACHE": str(tmp_path / "cache"),
    }
    ran = subprocess.run(
        ["go", "run", str(VECTORS / "tlog_tiles" / "main.go")],
        env=env,
        capture_output=True,
        check=True,
        timeout=300,
    )
    assert json.loads(ran.stdout) == ANSWERS
