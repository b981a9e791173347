"""``facewarden backup`` and ``restore``: a restored data directory answers searches as the
original did, its ledger verifies with the same key, and a damaged backup or a wrong
passphrase is refused in one line. On SQLite always; on PostgreSQL too when
FACEWARDEN_TEST_DATABASE_URL names one (into two databases created for the test)."""

from __future__ import annotations

import os
import re
import shutil
import ssl
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from sqlalchemy import Engine, create_engine, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from api.cli import cli
from api.settings import Settings
from biometrics.index import MilvusIndex
from biometrics.packs import load_pack
from governance.gallery.models import GalleryFace
from ledger.cli import main as verify
from tests.api.served import served, with_certificate
from tests.conftest import ensure_starter_pack, models_dir_for_tests
from tests.unit.api.test_cli_gallery import _dev_manifest

PASSPHRASE = "a long backup passphrase"


def _pg_url() -> str | None:
    url = os.environ.get("FACEWARDEN_TEST_DATABASE_URL") or ""
    return url if url.startswith("postgresql") else None


@pytest.fixture(params=["sqlite", "postgresql"])
def databases(request: pytest.FixtureRequest) -> Iterator[tuple[str | None, str | None]]:
    """The source's and the restore's database URLs (None: SQLite in the data directory)."""
    if request.param == "sqlite":
        yield None, None
        return
    base = _pg_url()
    if base is None:
        pytest.skip("FACEWARDEN_TEST_DATABASE_URL names no PostgreSQL database")
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    names = [f"fw_backup_{uuid.uuid4().hex[:8]}_{side}" for side in ("a", "b")]
    with admin.connect() as conn:
        for name in names:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        url = make_url(base)
        a, b = (url.set(database=n).render_as_string(hide_password=False) for n in names)
        yield a, b
    finally:
        for name in names:
            _drop(admin, name)
        admin.dispose()


def _drop(admin: Engine, name: str) -> None:
    """Drop a database once the connections to it (the test's, autovacuum's) have gone."""
    for _attempt in range(50):
        try:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
            return
        except OperationalError:  # "being accessed by other users": an autovacuum worker
            time.sleep(0.2)
    raise AssertionError(f"could not drop the test database {name}")


def _env(data_dir: Path, database_url: str | None) -> dict[str, str]:
    models = models_dir_for_tests()
    ensure_starter_pack(models)
    env = {"FACEWARDEN_DATA_DIR": str(data_dir), "FACEWARDEN_MODELS_DIR": str(models)}
    if database_url:
        env["FACEWARDEN_DATABASE_URL"] = database_url
    return env


def _ok(args: list[str], env: dict[str, str]) -> str:
    result = CliRunner().invoke(cli, args, env=env)
    assert result.exit_code == 0, result.output
    return result.output


def _refused(args: list[str], env: dict[str, str]) -> str:
    result = CliRunner().invoke(cli, args, env=env)
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    return result.output


def _healthy(port: int, cert: Path) -> bool:
    context = ssl.create_default_context(cafile=str(cert))
    with urllib.request.urlopen(
        f"https://127.0.0.1:{port}/healthz", context=context, timeout=10
    ) as response:
        return response.status == 200


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def _answers(env: dict[str, str], database_url: str) -> list[list[tuple[str, float]]]:
    """For every face, the gallery's five nearest faces and their scores."""
    pack = load_pack(Path(env["FACEWARDEN_MODELS_DIR"]) / "starter")
    engine = create_engine(database_url)
    with Session(engine) as session:
        embeddings = [
            np.frombuffer(e, dtype=np.float32).copy()
            for e in session.scalars(select(GalleryFace.embedding).order_by(GalleryFace.id))
        ]
    engine.dispose()
    index = MilvusIndex(
        str(Path(env["FACEWARDEN_DATA_DIR"]) / "milvus" / "gallery.db"),
        recognizer_sha256=pack.recognizer.sha256,
    )
    try:
        index.ensure_collection(pack.dimension)
        return [
            [(hit.face_id, round(hit.score, 5)) for hit in index.search(e, 5)] for e in embeddings
        ]
    finally:
        index.close()


