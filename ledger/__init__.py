"""The audit ledger: signed canonical entries in an RFC 6962 Merkle log with C2SP checkpoints.

The verifier side (``entry``, ``hashing``, ``compact``, ``proofs``, ``checkpoint``, ``bundle``,
``checks``, ``verify``, ``witness``, ``cli``) needs only the standard library, ``cryptography``
and ``rfc8785``; this package namespace imports nothing else either, so ``import ledger.verify``
stays light. The SQL side is
``ledger.storage`` and ``ledger.keys``.
"""

from ledger.bundle import BundleFetcher, Fetcher, HttpFetcher, TrustedState
from ledger.checkpoint import (
    Checkpoint,
    NoteVerifier,
    format_checkpoint,
    open_note,
    parse_checkpoint,
    parse_verifier_key,
    sign_note,
    verifier_key_string,
)
from ledger.entry import Actor, Entry, EntryType, LedgerError, MalformedEntry, parse_entry
from ledger.hashing import EMPTY_ROOT, leaf_hash, node_hash
from ledger.verify import VerificationError, verify_log

__all__ = [
    "EMPTY_ROOT",
    "Actor",
    "BundleFetcher",
    "Checkpoint",
    "Entry",
    "EntryType",
    "Fetcher",
    "HttpFetcher",
    "LedgerError",
    "MalformedEntry",
    "NoteVerifier",
    "TrustedState",
    "VerificationError",
    "format_checkpoint",
    "leaf_hash",
    "node_hash",
    "open_note",
    "parse_checkpoint",
    "parse_entry",
    "parse_verifier_key",
    "sign_note",
    "verifier_key_string",
    "verify_log",
]
