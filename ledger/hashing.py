"""RFC 6962 §2.1 Merkle tree hashing: leaf and node hashes, and roots from perfect subtrees.

The subtrees themselves, grown leaf by leaf, are ``ledger.compact.CompactRange``.

Imports only the standard library: the offline verifier uses it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "fold_subtrees",
    "leaf_hash",
    "node_hash",
]

HASH_SIZE = 32
# RFC 6962 §2.1: the hash of an empty list is the hash of an empty string.
EMPTY_ROOT = hashlib.sha256(b"").digest()
_LEAF = b"\x00"
_NODE = b"\x01"


def leaf_hash(leaf: bytes) -> bytes:
    """MTH({d0}) = SHA-256(0x00 || d0) (RFC 6962 §2.1)."""
    return hashlib.sha256(_LEAF + leaf).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """MTH(D[n]) = SHA-256(0x01 || MTH(D[0:k]) || MTH(D[k:n])) (RFC 6962 §2.1)."""
    return hashlib.sha256(_NODE + left + right).digest()


def fold_subtrees(hashes: Sequence[bytes]) -> bytes:
    """Hash of a range given its perfect subtrees, largest (leftmost) first.

    RFC 6962 splits a range at the largest power of two below its size, so the left part is
    always perfect and the range hash is ``node(p1, node(p2, ... node(pk-1, pk)))``.
    Raises ValueError on an empty sequence.
    """
    if not hashes:
        raise ValueError("a range needs at least one subtree")
    acc = hashes[-1]
    for left in reversed(hashes[:-1]):
        acc = node_hash(left, acc)
    return acc
