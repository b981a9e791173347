"""Tests of biometrics/index.py on a real milvus-lite file: ranking, filters, deletes, reopen."""

from __future__ import annotations

import hashlib
import itertools
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from biometrics.errors import (
    BiometricsError,
    DimensionMismatch,
    IndexUnavailable,
    InvalidQuery,
    VectorIndexError,
)
from biometrics.index import (
    IndexedFace,
    IndexTuning,
    MilvusIndex,
    VectorIndex,
    channel_options,
    collection_name,
    quote_string,
    site_exclusion_filter,
)

DIM = 64
HOSTILE_SITES = [
    'quote"site',
    "back\\slash",
    "trailing\\",
    '"] or source_site in ["',
    "') or (1 == 1",
    '\\" or true or "',
    "ünïcödé.example",
    "emoji-😀.example",
    "",
    "   ",
]
_counter = itertools.count()


def _digest() -> str:
    return hashlib.sha256(f"recognizer-{next(_counter)}".encode()).hexdigest()


def _unit(rows: int, rng: np.random.Generator, dim: int = DIM) -> npt.NDArray[np.float32]:
    x = rng.standard_normal((rows, dim)).astype(np.float32)
    unit: npt.NDArray[np.float32] = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(
        np.float32
    )
    return unit


def _faces(
    vectors: npt.NDArray[np.float32], *, sites: list[str] | None = None, prefix: str = "f"
) -> list[IndexedFace]:
    sites = sites or ["a.example"]
    return [
        IndexedFace(
            face_id=f"{prefix}{i}",
            photo_id=f"photo{i // 2}",
            source_site=sites[i % len(sites)],
            embedding=v,
        )
        for i, v in enumerate(vectors)
    ]


