"""An oversight body's machine: a fresh environment with only cryptography and rfc8785 installed
and the ``ledger`` package beside it verifies, audits and reports on an exported ledger."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy.orm import Session

from api.app import create_app
from api.bootstrap import initialize
from api.settings import Settings
from ledger.storage import export_bundle
from tests.api.helpers import make_account, make_admin, make_agency, runtime_of
from tests.conftest import REPO

pytestmark = pytest.mark.slow


def report_entries(bundle: Path) -> int:
    return len((bundle / "entries.jsonl").read_bytes().splitlines())


def _pins() -> list[str]:
    pins = []
    for line in (REPO / "constraints.txt").read_text().splitlines():
        name = line.split("==")[0].lower()
        if name in {"cryptography", "rfc8785", "cffi", "pycparser"}:
            pins.append(line.strip())
    return pins


@pytest.fixture
def small_history(settings: Settings, tmp_path: Path) -> Iterator[Flask]:
    """A fresh deployment with a short, lawful history (the suite's own ledger moves its clock
    back and forth, which an audit rightly flags)."""
    own = Settings.from_mapping(
        {
            "data_dir": str(tmp_path / "var"),
            "ledger_origin": "clean.facewarden.local/ledger",
            "models_dir": str(settings.models_dir),
        }
    )
    initialize(own, tls=False, progress=lambda _m: None)
    application = create_app(own)
    client = application.test_client()
    admin = make_admin(application)
    make_account(client, admin, make_agency(client, admin), "investigator")
    yield application
    runtime_of(application).engine.dispose()


def test_the_verifier_needs_only_cryptography_and_rfc8785(
    small_history: Flask, tmp_path: Path
) -> None:
    rt = runtime_of(small_history)
    bundle = tmp_path / "bundle"
    with Session(rt.engine) as session:
        export_bundle(session, bundle)
    key = rt.signer.verifier_key

    env_dir = tmp_path / "oversight-env"
    subprocess.run([sys.executable, "-m", "venv", str(env_dir)], check=True)
    python = env_dir / "bin" / "python"
    installed = subprocess.run(
        [str(python), "-m", "pip", "install", "-q", *_pins()],
        check=False,
        capture_output=True,
        text=True,
    )
    if installed.returncode != 0:
        pytest.skip(
            f"cannot install the verifier's two dependencies here: {installed.stderr[-300:]}"
        )
    work = tmp_path / "verifier"
    shutil.copytree(REPO / "ledger", work / "ledger")
    listed = subprocess.run(
        [str(python), "-m", "pip", "list", "--format=json"],
        capture_output=True,
        text=True,
        check=True,
    )
    names = {p["name"].lower() for p in json.loads(listed.stdout)}
    assert not names & {"flask", "sqlalchemy", "numpy", "click"}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(python), "-m", "ledger.cli", *args],
            check=False,
            cwd=work,
            capture_output=True,
            text=True,
        )

    verified = run("bundle", str(bundle), "--key", key)
    assert verified.returncode == 0, verified.stderr
    assert verified.stdout.startswith("OK")
    audited = run("audit", "bundle", str(bundle), "--key", key)
    assert audited.returncode == 0, audited.stdout + audited.stderr
    report = run("report", "bundle", str(bundle), "--key", key)
    assert report.returncode == 0, report.stderr
    assert json.loads(report.stdout)["entries"] == report_entries(bundle)
    forged = run("bundle", str(bundle), "--key", key.replace(key.split("+")[1], "00000000"))
    assert forged.returncode != 0
