"""The compact range of a Merkle tree: the perfect subtrees covering leaves ``[0, size)``.

RFC 6962 §2.1 splits a tree at the largest power of two below its size, so the tree over
``[0, size)`` is covered by one perfect subtree per set bit of ``size``, largest (leftmost)
first; they fold right to left into the tree head (C2SP tlog "compact range"). The append
path, the verifier's in-memory tree and the witness all grow their trees with this one class.
Imports only the standard library and ``ledger.hashing``: the offline verifier uses it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from ledger.hashing import EMPTY_ROOT, HASH_SIZE, fold_subtrees, node_hash

__all__ = ["CompactRange"]


class CompactRange:
    """The perfect-subtree hashes covering leaves ``[0, size)``, largest first."""

    __slots__ = ("_hashes", "_size")

    def __init__(self) -> None:
        self._size = 0
        self._hashes: list[bytes] = []

    @classmethod
    def from_hashes(cls, size: int, hashes: Sequence[bytes]) -> CompactRange:
        """The range of a tree of ``size`` leaves from its stored ``hashes``, largest first.

        Raises ValueError unless there is one 32-byte hash per set bit of ``size``.
        """
        if size < 0 or len(hashes) != size.bit_count():
            raise ValueError(
                f"a tree of size {size} has {max(size, 0).bit_count()} perfect subtrees, "
                f"not {len(hashes)}"
            )
        if any(len(h) != HASH_SIZE for h in hashes):
            raise ValueError(f"subtree hashes must be {HASH_SIZE} bytes")
        compact = cls()
        compact._size, compact._hashes = size, list(hashes)
        return compact

    @property
    def size(self) -> int:
        """The number of leaves covered."""
        return self._size

    @property
    def hashes(self) -> tuple[bytes, ...]:
        """The perfect-subtree hashes, largest (leftmost) first: what a store keeps."""
        return tuple(self._hashes)

    def append(self, leaf_hash: bytes) -> list[bytes]:
        """Append a leaf by its hash; returns the hashes of the perfect subtrees it completes,
        bottom up: the leaf itself, then each parent merged with its left sibling."""
        completed = [leaf_hash]
        acc, size = leaf_hash, self._size
        # The smallest subtrees sit at the end; one of equal width is merged per trailing 1 bit.
        while size & 1:
            acc = node_hash(self._hashes.pop(), acc)
            completed.append(acc)
            size >>= 1
        self._hashes.append(acc)
        self._size += 1
        return completed

    def extend(self, leaf_hashes: Iterable[bytes]) -> None:
        """Append leaves by their hashes, in order."""
        for h in leaf_hashes:
            self.append(h)

    def root(self) -> bytes:
        """The RFC 6962 tree head over ``[0, size)``."""
        return fold_subtrees(self._hashes) if self._hashes else EMPTY_ROOT
