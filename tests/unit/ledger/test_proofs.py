"""Proof planning cross-checked against a naive recursive RFC 6962 tree, every size 1-300."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.hashing import leaf_hash, node_hash
from ledger.proofs import (
    MemoryTree,
    NodeID,
    append_siblings,
    completed_nodes,
    consistency_plan,
    inclusion_plan,
    perfect_cover,
    root_plan,
)
from ledger.verify import verify_consistency, verify_inclusion

MAX = 300
HASHES = [leaf_hash(hashlib.sha256(str(i).encode()).digest()) for i in range(MAX)]


# --- the naive reference: RFC 6962 §2.1 written as literally as possible -------------------
def _k(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def ref_mth(d: list[bytes]) -> bytes:
    if len(d) == 1:
        return d[0]
    k = _k(len(d))
    return node_hash(ref_mth(d[:k]), ref_mth(d[k:]))


def ref_path(m: int, d: list[bytes]) -> list[bytes]:
    if len(d) == 1:
        return []
    k = _k(len(d))
    if m < k:
        return [*ref_path(m, d[:k]), ref_mth(d[k:])]
    return [*ref_path(m - k, d[k:]), ref_mth(d[:k])]


def ref_subproof(m: int, d: list[bytes], b: bool) -> list[bytes]:
    n = len(d)
    if m == n:
        return [] if b else [ref_mth(d)]
    k = _k(n)
    if m <= k:
        return [*ref_subproof(m, d[:k], b), ref_mth(d[k:])]
    return [*ref_subproof(m - k, d[k:], False), ref_mth(d[:k])]


TREE = MemoryTree(HASHES)
# Reference roots for every size, computed once (the naive recursion is slow).
REF_ROOTS = [b""] + [ref_mth(HASHES[:n]) for n in range(1, MAX + 1)]


@pytest.mark.parametrize("size", range(1, MAX + 1))
def test_root_and_every_inclusion_proof_match_reference(size: int) -> None:
    assert TREE.root(size) == REF_ROOTS[size]
    for index in range(0, size, max(1, size // 40)):
        proof = TREE.inclusion(index, size)
        assert proof == ref_path(index, HASHES[:size])
        verify_inclusion(index, size, HASHES[index], proof, REF_ROOTS[size])


@pytest.mark.parametrize("second", range(1, MAX + 1))
def test_consistency_proofs_match_reference(second: int) -> None:
    for first in range(1, second + 1, max(1, second // 40)):
        proof = TREE.consistency(first, second)
        assert proof == ref_subproof(first, HASHES[:second], True)
        verify_consistency(first, second, REF_ROOTS[first], REF_ROOTS[second], proof)


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_any_pair_of_sizes(data: st.DataObject) -> None:
    second = data.draw(st.integers(1, MAX))
    first = data.draw(st.integers(1, second))
    index = data.draw(st.integers(0, second - 1))
    assert TREE.consistency(first, second) == ref_subproof(first, HASHES[:second], True)
    assert TREE.inclusion(index, second) == ref_path(index, HASHES[:second])


def test_plans_need_logarithmically_many_nodes() -> None:
    n = 1_000_003
    for first in (1, 2, 999_999, 524_288, 777_777):
        assert len(consistency_plan(first, n).node_ids()) <= 2 * n.bit_length()
    for index in (0, 1, 524_287, 999_998, n - 1):
        assert len(inclusion_plan(index, n).node_ids()) <= 2 * n.bit_length()
    assert len(root_plan(n).node_ids()) == bin(n).count("1")


def test_perfect_cover_and_append_nodes() -> None:
    assert perfect_cover(0, 7) == (NodeID(2, 0), NodeID(1, 2), NodeID(0, 6))
    assert completed_nodes(7) == [NodeID(0, 7), NodeID(1, 3), NodeID(2, 1), NodeID(3, 0)]
    assert append_siblings(7) == [NodeID(0, 6), NodeID(1, 2), NodeID(2, 0)]
    assert completed_nodes(4) == [NodeID(0, 4)]
    with pytest.raises(ValueError, match="not aligned"):
        perfect_cover(1, 3)


@pytest.mark.parametrize(
    ("call", "args"),
    [
        (inclusion_plan, (5, 5)),
        (inclusion_plan, (-1, 3)),
        (consistency_plan, (4, 3)),
        (root_plan, (-1,)),
    ],
)
def test_bad_sizes_are_refused(call: object, args: tuple[int, ...]) -> None:
    with pytest.raises(ValueError):
        call(*args)  # type: ignore[operator]


def test_memory_tree_refuses_sizes_past_its_end() -> None:
    with pytest.raises(ValueError, match="past"):
        MemoryTree(HASHES[:3]).root(4)
    with pytest.raises(KeyError):
        MemoryTree(HASHES[:3]).node(NodeID(2, 0))
