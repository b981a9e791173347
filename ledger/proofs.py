"""Proof planning: which stored perfect-subtree nodes a root or an RFC 6962 proof needs.

Pure integers, in the manner of transparency-dev/merkle's ``proof`` package: a proof is planned
as ranges of leaves (RFC 6962 §2.1.1 PATH and §2.1.2 SUBPROOF); each range is covered by
aligned perfect subtrees (``NodeID``), the only nodes ever stored. A range on the right edge of
the tree is not perfect: it is an ephemeral node rebuilt from its perfect subtrees.
Imports only the standard library, ``ledger.hashing`` and ``ledger.compact``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from ledger.compact import CompactRange
from ledger.hashing import EMPTY_ROOT, fold_subtrees, leaf_hash

__all__ = [
    "MemoryTree",
    "NodeID",
    "ProofPlan",
    "append_siblings",
    "completed_nodes",
    "consistency_plan",
    "inclusion_plan",
    "perfect_cover",
    "root_plan",
]


@dataclass(frozen=True, slots=True, order=True)
class NodeID:
    """The perfect subtree over leaves ``[index << level, (index + 1) << level)``."""

    level: int
    index: int


def perfect_cover(lo: int, hi: int) -> tuple[NodeID, ...]:
    """The aligned perfect subtrees covering leaves ``[lo, hi)``, largest (leftmost) first.

    Raises ValueError when the range is empty or not one RFC 6962 ever produces.
    """
    if not 0 <= lo < hi:
        raise ValueError(f"bad range [{lo}, {hi})")
    nodes = []
    while lo < hi:
        level = (hi - lo).bit_length() - 1
        if lo & ((1 << level) - 1):
            raise ValueError(f"range [{lo}, {hi}) is not aligned")
        nodes.append(NodeID(level, lo >> level))
        lo += 1 << level
    return tuple(nodes)


def _split(n: int) -> int:
    # RFC 6962 §2.1: k is the largest power of two smaller than n (n > 1).
    return 1 << ((n - 1).bit_length() - 1)


def _path(m: int, lo: int, hi: int, out: list[tuple[int, int]]) -> None:
    # RFC 6962 §2.1.1 PATH(m, D[lo:hi]), iteratively collecting the innermost sibling first.
    stack = []
    while hi - lo > 1:
        k = _split(hi - lo)
        if m - lo < k:
            stack.append((lo + k, hi))
            hi = lo + k
        else:
            stack.append((lo, lo + k))
            lo = lo + k
    out.extend(reversed(stack))


def _subproof(m: int, lo: int, hi: int, out: list[tuple[int, int]]) -> None:
    # RFC 6962 §2.1.2 SUBPROOF(m, D[lo:hi], true).
    stack = []
    complete = True
    while m != hi - lo:
        k = _split(hi - lo)
        if m <= k:
            stack.append((lo + k, hi))
            hi = lo + k
        else:
            stack.append((lo, lo + k))
            m -= k
            lo += k
            complete = False
    if not complete:
        stack.append((lo, hi))
    out.extend(reversed(stack))


@dataclass(frozen=True, slots=True)
class ProofPlan:
    """The ranges whose hashes make up a proof (or a root), in proof order."""

    spans: tuple[tuple[int, int], ...]

    def node_ids(self) -> frozenset[NodeID]:
        """Every stored node needed to build the proof."""
        return frozenset(n for lo, hi in self.spans for n in perfect_cover(lo, hi))

    def resolve(self, hashes: Mapping[NodeID, bytes]) -> list[bytes]:
        """The proof hashes, rebuilding ephemeral nodes from their perfect subtrees.

        Raises KeyError when a needed node is missing from ``hashes``.
        """
        return [fold_subtrees([hashes[n] for n in perfect_cover(lo, hi)]) for lo, hi in self.spans]


def inclusion_plan(index: int, size: int) -> ProofPlan:
    """Plan the inclusion proof of leaf ``index`` in the tree of ``size`` leaves.

    Raises ValueError unless ``0 <= index < size``.
    """
    if not 0 <= index < size:
        raise ValueError(f"leaf {index} is not in a tree of size {size}")
    spans: list[tuple[int, int]] = []
    _path(index, 0, size, spans)
    return ProofPlan(tuple(spans))


def consistency_plan(first: int, second: int) -> ProofPlan:
    """Plan the consistency proof from size ``first`` to size ``second`` (RFC 6962 §2.1.2).

    Raises ValueError unless ``0 <= first <= second``.
    """
    if not 0 <= first <= second:
        raise ValueError(f"no consistency proof from size {first} to size {second}")
    spans: list[tuple[int, int]] = []
    if 0 < first < second:
        _subproof(first, 0, second, spans)
    return ProofPlan(tuple(spans))


def root_plan(size: int) -> ProofPlan:
    """Plan the tree head of ``size`` leaves: one range, empty for the empty tree.

    Raises ValueError for a negative size.
    """
    if size < 0:
        raise ValueError("negative tree size")
    return ProofPlan(((0, size),) if size else ())


def completed_nodes(index: int) -> list[NodeID]:
    """The nodes that become complete when leaf ``index`` is appended, bottom up."""
    nodes = [NodeID(0, index)]
    level, i = 0, index
    while i & 1:
        level, i = level + 1, i >> 1
        nodes.append(NodeID(level, i))
    return nodes


def append_siblings(index: int) -> list[NodeID]:
    """The left siblings whose hashes combine with leaf ``index`` into ``completed_nodes``."""
    return [NodeID(n.level, n.index ^ 1) for n in completed_nodes(index)[:-1]]


class MemoryTree:
    """All perfect-subtree hashes of a tree held in memory (verifier and reference use)."""

    def __init__(self, leaf_hashes: Iterable[bytes] = ()) -> None:
        self._levels: list[list[bytes]] = [[]]
        self._range = CompactRange()
        for h in leaf_hashes:
            self.append_hash(h)

    @property
    def size(self) -> int:
        """The number of leaves."""
        return self._range.size

    def append_leaf(self, leaf: bytes) -> bytes:
        """Append a leaf's bytes; returns its leaf hash."""
        h = leaf_hash(leaf)
        self.append_hash(h)
        return h

    def append_hash(self, h: bytes) -> None:
        """Append a leaf by its hash, keeping every perfect subtree it completes."""
        for level, completed in enumerate(self._range.append(h)):
            if len(self._levels) == level:
                self._levels.append([])
            self._levels[level].append(completed)

    def node(self, node: NodeID) -> bytes:
        """The hash of a stored perfect subtree. Raises KeyError when it is not complete."""
        try:
            return self._levels[node.level][node.index]
        except IndexError as exc:
            raise KeyError(node) from exc

    def _resolve(self, plan: ProofPlan) -> list[bytes]:
        return plan.resolve({n: self.node(n) for n in plan.node_ids()})

    def root(self, size: int | None = None) -> bytes:
        """The tree head at ``size`` (default: the whole tree). Raises ValueError past the end."""
        size = self.size if size is None else size
        if size > self.size:
            raise ValueError(f"size {size} is past the tree's {self.size} leaves")
        return self._resolve(root_plan(size))[0] if size else EMPTY_ROOT

    def inclusion(self, index: int, size: int) -> list[bytes]:
        """Inclusion proof of leaf ``index`` at ``size``. Raises ValueError for bad sizes."""
        if size > self.size:
            raise ValueError(f"size {size} is past the tree's {self.size} leaves")
        return self._resolve(inclusion_plan(index, size))

    def consistency(self, first: int, second: int) -> list[bytes]:
        """Consistency proof between two sizes. Raises ValueError for bad sizes."""
        if second > self.size:
            raise ValueError(f"size {second} is past the tree's {self.size} leaves")
        return self._resolve(consistency_plan(first, second))
