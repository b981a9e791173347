"""``facewarden models``, ``gallery`` and ``doctor``: packs, bulk enrolment, resumption,
repair, and what a purge killed mid-way leaves to the replay."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest
from click.testing import CliRunner
from sqlalchemy import select as where
from sqlalchemy.orm import Session

from api.cli import cli
from api.settings import Settings
from governance.core.db import make_engine
from governance.gallery.models import GalleryPhoto
from tests.conftest import ensure_starter_pack, models_dir_for_tests

if TYPE_CHECKING:
    from biometrics.index import MilvusIndex


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    models = models_dir_for_tests()
    ensure_starter_pack(models)
    environment = {
        "FACEWARDEN_DATA_DIR": str(tmp_path / "var"),
        "FACEWARDEN_MODELS_DIR": str(models),
    }
    result = CliRunner().invoke(cli, ["init", "--no-tls"], env=environment)
    assert result.exit_code == 0, result.output
    return environment


def test_models_list_stars_the_pack_in_use(env: dict[str, str]) -> None:
    result = CliRunner().invoke(cli, ["models", "list"], env=env)
    assert result.exit_code == 0, result.output
    starred = [line for line in result.output.splitlines() if line.startswith("*")]
    assert len(starred) == 1 and "starter" in starred[0] and "512-d" in starred[0]


def test_models_import_an_insightface_directory(tmp_path: Path, shared_dir: Path) -> None:
    env = {"FACEWARDEN_MODELS_DIR": str(tmp_path / "models")}
    runner = CliRunner()
    result = runner.invoke(
        cli,
        [
            "models",
            "import",
            str(shared_dir / "models" / "ci-pack"),
            "--name",
            "ci",
            "--match-threshold",
            "0.4",
            "--match-far",
            "0.0005",
        ],
        env=env,
    )
    assert result.exit_code == 0, result.output
    manifest = json.loads((tmp_path / "models" / "ci" / "pack.json").read_text())
    assert manifest["name"] == "ci"
    assert (manifest["match_threshold"], manifest["match_far"]) == (0.4, 0.0005)
    listed = runner.invoke(cli, ["models", "list"], env=env)
    assert "ci" in listed.output and "threshold 0.40 FAR 5.0e-04" in listed.output


def test_models_calibrate_measures_and_records_a_pack(tmp_path: Path, shared_dir: Path) -> None:
    env = {"FACEWARDEN_MODELS_DIR": str(tmp_path / "models")}
    runner = CliRunner()
    imported = runner.invoke(
        cli, ["models", "import", str(shared_dir / "models" / "ci-pack"), "--name", "ci"], env=env
    )
    assert imported.exit_code == 0, imported.output
    assert "threshold 0.35 at FAR 8.9e-04" in imported.output  # the calibration of its files
    # A small labelled set of its own: 8 identities of the dev set, one photo listed as mislabelled.
    dev = shared_dir / "faces" / "dev"
    with (dev / "manifest.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    identities = sorted({r["identity"] for r in rows})[:8]
    labelled = tmp_path / "set"
    labelled.mkdir()
    with (labelled / "manifest.csv").open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=["file", "identity"])
        writer.writeheader()
        for row in rows:
            if row["identity"] in identities:
                writer.writerow({"file": str(dev / row["file"]), "identity": row["identity"]})
    first = next(r["file"] for r in rows if r["identity"] == identities[0])
    (labelled / "MISLABELLED.txt").write_text(f"# wrong\n{first}\n")
    result = runner.invoke(
        cli,
        ["models", "calibrate", "ci", "--set", str(labelled), "--far", "0.01", "--write"],
        env=env,
    )
    assert result.exit_code == 0, result.output
    assert "photos detected (1 mislabelled excluded)" in result.output
    manifest = json.loads((tmp_path / "models" / "ci" / "pack.json").read_text())
    assert f"threshold {manifest['match_threshold']:.2f} at FAR" in result.output
    assert 0 < manifest["match_far"] <= 0.01


def test_models_install_an_unknown_pack_fails_clearly(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli, ["models", "install", "no-such-pack"], env={"FACEWARDEN_MODELS_DIR": str(tmp_path)}
    )
    assert result.exit_code == 1
    assert "no-such-pack" in result.output and "Traceback" not in result.output


def test_gallery_ingest_enrols_rejects_and_resumes(
    env: dict[str, str], tmp_path: Path, shared_dir: Path
) -> None:
    dev = shared_dir / "faces" / "dev"
    with (dev / "manifest.csv").open(newline="") as fh:
        names = [row["file"] for row in csv.DictReader(fh)]
    files, spare = names[:10], names[10:12]
    (tmp_path / "not-an-image.jpg").write_bytes(b"%PDF-1.4 definitely not a photo")
    manifest = tmp_path / "manifest.csv"
    with manifest.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["path", "source_url", "collected_at", "collection_basis"])
        for name in files:
            writer.writerow(
                [
                    str(dev / name),
                    f"https://images.example.net/{name}",
                    "2025-06-01T00:00:00Z",
                    "consent",
                ]
            )
        writer.writerow(
            ["missing.jpg", "https://images.example.net/m.jpg", "2025-06-01", "consent"]
        )
        writer.writerow([str(dev / spare[0]), "ftp://bad.example/x", "2025-06-01", "consent"])
        writer.writerow(
            ["not-an-image.jpg", "https://x.example.net/y.jpg", "2025-06-01", "consent"]
        )
        writer.writerow(
            [str(dev / spare[1]), "https://x.example.net/z.jpg", "yesterday", "consent"]
        )
        writer.writerow(
            [str(dev / spare[1]), "https://x.example.net/z.jpg", "2025-06-01T10:00", "consent"]
        )

    runner = CliRunner()
    first = runner.invoke(cli, ["gallery", "ingest", str(manifest), "--batch-size", "4"], env=env)
    assert first.exit_code == 0, first.output
    assert "enrolled 10 photos" in first.output
    assert "rejected 5" in first.output
    assert "cannot read the file" in first.output
    assert "only JPEG, PNG and WebP" in first.output
    assert "collected_at is not an ISO 8601 date-time" in first.output
    assert "collected_at has no offset: add an offset such as Z" in first.output

    again = runner.invoke(cli, ["gallery", "ingest", str(manifest)], env=env)
    assert again.exit_code == 0, again.output
    assert "enrolled 0 photos" in again.output and "skipped 10 already enrolled" in again.output


def test_gallery_ingest_reports_a_manifest_without_required_columns(
    env: dict[str, str], tmp_path: Path
) -> None:
    manifest = tmp_path / "bad.csv"
    manifest.write_text("file,url\nx.jpg,https://a.example.org/x.jpg\n")
    result = CliRunner().invoke(cli, ["gallery", "ingest", str(manifest)], env=env)
    assert result.exit_code == 1
    assert "missing column(s) path, source_url, collected_at, collection_basis" in result.output


def _dev_manifest(
    tmp_path: Path, shared_dir: Path, rows: slice, site: Callable[[int], str]
) -> Path:
    """A manifest of some faces/dev photos, the i-th credited to ``site(i)``."""
    dev = shared_dir / "faces" / "dev"
    with (dev / "manifest.csv").open(newline="") as fh:
        names = [row["file"] for row in csv.DictReader(fh)][rows]
    manifest = tmp_path / "m.csv"
    with manifest.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["path", "source_url", "collected_at", "collection_basis"])
        for i, name in enumerate(names):
            url = f"https://{site(i)}/{name}"
            writer.writerow([str(dev / name), url, "2025-01-01", "consent"])
    return manifest


def test_gallery_block_purges_a_site_with_a_count(
    env: dict[str, str], tmp_path: Path, shared_dir: Path
) -> None:
    manifest = _dev_manifest(
        tmp_path,
        shared_dir,
        slice(20, 24),
        lambda i: "optout.example.com" if i < 3 else "stays.example.org",
    )
    runner = CliRunner()
    assert (
        "enrolled 4 photos"
        in runner.invoke(cli, ["gallery", "ingest", str(manifest)], env=env).output
    )
    result = runner.invoke(
        cli,
        ["gallery", "block", "www.optout.example.com", "--reason", "letter", "--reference", "L-1"],
        env=env,
    )
    assert result.exit_code == 0, result.output
    assert "blocked example.com" in result.output
    assert "purged 3 faces enrolled from example.com" in result.output
    again = runner.invoke(cli, ["gallery", "ingest", str(manifest)], env=env)
    assert "rejected 3" in again.output and "opted out" in again.output


def test_gallery_reindex_rebuilds_as_configured(
    env: dict[str, str], tmp_path: Path, shared_dir: Path
) -> None:
    manifest = _dev_manifest(tmp_path, shared_dir, slice(30, 33), lambda i: "ri.example.org")
    runner = CliRunner()
    assert (
        "enrolled 3 photos"
        in runner.invoke(cli, ["gallery", "ingest", str(manifest)], env=env).output
    )

    ivf = {**env, "FACEWARDEN_MILVUS_INDEX": "IVF_FLAT", "FACEWARDEN_MILVUS_NLIST": "8"}
    refused = runner.invoke(cli, ["gallery", "ingest", str(manifest)], env=ivf)
    assert refused.exit_code == 1
    assert "indexed with FLAT, not IVF_FLAT" in refused.output
    assert "facewarden gallery reindex" in refused.output

    declined = runner.invoke(cli, ["gallery", "reindex"], env=ivf, input="n\n")
    assert declined.exit_code == 1 and "FLAT -> IVF_FLAT" in declined.output
    result = runner.invoke(cli, ["gallery", "reindex", "--yes"], env=ivf)
    assert result.exit_code == 0, result.output
    assert "indexed with IVF_FLAT (3 faces)" in result.output
    again = runner.invoke(cli, ["gallery", "ingest", str(manifest)], env=ivf)
    assert again.exit_code == 0 and "skipped 3 already enrolled" in again.output


def _starter_index(env: dict[str, str]) -> MilvusIndex:
    from biometrics.index import MilvusIndex
    from biometrics.packs import load_pack

    pack = load_pack(Path(env["FACEWARDEN_MODELS_DIR"]) / "starter")
    index = MilvusIndex(
        str(Path(env["FACEWARDEN_DATA_DIR"]) / "milvus" / "gallery.db"),
        recognizer_sha256=pack.recognizer.sha256,
    )
    index.ensure_collection(pack.dimension)
    return index


def test_doctor_reports_repairs_and_records_leftovers(
    env: dict[str, str], tmp_path: Path, shared_dir: Path
) -> None:
    from biometrics.index import IndexedFace
    from ledger.cli import main as verify_main

    manifest = _dev_manifest(tmp_path, shared_dir, slice(40, 43), lambda i: "dr.example.org")
    runner = CliRunner()
    assert (
        "enrolled 3 photos"
        in runner.invoke(cli, ["gallery", "ingest", str(manifest)], env=env).output
    )
    clean = runner.invoke(cli, ["doctor"], env=env)
    assert clean.exit_code == 0, clean.output
    assert clean.output.strip().endswith("clean")

    # What kill -9 leaves: a face's vector gone, a vector and a photo without rows, a
    # temporary file of a write that never finished.
    index = _starter_index(env)
    try:
        faces = sorted(index.face_ids())
        index.delete(faces[:1])
        vector = np.ones(index.dim or 0, dtype=np.float32)
        index.insert([IndexedFace("4f1c2a9e-0000-4000-8000-000000000001", "p", "x.org", vector)])
    finally:
        index.close()
    photos = Path(env["FACEWARDEN_DATA_DIR"]) / "photos"
    digest = hashlib.sha256(b"killed").hexdigest()
    orphan = photos / digest[:2] / digest[2:4] / digest
    orphan.parent.mkdir(parents=True, exist_ok=True)
    orphan.write_bytes(b"killed")
    temporary = orphan.parent / ".incoming-abc123"
    temporary.write_bytes(b"kil")
    hour_ago = time.time() - 3600
    for path in (orphan, temporary):
        os.utime(path, (hour_ago, hour_ago))

    found = runner.invoke(cli, ["doctor"], env=env)
    assert found.exit_code == 1, found.output
    for line in (
        "faces missing from the index: 1",
        f"    {faces[0]}",
        "vectors without a face row: 1",
        f"stored files no row names: 1\n    {digest}",
        "stale temporary files: 1",
        "rows whose stored file is missing (restore the files from a backup): 0",
        "problems found: `facewarden doctor --repair`",
    ):
        assert line in found.output
    as_json = runner.invoke(cli, ["doctor", "--json"], env=env)
    assert as_json.exit_code == 1
    body = json.loads(as_json.stdout)
    assert (body["ok"], body["findings"]["files_without_rows"]) == (False, [digest])

    repaired = runner.invoke(cli, ["doctor", "--repair", "--grace", "0"], env=env)
    assert repaired.exit_code == 0, repaired.output
    assert (
        "repaired: 1 faces indexed again, 1 vectors, 1 files and 1 temporary files deleted"
        in repaired.stdout
    )
    assert not orphan.exists() and not temporary.exists()
    again = runner.invoke(cli, ["doctor"], env=env)
    assert again.exit_code == 0 and again.output.strip().endswith("clean"), again.output

    key = runner.invoke(cli, ["ledger", "key"], env=env).output.strip()
    bundle = tmp_path / "bundle"
    assert runner.invoke(cli, ["ledger", "export", str(bundle)], env=env).exit_code == 0
    lines = (bundle / "entries.jsonl").read_text().splitlines()
    assert [json.loads(line)["type"] for line in lines][-1] == "gallery:repair"
    assert verify_main(["bundle", str(bundle), "--key", key]) == 0
    assert verify_main(["audit", "bundle", str(bundle), "--key", key]) == 0


@contextmanager
def _index_file_held(env: dict[str, str]) -> Iterator[None]:
    """Another process has the data directory's milvus-lite file open for the block."""
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from biometrics.index import MilvusIndex; "
            "MilvusIndex(sys.argv[1], recognizer_sha256='0' * 64); print('open', flush=True); "
            "time.sleep(120)",
            str(Path(env["FACEWARDEN_DATA_DIR"]) / "milvus" / "gallery.db"),
        ],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[3],
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "open"
        yield
    finally:
        holder.terminate()
        holder.wait(timeout=30)


