"""The verifier: RFC 9162 proof checks (JSON vectors), and tampered real bundles caught by step."""

from __future__ import annotations

import base64
import json
import random
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from governance.core.db import make_engine, make_session_factory, unit_of_work
from ledger import storage
from ledger.bundle import BundleError, BundleFetcher, TrustedState
from ledger.checkpoint import open_note, parse_checkpoint, parse_verifier_key, sign_note
from ledger.entry import EntryType, build_entry, parse_entry
from ledger.hashing import leaf_hash
from ledger.keys import Signer, generate_key, load_signer, rotate_key
from ledger.proofs import MemoryTree
from ledger.verify import (
    VerificationError,
    verify_consistency,
    verify_inclusion,
    verify_log,
)
from tests.conftest import REPO

from .conftest import ACTOR, NAME, T0, LedgerDB, fill

VECTORS = json.loads((REPO / "tests" / "vectors" / "ledger_vectors.json").read_text("utf-8"))


def _b(values: list[str]) -> list[bytes]:
    return [bytes.fromhex(v) for v in values]


@pytest.mark.parametrize("case", VECTORS["inclusion"], ids=lambda c: f"{c['size']}-{c['desc']}")
def test_inclusion_vectors(case: dict[str, Any]) -> None:
    args = (
        case["index"],
        case["size"],
        bytes.fromhex(case["leaf_hash"]),
        _b(case["proof"]),
        bytes.fromhex(case["root"]),
    )
    if case["valid"]:
        verify_inclusion(*args)
        tree = MemoryTree(leaf_hash(x) for x in _b(VECTORS["leaves"]))
        assert tree.inclusion(case["index"], case["size"]) == _b(case["proof"])
    else:
        with pytest.raises(VerificationError):
            verify_inclusion(*args)


@pytest.mark.parametrize(
    "case", VECTORS["consistency"], ids=lambda c: f"{c['first']}-{c['second']}-{c['desc']}"
)
def test_consistency_vectors(case: dict[str, Any]) -> None:
    args = (
        case["first"],
        case["second"],
        bytes.fromhex(case["first_root"]),
        bytes.fromhex(case["second_root"]),
        _b(case["proof"]),
    )
    if case["valid"]:
        verify_consistency(*args)
        tree = MemoryTree(leaf_hash(x) for x in _b(VECTORS["leaves"]))
        assert tree.consistency(case["first"], case["second"]) == _b(case["proof"])
    else:
        with pytest.raises(VerificationError):
            verify_consistency(*args)


def test_entry_vector_pins_the_wire_format() -> None:
    vector = VECTORS["entry"]
    entry = parse_entry(vector["entry"].encode())
    assert entry.type is EntryType.LEGAL_BASIS_APPROVE
    assert leaf_hash(entry.raw).hex() == vector["leaf_hash"]
    key = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(vector["seed"]))
    assert (
        Signer(name="vectors.example/ledger", private_key=key).verifier_key
        == vector["verifier_key"]
    )
    text_, _ = open_note(vector["checkpoint"], [parse_verifier_key(vector["verifier_key"])])
    assert parse_checkpoint(text_).root.hex() == vector["leaf_hash"]


# --- tampering with real exported bundles ---------------------------------------------------
@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, Path]:
    """A 40-entry SQLite ledger with one key rotation, exported; plus its key file."""
    base = tmp_path_factory.mktemp("ledger")
    engine = make_engine(f"sqlite:///{base / 'db.sqlite'}")
    db = LedgerDB("sqlite", engine, make_session_factory(engine))
    with unit_of_work(db.factory) as session:
        storage.create_tables(session)
    key_path = base / "key.pem"
    first = generate_key(key_path, name=NAME, passphrase=None)
    fill(db, first, 20)
    with unit_of_work(db.factory) as session:
        _, new = rotate_key(
            session, key_path=key_path, name=NAME, passphrase=None, now=T0, actor=ACTOR
        )
    fill(db, new, 19, start=21)
    with db.factory() as session:
        storage.export_bundle(session, base / "bundle", checkpoint_interval=8)
    engine.dispose()
    return base / "bundle", first.verifier_key, key_path


@pytest.fixture
def bundle(exported: tuple[Path, str, Path], tmp_path: Path) -> Path:
    return Path(shutil.copytree(exported[0], tmp_path / "bundle"))


def _verify(path: Path, vkey: str, state: TrustedState | None = None) -> VerificationError:
    with pytest.raises(VerificationError) as info:
        verify_log(BundleFetcher(path), pinned=[vkey], state=state, workers=1)
    return info.value


