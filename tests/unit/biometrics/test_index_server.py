"""Tests of the shared index server (biometrics/index_server.py) and of the Milvus server path.

The `milvus_server` suite starts the standalone Milvus of the PyPI package `milvus` (command
`milvus-server`, or FACEWARDEN_TEST_MILVUS_SERVER) itself, and skips when it is absent or
won't start.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from biometrics.errors import IndexUnavailable
from biometrics.index import IndexedFace, IndexTuning, MilvusIndex
from biometrics.index_server import IndexServer, ServerAddress, wait_until_listening
from tests.milvus import milvus_server
from tests.unit.biometrics import test_index as lite

REPO = Path(__file__).resolve().parents[3]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def served(tmp_path: Path) -> Iterator[ServerAddress]:
    """`python -m biometrics.index_server` as the operator of several serve workers would run it."""
    port = _free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "biometrics.index_server",
            "--data",
            str(tmp_path / "index" / "shared.db"),
            "--port",
            str(port),
        ],
        cwd=REPO,
        umask=0o022,  # a shell's common umask: the server sets its own
    )
    address = ServerAddress("127.0.0.1", port)
    try:
        wait_until_listening(address, timeout=30, process=process)
        yield address
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=20) == 0


def test_two_worker_processes_share_one_index_through_the_server(
    served: ServerAddress, tmp_path: Path
) -> None:
    digest = "c" * 64
    reader = MilvusIndex(served.uri, recognizer_sha256=digest)
    reader.ensure_collection(lite.DIM)
    vectors = lite._unit(20, np.random.default_rng(11))
    np.save(tmp_path / "vectors.npy", vectors)
    worker = textwrap.dedent(
        f"""
        import numpy as np
        from biometrics.index import IndexedFace, MilvusIndex
        vectors = np.load({str(tmp_path / "vectors.npy")!r})
        index = MilvusIndex("{served.uri}", recognizer_sha256="{digest}")
        index.ensure_collection({lite.DIM})
        index.insert([IndexedFace(f"w{{i}}", "p", "s", v) for i, v in enumerate(vectors)])
        index.close()
        """
    )
    subprocess.run([sys.executable, "-c", worker], cwd=REPO, check=True, timeout=60)
    assert reader.count() == 20
    assert reader.search(vectors[5], 1)[0].face_id == "w5"
    reader.delete(["w5"])
    assert reader.search(vectors[5], 1)[0].face_id != "w5"
    reader.close()
    # The embeddings on disk are the owner's alone.
    index_dir = tmp_path / "index"
    paths = [index_dir, *index_dir.rglob("*")]
    modes = {p.relative_to(tmp_path).as_posix(): p.stat().st_mode & 0o777 for p in paths}
    assert modes["index/shared.db"] == 0o600
    assert {
        p: m for p, m in modes.items() if m != (0o700 if (tmp_path / p).is_dir() else 0o600)
    } == {}


def test_the_server_keeps_the_data_across_restarts(tmp_path: Path) -> None:
    data = tmp_path / "restart.db"
    vectors = lite._unit(10, np.random.default_rng(12))
    for round_ in range(2):
        server = IndexServer(data, port=_free_port())
        address = server.start()
        try:
            index = MilvusIndex(address.uri, recognizer_sha256="d" * 64)
            index.ensure_collection(lite.DIM)
            if round_ == 0:
                index.insert(lite._faces(vectors))
                index.flush()
            else:
                assert index.count() == 10
                assert index.search(vectors[3], 1)[0].face_id == "f3"
            index.close()
        finally:
            server.stop()


def test_the_server_refuses_a_non_loopback_address(tmp_path: Path) -> None:
    with pytest.raises(IndexUnavailable, match="loopback only"):
        IndexServer(tmp_path / "x.db", host="0.0.0.0")


# --- the Milvus standalone server -------------------------------------------------------------


@pytest.fixture(scope="module")
def milvus_uri(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with milvus_server(tmp_path_factory.mktemp("milvus-server")) as uri:
        yield uri


@pytest.fixture
def server_index(milvus_uri: str) -> Iterator[MilvusIndex]:
    index = MilvusIndex(
        milvus_uri, recognizer_sha256=lite._digest(), tuning=IndexTuning(index_type="FLAT")
    )
    index.ensure_collection(lite.DIM)
    yield index
    index._client.drop_collection(index.collection)
    index.close()


@pytest.mark.milvus_server
def test_server_ranking_equals_exact_cosine_ranking(server_index: MilvusIndex) -> None:
    lite.test_search_ranking_equals_exact_cosine_ranking(server_index)


@pytest.mark.milvus_server
def test_server_excludes_hostile_sites(server_index: MilvusIndex) -> None:
    lite.test_hostile_sites_are_excluded_exactly(server_index)


@pytest.mark.milvus_server
def test_server_deletes_leave_no_trace(server_index: MilvusIndex) -> None:
    lite.test_delete_by_id_site_and_photo_leaves_no_trace(server_index)


@pytest.mark.milvus_server
def test_server_upsert_replaces(server_index: MilvusIndex) -> None:
    lite.test_upsert_replaces_and_insert_of_nothing_is_a_no_op(server_index)


@pytest.mark.milvus_server
def test_server_collections_per_recognizer_are_separate(milvus_uri: str) -> None:
    lite.test_collections_per_recognizer_are_separate(milvus_uri)


@pytest.mark.milvus_server
def test_server_hnsw_finds_planted_mates(milvus_uri: str) -> None:
    index = MilvusIndex(milvus_uri, recognizer_sha256=lite._digest(), tuning=IndexTuning("HNSW"))
    index.ensure_collection(lite.DIM)
    rng = np.random.default_rng(13)
    probes = lite._unit(10, rng)
    mates = probes + 0.6 * lite._unit(10, rng)
    gallery = np.concatenate(
        [lite._unit(2000, rng), mates / np.linalg.norm(mates, axis=1)[:, None]]
    )
    index.insert([IndexedFace(f"f{i}", "p", "s", v) for i, v in enumerate(gallery)])
    index.flush()
    for i, hits in enumerate(index.search_many(probes, 5)):
        assert hits[0].face_id == f"f{2000 + i}"
    index._client.drop_collection(index.collection)
    index.close()


@pytest.mark.milvus_server
def test_server_rebuilds_a_flat_collection_as_hnsw(milvus_uri: str) -> None:
    digest = lite._digest()
    flat = MilvusIndex(milvus_uri, recognizer_sha256=digest, tuning=IndexTuning("FLAT"))
    flat.ensure_collection(lite.DIM)
    rng = np.random.default_rng(17)
    gallery = lite._unit(3000, rng)
    flat.insert([IndexedFace(f"f{i}", "p", "s", v) for i, v in enumerate(gallery)])
    flat.flush()
    flat.close()

    hnsw = MilvusIndex(milvus_uri, recognizer_sha256=digest, tuning=IndexTuning("HNSW"))
    try:
        with pytest.raises(IndexUnavailable, match="indexed with FLAT, not HNSW"):
            hnsw.ensure_collection(lite.DIM)
        hnsw.rebuild_index()
        assert hnsw.index_type() == "HNSW"
        deadline = time.monotonic() + 120
        while hnsw.index_progress()[0] < 3000:
            assert time.monotonic() < deadline, f"index build stalled at {hnsw.index_progress()}"
            time.sleep(1)
        hnsw.ensure_collection(lite.DIM)
        for i, hits in enumerate(hnsw.search_many(gallery[:20], 1)):
            assert hits[0].face_id == f"f{i}"
    finally:
        hnsw._client.drop_collection(hnsw.collection)
        hnsw.close()