@pytest.fixture(scope="module")
def db_uri(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(tmp_path_factory.mktemp("milvus") / "index.db")


@pytest.fixture
def index(db_uri: str) -> Iterator[MilvusIndex]:
    idx = MilvusIndex(db_uri, recognizer_sha256=_digest(), tuning=IndexTuning(index_type="FLAT"))
    idx.ensure_collection(DIM)
    yield idx


def test_collection_name_is_derived_from_the_recognizer_digest() -> None:
    digest = hashlib.sha256(b"model").hexdigest()
    assert collection_name(digest) == f"faces_{digest[:16]}"
    for bad in ["", digest[:63], digest.upper(), digest + "0", "g" * 64]:
        with pytest.raises(InvalidQuery, match="64 lower-case hex"):
            collection_name(bad)


def test_errors_share_one_root_under_biometrics() -> None:
    for error in (IndexUnavailable, DimensionMismatch, InvalidQuery):
        assert issubclass(error, VectorIndexError)
    assert issubclass(VectorIndexError, BiometricsError)


@pytest.mark.parametrize("site", HOSTILE_SITES)
def test_quote_string_escapes_quotes_and_backslashes(site: str) -> None:
    literal = quote_string(site)
    assert literal.startswith('"') and literal.endswith('"')
    body = literal[1:-1]
    # every quote inside is escaped, so the literal cannot end early
    assert '"' not in body.replace("\\\\", "").replace('\\"', "")


@pytest.mark.parametrize("bad", ["new\nline", "tab\there", "nul\x00", "del\x7f"])
def test_control_characters_are_refused(bad: str, index: MilvusIndex) -> None:
    with pytest.raises(InvalidQuery, match="control characters"):
        quote_string(bad)
    with pytest.raises(InvalidQuery, match="control characters"):
        index.search(_unit(1, np.random.default_rng(0))[0], 5, exclude_sites=[bad])
    face = _faces(_unit(1, np.random.default_rng(0)), sites=[bad])
    with pytest.raises(InvalidQuery, match="control characters"):
        index.insert(face)


def test_site_exclusion_filter_is_sorted_deduplicated_and_empty_for_none() -> None:
    assert site_exclusion_filter([]) == ""
    assert site_exclusion_filter(["b", "a", "b"]) == 'source_site not in ["a", "b"]'


def test_adapter_implements_the_protocol(index: MilvusIndex) -> None:
    assert isinstance(index, VectorIndex)


def test_search_ranking_equals_exact_cosine_ranking(index: MilvusIndex) -> None:
    rng = np.random.default_rng(1)
    gallery = _unit(3000, rng)
    # planted mates: noisy copies of the probes, as a second photo of the same person
    probes = _unit(20, rng)
    mates = probes + 0.6 * _unit(20, rng)
    mates /= np.linalg.norm(mates, axis=1, keepdims=True)
    stored = np.concatenate([gallery, mates])
    index.insert(_faces(stored))
    index.flush()
    assert index.count() == len(stored)
    results = index.search_many(probes, 10)
    for probe_index, (probe, hits) in enumerate(zip(probes, results, strict=True)):
        scores = stored @ probe
        exact = np.argsort(-scores)[:10]
        assert [h.face_id for h in hits] == [f"f{i}" for i in exact]
        np.testing.assert_allclose([h.score for h in hits], scores[exact], atol=1e-4)
        assert hits[0].face_id == f"f{3000 + probe_index}"  # the mate ranks first
        assert hits[0].photo_id == f"photo{(3000 + probe_index) // 2}"
    one = index.search(probes[0], 3)
    assert [h.face_id for h in one] == [h.face_id for h in results[0][:3]]


def test_scores_are_cosine_similarities_whatever_the_vectors_norms(index: MilvusIndex) -> None:
    # The index stores unit vectors and ranks by inner product: embeddings of any length must
    # still be ranked and scored by their cosine similarity.
    rng = np.random.default_rng(11)
    unit = _unit(500, rng)
    lengths = rng.uniform(0.05, 20.0, size=(500, 1)).astype(np.float32)
    index.insert(_faces(unit * lengths))
    probe = _unit(1, rng)[0]
    hits = index.search(probe * 7.5, 10)
    scores = unit @ probe
    exact = np.argsort(-scores)[:10]
    assert [h.face_id for h in hits] == [f"f{i}" for i in exact]
    np.testing.assert_allclose([h.score for h in hits], scores[exact], atol=1e-4)
    assert index.metric == "IP"


def _older_collection(uri: str, digest: str, vectors: npt.NDArray[np.float32]) -> None:
    """A collection as an earlier release built it: metric COSINE, vectors stored as given."""
    from pymilvus import DataType, MilvusClient

    client = MilvusClient(uri=uri)
    schema = client.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("face_id", DataType.VARCHAR, max_length=64, is_primary=True)
    schema.add_field("photo_id", DataType.VARCHAR, max_length=64)
    schema.add_field("source_site", DataType.VARCHAR, max_length=512)
    schema.add_field("embedding", DataType.FLOAT_VECTOR, dim=DIM)
    params = client.prepare_index_params()
    params.add_index(field_name="embedding", index_type="FLAT", metric_type="COSINE")
    client.create_collection(collection_name(digest), schema=schema, index_params=params)
    client.insert(
        collection_name(digest),
        [
            {"face_id": f"f{i}", "photo_id": "p", "source_site": "a.example", "embedding": v}
            for i, v in enumerate(vectors.tolist())
        ],
    )
    client.flush(collection_name(digest))
    client.close()


def _assert_cosine_ranking(
    index: MilvusIndex, stored: npt.NDArray[np.float32], probe: npt.NDArray[np.float32]
) -> None:
    hits = index.search(probe, 5)
    unit = stored / np.linalg.norm(stored, axis=1, keepdims=True)
    scores = unit @ (probe / np.linalg.norm(probe))
    exact = np.argsort(-scores)[:5]
    assert [h.face_id for h in hits] == [f"f{i}" for i in exact]
    np.testing.assert_allclose([h.score for h in hits], scores[exact], atol=1e-4)


def test_a_collection_built_with_cosine_keeps_its_metric_through_a_rebuild(
    tmp_path: Path,
) -> None:
    # Galleries built before the index moved to inner products hold vectors of any length:
    # they must keep COSINE, also when `facewarden gallery reindex` rebuilds their index (it
    # does not call ensure_collection first).
    uri, digest = str(tmp_path / "older.db"), _digest()
    rng = np.random.default_rng(12)
    stored = _unit(300, rng) * rng.uniform(0.05, 20.0, size=(300, 1)).astype(np.float32)
    _older_collection(uri, digest, stored)
    probe = _unit(1, rng)[0]

    reopened = MilvusIndex(uri, recognizer_sha256=digest)
    reopened.ensure_collection(DIM)
    assert reopened.metric == "COSINE"
    _assert_cosine_ranking(reopened, stored, probe)
    reopened.close()

    rebuilt = MilvusIndex(uri, recognizer_sha256=digest)
    rebuilt.rebuild_index()
    assert rebuilt.metric == "COSINE"
    rebuilt.ensure_collection(DIM)
    _assert_cosine_ranking(rebuilt, stored, probe)
    rebuilt.close()


def test_a_collection_without_an_index_is_searched_with_cosine(tmp_path: Path) -> None:
    # A rebuild that died between dropping and creating the index leaves no metric on record;
    # nothing then says the stored vectors are unit vectors, so COSINE, right for any, is used.
    from pymilvus import MilvusClient

    uri, digest = str(tmp_path / "unindexed.db"), _digest()
    rng = np.random.default_rng(13)
    stored = _unit(200, rng) * rng.uniform(0.05, 20.0, size=(200, 1)).astype(np.float32)
    _older_collection(uri, digest, stored)
    client = MilvusClient(uri=uri)
    client.release_collection(collection_name(digest))
    client.drop_index(collection_name(digest), index_name="embedding")
    client.close()

    index = MilvusIndex(uri, recognizer_sha256=digest)
    index.rebuild_index()
    assert index.metric == "COSINE"
    index.ensure_collection(DIM)
    _assert_cosine_ranking(index, stored, _unit(1, rng)[0])
    index.close()


def test_min_score_drops_weak_hits(index: MilvusIndex) -> None:
    rng = np.random.default_rng(2)
    vectors = _unit(200, rng)
    index.insert(_faces(vectors))
    hits = index.search(vectors[7], 50, min_score=0.2)
    assert hits[0].face_id == "f7" and hits[0].score == pytest.approx(1.0, abs=1e-5)
    assert all(h.score >= 0.2 for h in hits)
    assert len(hits) == int(((vectors @ vectors[7]) >= 0.2).sum())


def test_hostile_sites_are_excluded_exactly(index: MilvusIndex) -> None:
    rng = np.random.default_rng(3)
    sites = [*HOSTILE_SITES, "plain.example"]
    vectors = _unit(len(sites) * 4, rng)
    index.insert(_faces(vectors, sites=sites))
    query = vectors[0]
    everything = index.search(query, 100)
    assert len(everything) == len(vectors)
    assert {h.source_site for h in everything} == set(sites)
    for site in sites:
        hits = index.search(query, 100, exclude_sites=[site])
        assert site not in {h.source_site for h in hits}
        assert len(hits) == len(vectors) - 4
    hits = index.search(query, 100, exclude_sites=HOSTILE_SITES)
    assert {h.source_site for h in hits} == {"plain.example"}


def test_delete_by_id_site_and_photo_leaves_no_trace(index: MilvusIndex) -> None:
    rng = np.random.default_rng(4)
    vectors = _unit(40, rng)
    index.insert(_faces(vectors, sites=["keep.example", 'drop"site']))
    index.flush()
    index.delete(["f0", "f2", "unknown"])
    assert index.count() == 38
    assert index.search(vectors[0], 1)[0].face_id != "f0"
    index.delete_site('drop"site')  # the 20 odd-numbered faces
    assert index.count() == 18
    assert all(h.source_site == "keep.example" for h in index.search(vectors[1], 40))
    index.delete_photo("photo2")  # f4 (f5 already gone)
    assert index.count() == 17
    remaining = {h.face_id for h in index.search(vectors[4], 40)}
    assert remaining == {f"f{i}" for i in range(6, 40, 2)}


def test_upsert_replaces_and_insert_of_nothing_is_a_no_op(index: MilvusIndex) -> None:
    rng = np.random.default_rng(5)
    first, second = _unit(2, rng)
    index.insert([])
    index.upsert([IndexedFace("x", "p", "old.example", first)])
    index.upsert([IndexedFace("x", "p", "new.example", second)])
    assert index.count() == 1
    [hit] = index.search(second, 5)
    assert (hit.face_id, hit.source_site) == ("x", "new.example")
    assert hit.score == pytest.approx(1.0, abs=1e-5)


def test_face_ids_lists_every_stored_id_across_batches(index: MilvusIndex) -> None:
    rng = np.random.default_rng(6)
    index.insert(_faces(_unit(5200, rng)))  # more than one listing batch (5000)
    index.delete(["f7"])
    listed = list(index.face_ids())
    assert len(listed) == 5199
    assert set(listed) == {f"f{i}" for i in range(5200)} - {"f7"}


def test_collections_per_recognizer_are_separate(db_uri: str) -> None:
    rng = np.random.default_rng(6)
    one = MilvusIndex(db_uri, recognizer_sha256=_digest())
    two = MilvusIndex(db_uri, recognizer_sha256=_digest())
    one.ensure_collection(DIM)
    two.ensure_collection(128)
    assert one.collection != two.collection
    vectors = _unit(30, rng)
    one.insert(_faces(vectors))
    two.insert(_faces(_unit(5, rng, 128), prefix="g"))
    assert (one.count(), two.count()) == (30, 5)
    assert {h.face_id[0] for h in one.search(vectors[0], 50)} == {"f"}
    with pytest.raises(DimensionMismatch, match="128-d"):
        two.search(vectors[0], 5)


def test_reopen_after_close_keeps_the_data(tmp_path: Path) -> None:
    uri = str(tmp_path / "persist.db")
    digest = _digest()
    vectors = _unit(50, np.random.default_rng(7))
    first = MilvusIndex(uri, recognizer_sha256=digest)
    first.ensure_collection(DIM)
    first.insert(_faces(vectors))
    first.delete(["f3"])
    first.flush()
    first.close()
    again = MilvusIndex(uri, recognizer_sha256=digest)
    again.ensure_collection(DIM)
    assert again.count() == 49
    assert again.search(vectors[10], 1)[0].face_id == "f10"
    assert "f3" not in {h.face_id for h in again.search(vectors[3], 49)}
    with pytest.raises(DimensionMismatch, match="holds 64-d vectors, not 32-d"):
        again.ensure_collection(32)
    again.close()


@pytest.mark.parametrize(
    ("query", "top_k", "kwargs", "error", "message"),
    [
        (np.full(DIM, np.nan, np.float32), 5, {}, InvalidQuery, "finite"),
        (np.zeros(DIM, np.float32), 5, {}, InvalidQuery, "zero vector"),
        (np.ones(DIM + 1, np.float32), 5, {}, DimensionMismatch, "65-d"),
        (np.ones((2, DIM), np.float32), 5, {}, InvalidQuery, "1-D"),
        (np.ones(DIM, np.float32), 0, {}, InvalidQuery, "top_k"),
        (np.ones(DIM, np.float32), 20000, {}, InvalidQuery, "top_k"),
        (np.ones(DIM, np.float32), 5, {"exclude_sites": "a.example"}, InvalidQuery, "not one"),
        (np.ones(DIM, np.float32), 5, {"min_score": float("nan")}, InvalidQuery, "finite"),
    ],
)
def test_bad_search_arguments_are_refused(
    index: MilvusIndex,
    query: np.ndarray,
    top_k: int,
    kwargs: dict[str, Any],
    error: type,
    message: str,
) -> None:
    with pytest.raises(error, match=message):
        index.search(query, top_k, **kwargs)


def test_bad_ids_are_refused(index: MilvusIndex) -> None:
    vector = _unit(1, np.random.default_rng(8))[0]
    for face_id in ["", "x" * 65]:
        with pytest.raises(InvalidQuery, match="face_id"):
            index.insert([IndexedFace(face_id, "p", "s", vector)])
    with pytest.raises(InvalidQuery, match="photo_id"):
        index.delete_photo("")


def test_using_the_index_before_ensure_collection_is_an_error(db_uri: str) -> None:
    idx = MilvusIndex(db_uri, recognizer_sha256=_digest())
    with pytest.raises(IndexUnavailable, match="ensure_collection"):
        idx.search(np.ones(DIM, np.float32), 1)


def test_an_unreachable_server_is_index_unavailable() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(IndexUnavailable, match=r"127\.0\.0\.1"):
        MilvusIndex(f"http://127.0.0.1:{port}", recognizer_sha256=_digest(), timeout=2)


@pytest.mark.parametrize(
    ("uri", "local"),
    [
        ("var/milvus/gallery.db", True),
        ("/srv/facewarden/gallery.db", True),
        ("unix:/run/facewarden/index.sock", True),
        ("http://milvus:19530", False),
        ("https://milvus.example.org", False),
    ],
)
def test_a_local_index_is_not_pinged_while_idle(uri: str, local: bool) -> None:
    """Pings a default gRPC server refuses end in GOAWAY too_many_pings, printed on stderr."""
    options = channel_options(uri)
    if local:
        assert options == {
            "grpc.keepalive_time_ms": 300_000,
            "grpc.keepalive_permit_without_calls": 0,
        }
    else:
        assert options == {}


def test_the_milvus_lite_channel_gets_the_local_options(index: MilvusIndex) -> None:
    # pymilvus keeps the options its channel was built with on its handler.
    handler = index._client._handler
    assert handler._grpc_options["grpc.keepalive_permit_without_calls"] == 0
    assert handler._grpc_options["grpc.keepalive_time_ms"] == 300_000


def test_a_call_that_outlasts_its_timeout_is_refused_at_the_timeout(
    db_uri: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """pymilvus gives each retry the whole timeout (and may describe the collection first): a
    server shutting down held a search for 46 s with a 10 s timeout. The index stops waiting
    at the timeout, whatever pymilvus does."""
    import time

    idx = MilvusIndex(
        db_uri,
        recognizer_sha256=_digest(),
        tuning=IndexTuning(index_type="FLAT"),
        call_timeout=0.5,
    )
    idx.ensure_collection(DIM)
    rng = np.random.default_rng(7)
    idx.upsert(_faces(_unit(2, rng), prefix="bounded"))
    assert idx.count() >= 2  # in time: answered

    def stuck(*_args: Any, **_kwargs: Any) -> Any:
        time.sleep(3)  # as an attempt, then its retry, each given the whole timeout
        return []

    for name in ("search", "query", "upsert", "delete"):
        monkeypatch.setattr(idx._client, name, stuck)
    for call in (
        lambda: idx.search(_unit(1, rng)[0], 3),
        idx.count,
        lambda: idx.upsert(_faces(_unit(1, rng), prefix="late")),
        lambda: idx.delete_photo("photo1"),
    ):
        started = time.monotonic()
        with pytest.raises(IndexUnavailable, match=r"did not answer within 0\.5 s"):
            call()
        assert time.monotonic() - started < 1.5
    idx.close()