def _lines(path: Path) -> list[bytes]:
    return (path / "entries.jsonl").read_bytes().split(b"\n")[:-1]


def _write_lines(path: Path, lines: list[bytes]) -> None:
    (path / "entries.jsonl").write_bytes(b"".join(line + b"\n" for line in lines))


def test_untouched_bundle_verifies(exported: tuple[Path, str, Path]) -> None:
    report = verify_log(BundleFetcher(exported[0]), pinned=[exported[1]], workers=1)
    assert report.size == 40 and len(report.keys) == 2
    assert report.checkpoints_checked == 1 + len(list((exported[0] / "checkpoints").iterdir()))
    parallel = verify_log(BundleFetcher(exported[0]), pinned=[exported[1]], workers=2)
    assert parallel == report


def test_flipping_any_byte_anywhere_is_caught(
    bundle: Path, exported: tuple[Path, str, Path]
) -> None:
    rng = random.Random(6962)
    files = sorted(p for p in bundle.rglob("*") if p.is_file())
    missed = []
    for path in files:
        original = path.read_bytes()
        positions = set(rng.sample(range(len(original)), min(25, len(original))))
        positions |= {0, len(original) - 1}
        for at in sorted(positions):
            for bit in (0x01, 0x20):
                data = bytearray(original)
                data[at] ^= bit
                path.write_bytes(bytes(data))
                try:
                    verify_log(BundleFetcher(bundle), pinned=[exported[1]], workers=1)
                    missed.append(f"{path.relative_to(bundle)}@{at}^{bit:#x}")
                except VerificationError:
                    pass
        path.write_bytes(original)
    assert missed == []


def test_flipped_entry_byte_names_the_entry(bundle: Path, exported: tuple[Path, str, Path]) -> None:
    lines = _lines(bundle)
    lines[7] = lines[7].replace(b'"results":0', b'"results":1')
    _write_lines(bundle, lines)
    error = _verify(bundle, exported[1])
    assert (error.step, error.seq) == (2, 7)
    assert "entry 7 has an invalid signature" in str(error)


def test_deleted_entry(bundle: Path, exported: tuple[Path, str, Path]) -> None:
    lines = _lines(bundle)
    del lines[12]
    _write_lines(bundle, lines)
    error = _verify(bundle, exported[1])
    assert (error.step, error.seq) == (3, 12)
    assert "expected seq 12 at line 13, found seq 13" in str(error)


def test_swapped_entries(bundle: Path, exported: tuple[Path, str, Path]) -> None:
    lines = _lines(bundle)
    lines[30], lines[31] = lines[31], lines[30]
    _write_lines(bundle, lines)
    error = _verify(bundle, exported[1])
    assert (error.step, error.seq) == (3, 30)


def test_truncated_tail(bundle: Path, exported: tuple[Path, str, Path]) -> None:
    _write_lines(bundle, _lines(bundle)[:-3])
    error = _verify(bundle, exported[1])
    assert error.step == 4
    assert "commits to 40 entries but the log holds 37" in str(error)


def test_rollback_against_trusted_state(bundle: Path, exported: tuple[Path, str, Path]) -> None:
    latest = (bundle / "checkpoint").read_text()
    trusted = parse_checkpoint(latest.split("\n\n")[0] + "\n")
    state = TrustedState(origin=NAME, size=40, root=trusted.root, checkpoint=latest)
    # A consistent but older view: entries and checkpoint cut back to size 32.
    _write_lines(bundle, _lines(bundle)[:32])
    shutil.copy(bundle / "checkpoints" / "32", bundle / "checkpoint")
    for path in (bundle / "checkpoints").iterdir():
        if int(path.name) >= 32:
            path.unlink()
    error = _verify(bundle, exported[1], state)
    assert error.step == 5 and "rollback: the log shrank from 40 to 32" in str(error)
    assert error.evidence["trusted_checkpoint"] == latest


def _forked(exported: tuple[Path, str, Path], tmp_path: Path, size: int) -> Path:
    """Another log under the same (stolen) first key, with different entries."""
    engine = make_engine(f"sqlite:///{tmp_path / 'fork.sqlite'}")
    db = LedgerDB("sqlite", engine, make_session_factory(engine))
    with unit_of_work(db.factory) as session:
        storage.create_tables(session)
    key = generate_key(tmp_path / "unused.pem", name=NAME, passphrase=None)
    original = Path(str(exported[2]) + f".retired-{parse_verifier_key(exported[1]).key_id_hex}")
    first = load_signer(original, name=NAME, passphrase=None)
    assert first.verifier_key == exported[1] and key.key_id != first.key_id
    fill(db, first, size, start=1000)
    with db.factory() as session:
        storage.export_bundle(session, tmp_path / "fork", checkpoint_interval=8)
    engine.dispose()
    return tmp_path / "fork"