def test_a_restored_data_directory_searches_and_verifies_as_the_original(
    tmp_path: Path, shared_dir: Path, databases: tuple[str | None, str | None]
) -> None:
    source_db, restored_db = databases
    source = _env(tmp_path / "var", source_db)
    _ok(["init", "--no-tls"], source)
    manifest = _dev_manifest(tmp_path, shared_dir, slice(40, 44), lambda i: "bk.example.org")
    # In a process of its own, as an operator runs it: pymilvus keeps a milvus-lite file open
    # until the process that opened it exits, and the server below must be able to serve it.
    ingest = subprocess.run(
        [sys.executable, "-m", "api.cli", "gallery", "ingest", str(manifest)],
        check=False,
        env={**os.environ, **source},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert "enrolled 4 photos" in ingest.stdout, ingest.stdout + ingest.stderr
    key = _ok(["ledger", "key"], source).strip()

    plain, sealed = tmp_path / "plain", tmp_path / "sealed"
    assert "no keys" in _ok(["backup", str(plain)], source)
    keyed = {**source, "FACEWARDEN_BACKUP_PASSPHRASE": PASSPHRASE}
    # Online: taken while a server holds the data directory (its database and index file).
    with served(with_certificate(Settings.from_env(source))) as port:
        backed = _ok(["backup", str(sealed), "--include-keys"], keyed)
        assert _healthy(port, tmp_path / "var" / "tls" / "cert.pem")
    assert "keys sealed" in backed
    faces = re.search(r"(\d+) faces,", backed)
    assert faces is not None and int(faces[1]) >= 4
    assert "not an empty directory" in _refused(["backup", str(plain)], source)

    # Without --include-keys no key material is written, in any form.
    secrets = [
        (tmp_path / "var" / "keys" / n).read_bytes() for n in ("ledger.pem", "ledger-secret.key")
    ]
    for backup in (plain, sealed):
        for data in _tree(backup).values():
            assert not any(secret in data for secret in secrets)
    assert not (plain / "keys.sealed").exists() and (sealed / "keys.sealed").exists()

    # A file altered after the backup fails the manifest's check, before anything is written.
    tampered = tmp_path / "tampered"
    shutil.copytree(plain, tampered)
    photo = next(p for p in (tampered / "photos").rglob("*") if p.is_file())
    photo.write_bytes(photo.read_bytes() + b"\0")
    restored = _env(tmp_path / "restored", restored_db)
    refused = _refused(["restore", str(tampered)], restored)
    assert "does not match its SHA-256" in refused and photo.name in refused

    if restored_db is None:  # an index holding vectors is refused, before the database is
        crowded = _env(tmp_path / "crowded", None)
        _ok(["init", "--no-tls"], crowded)
        _ok(["gallery", "ingest", str(manifest)], crowded)
        assert "vectors already" in _refused(["restore", str(plain)], crowded)

    wrong = {**restored, "FACEWARDEN_BACKUP_PASSPHRASE": "not the passphrase"}
    assert "wrong passphrase" in _refused(["restore", str(sealed)], wrong)
    assert not (tmp_path / "restored").exists()  # both refused before writing anything

    out = _ok(["restore", str(sealed)], {**restored, "FACEWARDEN_BACKUP_PASSPHRASE": PASSPHRASE})
    assert f"{faces[1]} faces indexed" in out
    assert "keys restored: ledger_key, ledger_secret" in out
    again = {**restored, "FACEWARDEN_BACKUP_PASSPHRASE": PASSPHRASE}
    assert "exists already" in _refused(["restore", str(sealed)], again)
    if restored_db:  # a database with tables is refused, whatever the data directory holds
        elsewhere = _env(tmp_path / "elsewhere", restored_db)
        assert "holds tables already" in _refused(["restore", str(plain)], elsewhere)

    # Photos and keys byte for byte; the ledger unchanged, verifying with the same key.
    assert _tree(tmp_path / "restored" / "photos") == _tree(tmp_path / "var" / "photos")
    # The keys, not the signer state: that is each host's own record of what it signed, which
    # a restored data directory starts afresh from the restored log.
    kept = {"ledger.pem", "ledger-secret.key"}
    assert _tree(tmp_path / "restored" / "keys").keys() == kept
    assert {n: b for n, b in _tree(tmp_path / "var" / "keys").items() if n in kept} == _tree(
        tmp_path / "restored" / "keys"
    )
    bundles = tmp_path / "bundle-source", tmp_path / "bundle-restored"
    _ok(["ledger", "export", str(bundles[0])], source)
    _ok(["ledger", "export", str(bundles[1])], restored)
    assert _tree(bundles[0]) == _tree(bundles[1])
    assert verify(["bundle", str(bundles[1]), "--key", key]) == 0
    assert _ok(["ledger", "key"], restored).strip() == key
    assert _ok(["doctor"], restored).splitlines()[-1] == "clean"

    # The same candidates with the same scores, from an index rebuilt from the rows.
    source_url = source_db or f"sqlite:///{tmp_path / 'var' / 'facewarden.db'}"
    restored_url = restored_db or f"sqlite:///{tmp_path / 'restored' / 'facewarden.db'}"
    original = _answers(source, source_url)
    assert len(original) >= 4 and all(original)
    assert _answers(restored, restored_url) == original


def test_restore_without_sealed_keys_asks_for_them_to_be_put_in_place(
    tmp_path: Path, shared_dir: Path
) -> None:
    source = _env(tmp_path / "var", None)
    _ok(["init", "--no-tls"], source)
    _ok(["backup", str(tmp_path / "b")], source)
    restored = _env(tmp_path / "restored", None)
    out = _ok(["restore", str(tmp_path / "b")], restored)
    assert "no keys restored" in out
    again = _refused(["restore", str(tmp_path / "b")], restored)
    assert "facewarden.db exists already" in again
    assert not (tmp_path / "restored" / "keys").exists()
    assert "holds no readable manifest.json" in _refused(["restore", str(tmp_path)], restored)


def test_the_passphrase_is_asked_for_twice_when_sealing_and_once_when_opening(
    tmp_path: Path,
) -> None:
    source = _env(tmp_path / "var", None)
    _ok(["init", "--no-tls"], source)
    runner = CliRunner()
    mismatched = runner.invoke(
        cli, ["backup", str(tmp_path / "b"), "--include-keys"], env=source, input="one\ntwo\n"
    )
    assert "do not match" in mismatched.output  # click asks again, then input runs out
    assert not (tmp_path / "b").exists()
    sealed = runner.invoke(
        cli, ["backup", str(tmp_path / "b"), "--include-keys"], env=source, input="pw\npw\n"
    )
    assert sealed.exit_code == 0, sealed.output
    restored = _env(tmp_path / "restored", None)
    opened = runner.invoke(cli, ["restore", str(tmp_path / "b")], env=restored, input="pw\n")
    assert opened.exit_code == 0, opened.output
    assert "keys restored: ledger_key, ledger_secret" in opened.output
    assert _tree(tmp_path / "restored" / "keys") == _tree(tmp_path / "var" / "keys")


def test_a_restored_log_refuses_to_sign_over_what_its_witnesses_saw(tmp_path: Path) -> None:
    from api.app import create_app
    from tests.api.helpers import ledger_size, problem, registration_body, runtime_of
    from tests.witnesses import keygen, start_witness

    source = _env(tmp_path / "var", None)
    _ok(["init", "--no-tls"], source)
    log_key = _ok(["ledger", "key"], source).strip()
    keygen(tmp_path / "w1" / "key.pem", "oversight.test/w1")
    witness = start_witness(
        tmp_path / "w1" / "key.pem", tmp_path / "w1" / "state", [log_key], "oversight.test/w1"
    )
    named = {
        "FACEWARDEN_WITNESSES": f"{witness.vkey} {witness.prefix}",
        "FACEWARDEN_WITNESS_INTERVAL_MS": "3600000",  # the test runs the rounds
    }
    try:
        app = create_app(Settings.from_env({**source, **named}))
        client = app.test_client()
        assert client.post("/v1/registrations", json=registration_body()).status_code == 202
        sealed = tmp_path / "sealed"
        keyed = {**source, "FACEWARDEN_BACKUP_PASSPHRASE": PASSPHRASE}
        _ok(["backup", str(sealed), "--include-keys"], keyed)
        backed_up = ledger_size(app)
        for _ in range(3):  # acts after the backup, which the witness then cosigns
            assert client.post("/v1/registrations", json=registration_body()).status_code == 202
        rounds = runtime_of(app).witnessing
        assert rounds is not None and rounds.run_once() == {"oversight.test/w1": "ok"}
        rounds.stop()
        runtime_of(app).engine.dispose()

        restored = {**_env(tmp_path / "restored", None), "FACEWARDEN_BACKUP_PASSPHRASE": PASSPHRASE}
        _ok(["restore", str(sealed)], restored)
        started = create_app(Settings.from_env({**restored, **named}))
        try:
            answer = started.test_client().post("/v1/registrations", json=registration_body())
            assert problem(answer, 503)["type"] == "/problems/ledger-inconsistent"
            assert ledger_size(started) == backed_up  # nothing signed over what was witnessed
        finally:
            again = runtime_of(started).witnessing
            if again is not None:
                again.stop()
            runtime_of(started).engine.dispose()
    finally:
        witness.stop()