def test_doctor_explains_an_index_file_another_process_holds(env: dict[str, str]) -> None:
    with _index_file_held(env):
        result = CliRunner().invoke(cli, ["doctor"], env=env)
    assert result.exit_code == 1
    assert "another process holds it open" in result.output
    assert "python -m biometrics.index_server" in result.output
    assert "Traceback" not in result.output


_ROOT = Path(__file__).resolve().parents[3]


def _run(env: dict[str, str], *args: str, **kwargs: Any) -> subprocess.Popen[bytes]:
    """A Python subprocess in the repository on ``env``'s data directory."""
    return subprocess.Popen(
        [sys.executable, *args],
        cwd=_ROOT,
        env={**os.environ, **env, "PYTHONPATH": str(_ROOT)},
        **kwargs,
    )


def _facewarden(env: dict[str, str], *args: str) -> str:
    """Run the command line in a process of its own; returns its output. Fails on an error."""
    process = _run(env, "-m", "api.cli", *args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    output, _ = process.communicate(timeout=600)
    assert process.returncode == 0, output.decode()
    return output.decode()


def _gallery(env: dict[str, str], site: str) -> dict[str, dict[str, Any]]:
    """The photos enrolled from ``site``, by id: their files' digests and faces' embeddings."""
    engine = make_engine(Settings.from_env(env).database_url)
    try:
        with Session(engine) as session:
            rows = session.scalars(where(GalleryPhoto).where(GalleryPhoto.source_site == site))
            return {
                str(p.id): {
                    "files": [p.sha256, *(f.thumbnail_sha256 for f in p.faces)],
                    "faces": {str(f.id): f.embedding.hex() for f in p.faces},
                }
                for p in rows
            }
    finally:
        engine.dispose()


def _left_behind(env: dict[str, str], photos: list[dict[str, Any]]) -> tuple[int, int]:
    """How many files of ``photos`` are still stored, and how many of their faces indexed."""
    process = _run(
        env,
        "-m",
        "tests.unit.api.purge_driver",
        "left",
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    output, _ = process.communicate(json.dumps(photos).encode(), timeout=600)
    assert process.returncode == 0
    found = json.loads(output)
    return len(found["files"]), len(found["vectors"])


def test_a_purge_killed_after_a_commit_leaves_no_file_or_vector_once_replayed(
    env: dict[str, str], tmp_path: Path, shared_dir: Path
) -> None:
    site = "example.com"  # as the gallery names www.killed.example.com, where they came from
    manifest = _dev_manifest(
        tmp_path,
        shared_dir,
        slice(40, 44),
        lambda i: "www.killed.example.com" if i < 3 else "stays.example.org",
    )
    assert "enrolled 4 photos" in _facewarden(env, "gallery", "ingest", str(manifest))
    before = _gallery(env, site)
    assert (len(before), _left_behind(env, list(before.values()))) == (3, (6, 3))

    # kill -9 once the first batch of one photo has committed, before its effects are applied.
    with (tmp_path / "driver.err").open("wb") as err:
        driver = _run(
            env,
            "-m",
            "tests.unit.api.purge_driver",
            "block",
            site,
            stdout=subprocess.PIPE,
            stderr=err,
        )
        try:
            assert driver.stdout is not None
            ready, _, _ = select.select([driver.stdout], [], [], 300)
            line = driver.stdout.readline() if ready else b""
            assert line == b"committed\n", (tmp_path / "driver.err").read_text()
        finally:
            driver.send_signal(signal.SIGKILL)
            driver.wait()
    assert driver.returncode == -signal.SIGKILL
    after = _gallery(env, site)
    purged = [before[photo_id] for photo_id in before.keys() - after.keys()]
    # The committed batch's rows are gone; its photo, thumbnail and vector are not.
    assert (len(purged), _left_behind(env, purged)) == (1, (2, 1))

    # Restart: the sweep (as at start-up) applies what the killed process left pending.
    swept = _facewarden(env, "governance", "sweep")
    assert "effects: 2 pending effects applied, 0 failed" in swept
    assert _left_behind(env, purged) == (0, 0)

    # And the block, run again, purges the rest.
    rerun = _facewarden(env, "gallery", "block", site, "--reason", "letter", "--reference", "L-9")
    assert "purged 2 faces enrolled from example.com" in rerun
    assert _gallery(env, site) == {}
    assert _left_behind(env, list(before.values())) == (0, 0)
    assert len(_gallery(env, "example.org")) == 1


def test_gallery_commands_run_beside_a_server_of_several_workers(
    env: dict[str, str], tmp_path: Path, shared_dir: Path
) -> None:
    """`serve` shares the embedded milvus-lite file over a socket: its two workers, and the
    CLI's ingest, block and doctor run while it serves, all see the same vectors."""
    import urllib.request

    from tests.api.served import free_port

    dev = shared_dir / "faces" / "dev"
    with (dev / "manifest.csv").open(newline="") as fh:
        names = [row["file"] for row in csv.DictReader(fh)][:3]
    manifest = tmp_path / "manifest.csv"
    with manifest.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["path", "source_url", "collected_at", "collection_basis"])
        for name in names:
            writer.writerow(
                [str(dev / name), f"https://beside.example.net/{name}", "2025-06-01", "consent"]
            )
    served_env = {**os.environ, **env, "FACEWARDEN_TRUSTED_PROXIES": "127.0.0.1"}
    port = free_port()
    serve = ["serve", "--http", "--workers", "2", "--port", str(port)]
    server = subprocess.Popen(
        [sys.executable, "-m", "api.cli", *serve],
        env=served_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )

    def faces_served() -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=30) as answer:
            return str(json.load(answer)["checks"]["vector_index"]["detail"])

    def command(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "api.cli", *args],
            check=False,
            env=served_env,
            capture_output=True,
            text=True,
            timeout=300,
        )

    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                before = faces_served()
                break
            except OSError:
                assert server.poll() is None and time.monotonic() < deadline, _drain(server)
                time.sleep(0.3)
        assert before.endswith(": 0 faces")
        ingested = command("gallery", "ingest", str(manifest))
        assert ingested.returncode == 0, ingested.stdout + ingested.stderr
        assert "enrolled 3 photos" in ingested.stdout
        assert {faces_served() for _ in range(4)} == {before.replace(": 0 ", ": 3 ")}
        doctor = command("doctor", "--json")
        assert doctor.returncode == 0, doctor.stdout + doctor.stderr
        assert json.loads(doctor.stdout)["clean"] is True
        blocked = command(
            "gallery", "block", "beside.example.net", "--reason", "opt-out", "--reference", "L-1"
        )
        assert blocked.returncode == 0, blocked.stdout + blocked.stderr
        assert {faces_served() for _ in range(4)} == {before}
    finally:
        server.send_signal(signal.SIGTERM)
        output = server.communicate(timeout=60)[0].decode()
    assert server.returncode == 0, output
    assert output.count("Running on http://127.0.0.1:") == 2, output
    # The socket and its note are gone with the server; the file opens directly again.
    data = Path(env["FACEWARDEN_DATA_DIR"])
    assert not list(data.rglob(".*.serving"))
    direct = command("doctor", "--json")
    assert direct.returncode == 0, direct.stdout + direct.stderr