def test_fork_two_checkpoints_of_one_size(
    bundle: Path, exported: tuple[Path, str, Path], tmp_path: Path
) -> None:
    fork = _forked(exported, tmp_path, 16)
    shutil.copy(fork / "checkpoint", bundle / "checkpoints" / "16")
    error = _verify(bundle, exported[1])
    assert error.step == 4 and "fork: the checkpoint of size 16" in str(error)
    assert error.evidence["checkpoint"] == (fork / "checkpoint").read_text()


def test_fork_against_trusted_state(
    bundle: Path, exported: tuple[Path, str, Path], tmp_path: Path
) -> None:
    fork = _forked(exported, tmp_path, 16)
    note = (fork / "checkpoint").read_text()
    checkpoint = parse_checkpoint(note.split("\n\n")[0] + "\n")
    state = TrustedState(origin=NAME, size=16, root=checkpoint.root, checkpoint=note)
    error = _verify(bundle, exported[1], state)
    assert error.step == 5 and "fork: the log at size 16" in str(error)
    assert error.evidence["proof"] and error.evidence["trusted_checkpoint"] == note


def test_checkpoint_resigned_with_a_foreign_key(
    bundle: Path, exported: tuple[Path, str, Path], tmp_path: Path
) -> None:
    foreign = generate_key(tmp_path / "foreign.pem", name=NAME, passphrase=None)
    text_ = (bundle / "checkpoint").read_text().split("\n\n")[0] + "\n"
    (bundle / "checkpoint").write_text(sign_note(text_, foreign))
    error = _verify(bundle, exported[1])
    assert error.step == 1 and "no verifiable signatures" in str(error)


def test_log_rebuilt_under_a_foreign_key(
    exported: tuple[Path, str, Path], tmp_path: Path, sqlite_db: LedgerDB
) -> None:
    foreign = generate_key(tmp_path / "foreign.pem", name=NAME, passphrase=None)
    fill(sqlite_db, foreign, 5)
    with sqlite_db.factory() as session:
        storage.export_bundle(session, tmp_path / "foreign")
    error = _verify(tmp_path / "foreign", exported[1])
    assert error.step == 2 and "entry 0 is signed by" in str(error)
    assert "not a pinned key" in str(error)


def test_unannounced_key_mid_log(bundle: Path, exported: tuple[Path, str, Path]) -> None:
    stolen = Path(str(exported[2]) + f".retired-{parse_verifier_key(exported[1]).key_id_hex}")
    old = load_signer(stolen, name=NAME, passphrase=None)
    lines = _lines(bundle)
    # Entry 30 re-signed by the retired key, which the rotation at 20 replaced.
    entry = parse_entry(lines[30])
    forged = build_entry(
        seq=30,
        ts=entry.ts,
        entry_type=entry.type,
        actor=entry.actor,
        payload=entry.payload,
        prev=entry.prev,
        signer=old,
    )
    lines[30] = forged.raw
    _write_lines(bundle, lines)
    error = _verify(bundle, exported[1])
    assert (error.step, error.seq) == (2, 30) and "unannounced key" in str(error)


@pytest.mark.parametrize(
    "mutate",
    [
        lambda b: (b / "checkpoint").write_text("garbage\n"),
        lambda b: (b / "keys").write_text("not a key\n"),
        lambda b: (b / "entries.jsonl").write_bytes(b'{"v":1}'),
        lambda b: (b / "checkpoints" / "01").write_text("x"),
        lambda b: (b / "manifest.json").unlink(),
    ],
    ids=["checkpoint", "keys", "entries", "checkpoint-name", "manifest"],
)
def test_parse_failures_become_verification_errors(
    bundle: Path, exported: tuple[Path, str, Path], mutate: Callable[[Path], object]
) -> None:
    mutate(bundle)
    _verify(bundle, exported[1])


def test_state_round_trip(tmp_path: Path) -> None:
    state = TrustedState(origin=NAME, size=3, root=b"\x07" * 32, checkpoint="c\n")
    state.save(tmp_path / "state.json")
    assert TrustedState.load(tmp_path / "state.json") == state
    assert TrustedState.load(tmp_path / "absent.json") is None
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(BundleError, match="unreadable state"):
        TrustedState.load(tmp_path / "bad.json")
    assert base64.b64decode(json.loads((tmp_path / "state.json").read_text())["root"])
