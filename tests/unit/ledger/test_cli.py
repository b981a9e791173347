"""``facewarden-verify``: exit codes, reports, the witness state file, and import boundaries."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ledger import storage
from ledger.cli import main
from ledger.keys import Signer
from tests.conftest import REPO

from .conftest import LedgerDB, fill


@pytest.fixture
def bundle(sqlite_db: LedgerDB, signer: Signer, tmp_path: Path) -> Path:
    fill(sqlite_db, signer, 12)
    with sqlite_db.factory() as session:
        storage.export_bundle(session, tmp_path / "bundle")
    return tmp_path / "bundle"


def test_ok_then_state_advances(
    bundle: Path, signer: Signer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = tmp_path / "state.json"
    assert main(["bundle", str(bundle), "--key", signer.verifier_key, "--state", str(state)]) == 0
    assert "OK  ledger.test/facewarden" in capsys.readouterr().out
    assert json.loads(state.read_text())["size"] == 12
    assert (
        main(["bundle", str(bundle), "--key", signer.verifier_key, "--state", str(state), "--json"])
        == 0
    )
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] and report["size"] == 12 and report["previous_size"] == 12


def test_failure_reports_evidence_and_keeps_state(
    bundle: Path, signer: Signer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = tmp_path / "state.json"
    assert main(["bundle", str(bundle), "--key", signer.verifier_key, "--state", str(state)]) == 0
    before = state.read_text()
    lines = (bundle / "entries.jsonl").read_bytes().split(b"\n")[:-1]
    (bundle / "entries.jsonl").write_bytes(b"".join(x + b"\n" for x in lines[:10]))
    capsys.readouterr()
    assert (
        main(["bundle", str(bundle), "--key", signer.verifier_key, "--state", str(state), "--json"])
        == 1
    )
    out = json.loads(capsys.readouterr().out)
    assert out["ok"] is False and out["step"] == 4 and out["seq"] == 10
    assert "commits to 12 entries" in out["error"] and out["evidence"]["checkpoint"]
    assert state.read_text() == before
    assert main(["bundle", str(bundle), "--key", signer.verifier_key]) == 1
    err = capsys.readouterr().err
    assert "FAILED at step (4)" in err and "first bad seq: 10" in err


def test_usage_errors_exit_2(bundle: Path) -> None:
    with pytest.raises(SystemExit) as info:
        main(["bundle", str(bundle)])
    assert info.value.code == 2


def test_console_script_runs_as_a_module(bundle: Path, signer: Signer) -> None:
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "ledger.cli",
            "bundle",
            str(bundle),
            "--key",
            signer.verifier_key,
            "--json",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["size"] == 12


def test_verifier_imports_neither_flask_nor_sqlalchemy() -> None:
    code = (
        "import sys, ledger, ledger.cli, ledger.verify, ledger.checkpoint, ledger.entry, "
        "ledger.hashing, ledger.proofs, ledger.bundle\n"
        "print(sorted({m.split('.')[0] for m in sys.modules}))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    )
    loaded = set(json.loads(out.stdout.replace("'", '"')))
    assert not loaded & {"flask", "sqlalchemy", "governance", "api", "numpy", "click"}
    assert {"cryptography", "rfc8785"} <= loaded


def _into_a_closed_pipe(*command: str) -> subprocess.CompletedProcess[bytes]:
    """Run ``command`` with stdout a pipe whose reader has gone, as in ``command | head``."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        return subprocess.run(
            [sys.executable, *command],
            stdout=write_end,
            stderr=subprocess.PIPE,
            cwd=REPO,
            env={**os.environ, "PYTHONPATH": str(REPO)},
            timeout=60,
            check=False,
        )
    finally:
        os.close(write_end)


@pytest.mark.parametrize(
    ("command", "status"),
    [
        (("-m", "ledger.cli", "report", "bundle", "{bundle}", "--key", "{key}"), 1),
        (("-m", "ledger.cli", "bundle", "{bundle}", "--key", "{key}", "--json"), 1),
        # argparse itself ignores a closed pipe while printing help
        (("-m", "ledger.cli", "--help"), 0),
        (("-m", "api.cli", "--help"), 1),
    ],
    ids=lambda c: " ".join(c[1:4]) if isinstance(c, tuple) else str(c),
)
def test_output_cut_short_ends_quietly(
    bundle: Path, signer: Signer, command: tuple[str, ...], status: int
) -> None:
    """``facewarden-verify … | head`` and ``facewarden … | head``: no Broken pipe traceback."""
    filled = [a.format(bundle=bundle, key=signer.verifier_key) for a in command]
    run = _into_a_closed_pipe(*filled)
    assert run.stderr.decode() == ""
    assert run.returncode == status