def _drain(process: subprocess.Popen[bytes]) -> str:
    if process.poll() is None:
        process.kill()
    return process.communicate()[0].decode()


def test_a_server_whose_index_file_another_process_holds(env: dict[str, str]) -> None:
    """One worker starts and reports the index not ready; several refuse, naming the file."""
    import urllib.error
    import urllib.request

    from tests.api.served import free_port

    served_env = {**os.environ, **env, "FACEWARDEN_TRUSTED_PROXIES": "127.0.0.1"}
    with _index_file_held(env):
        refused = subprocess.run(
            [sys.executable, "-m", "api.cli", "serve", "--http", "--workers", "2"],
            check=False,
            env=served_env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert refused.returncode == 1, refused.stdout + refused.stderr
        assert "another process holds the vector index file" in refused.stderr
        port = free_port()
        one = subprocess.Popen(
            [sys.executable, "-m", "api.cli", "serve", "--http", "--port", str(port)],
            env=served_env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 120
            while True:
                try:
                    urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=30)
                except urllib.error.HTTPError as answer:
                    status, body = answer.code, json.load(answer)
                    break
                except OSError:
                    assert one.poll() is None and time.monotonic() < deadline, _drain(one)
                    time.sleep(0.3)
            assert status == 503
            assert body["checks"]["vector_index"]["ok"] is False
            assert body["checks"]["database"]["ok"] is True
        finally:
            one.send_signal(signal.SIGTERM)
            output = one.communicate(timeout=60)[0].decode()
    assert "the worker opens it once it is free" in output
