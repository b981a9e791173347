"""``ledger.compact.CompactRange`` against a naive recursive RFC 6962 tree, known answers and
the JSON vectors."""

from __future__ import annotations

import json
import random

import pytest

from ledger.compact import CompactRange
from ledger.hashing import EMPTY_ROOT, HASH_SIZE, leaf_hash, node_hash
from tests.conftest import REPO

from .test_hashing import LEAVES, ROOTS

VECTORS = json.loads((REPO / "tests" / "vectors" / "ledger_vectors.json").read_text("utf-8"))
RNG = random.Random(6962)
HASHES = [leaf_hash(b"leaf-%d" % i) for i in range(300)]


def _mth(hashes: list[bytes]) -> bytes:
    # RFC 6962 §2.1 MTH over leaf hashes, recursively: the reference the fast code must match.
    if not hashes:
        return EMPTY_ROOT
    if len(hashes) == 1:
        return hashes[0]
    k = 1 << ((len(hashes) - 1).bit_length() - 1)
    return node_hash(_mth(hashes[:k]), _mth(hashes[k:]))


def _grown(size: int) -> CompactRange:
    compact = CompactRange()
    compact.extend(HASHES[:size])
    return compact


@pytest.mark.parametrize("size", range(9))
def test_roots_for_sizes_0_to_8(size: int) -> None:
    compact = CompactRange()
    compact.extend(leaf_hash(x) for x in LEAVES[:size])
    assert compact.root().hex() == ROOTS[size]


@pytest.mark.parametrize("size", [0, 1, 2, 3, 255, 256, 257, 300, *RNG.sample(range(300), 40)])
def test_root_is_the_recursive_tree_head(size: int) -> None:
    compact = _grown(size)

    assert compact.size == size
    assert len(compact.hashes) == size.bit_count()
    assert compact.root() == _mth(HASHES[:size])


def test_the_vector_roots() -> None:
    leaves = [leaf_hash(bytes.fromhex(x)) for x in VECTORS["leaves"]]
    heads = {(c["size"], c["root"]) for c in VECTORS["inclusion"] if c["valid"]}
    heads |= {
        (c[size], c[f"{size}_root"])
        for c in VECTORS["consistency"]
        if c["valid"]
        for size in ("first", "second")
    }
    assert {size for size, _ in heads} == {1, 2, 3, 4, 5, 6, 7, 8, 12, 13}
    for size, root in sorted(heads):
        compact = CompactRange()
        compact.extend(leaves[:size])
        assert compact.root().hex() == root


def test_hashes_are_the_perfect_subtrees_largest_first() -> None:
    # 13 = 8 + 4 + 1: leaves [0, 8), [8, 12), [12, 13).
    assert _grown(13).hashes == (_mth(HASHES[:8]), _mth(HASHES[8:12]), HASHES[12])


@pytest.mark.parametrize("size", [0, 1, 6, 7, 13, 64, 127, 200])
def test_append_returns_the_completed_subtrees_bottom_up(size: int) -> None:
    compact = _grown(size)

    completed = compact.append(HASHES[size])

    # Leaf ``size`` completes one subtree per trailing 1 bit of ``size``, plus itself.
    widths = [1 << level for level in range(len(completed))]
    assert len(completed) == 1 + (size ^ (size + 1)).bit_length() - 1
    assert completed == [_mth(HASHES[size + 1 - w : size + 1]) for w in widths]
    assert compact.root() == _mth(HASHES[: size + 1])


@pytest.mark.parametrize("size", RNG.sample(range(1, 300), 20))
def test_a_stored_range_grows_like_the_original(size: int) -> None:
    stored = CompactRange.from_hashes(size, _grown(size).hashes)
    stored.extend(HASHES[size:])

    assert (stored.size, stored.root()) == (300, _mth(HASHES))
    assert stored.hashes == _grown(300).hashes


@pytest.mark.parametrize(
    ("size", "hashes", "message"),
    [
        (13, [HASHES[0]] * 2, "a tree of size 13 has 3 perfect subtrees, not 2"),
        (0, [HASHES[0]], "a tree of size 0 has 0 perfect subtrees, not 1"),
        (-1, [], "a tree of size -1 has 0 perfect subtrees, not 0"),
        (2, [b"short"], f"subtree hashes must be {HASH_SIZE} bytes"),
    ],
)
def test_from_hashes_refuses_a_range_of_another_size(
    size: int, hashes: list[bytes], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        CompactRange.from_hashes(size, hashes)
