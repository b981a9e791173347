"""The face gallery's vector index: the `VectorIndex` port and its Milvus adapter (`MilvusIndex`).

One collection per recognizer (`faces_<first 16 hex of its sha256>`), so embeddings of different
models are never compared. pymilvus is imported only here; see docs/vector-index.md for the choices.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as Late
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from biometrics.errors import DimensionMismatch, IndexUnavailable, InvalidQuery, VectorIndexError

__all__ = [
    "MAX_ID_LENGTH",
    "MAX_SITE_LENGTH",
    "MAX_TOP_K",
    "Hit",
    "IndexTuning",
    "IndexedFace",
    "MilvusIndex",
    "VectorIndex",
    "collection_name",
    "quote_string",
    "site_exclusion_filter",
]

MAX_ID_LENGTH = 64
"""Face and photo ids are strings (UUIDs in practice) of at most this many characters."""
MAX_SITE_LENGTH = 512
MAX_TOP_K = 16384
"""Milvus refuses a larger `limit`."""
_INSERT_BATCH = 1000
"""milvus-lite 2.5.1 slows from ~8k to ~190 rows/s when one insert carries 4000 rows of 512-d."""
_LIST_BATCH = 5000
# Searches, counts, writes and deletes in flight at once, each waited for `call_timeout` at most.
_BOUNDED_CALLS = 32
"""Ids read per round trip when listing a collection (ids only: no vectors travel)."""

_PK, _PHOTO, _SITE, _VECTOR = "face_id", "photo_id", "source_site", "embedding"
_METRIC = "IP"

LOCAL_CHANNEL_OPTIONS: dict[str, int] = {
    # pymilvus pings every 10 s even with no call in flight; a gRPC server left at its defaults
    # (milvus-lite's, the local index server's) allows one ping per 5 minutes without data and
    # answers more with GOAWAY "too_many_pings", which gRPC's C core prints on stderr, outside
    # the service's JSON log. A local socket has no idle NAT to keep open: ping no more often
    # than the server allows, and never while idle.
    "grpc.keepalive_time_ms": 300_000,
    "grpc.keepalive_permit_without_calls": 0,
}


def channel_options(uri: str) -> dict[str, int]:
    """The gRPC channel options for ``uri``: the local ones for a milvus-lite file or socket."""
    local = uri.startswith("unix:") or not re.match(r"^[a-z][a-z0-9+.-]*://", uri, re.I)
    return dict(LOCAL_CHANNEL_OPTIONS) if local else {}


"""Vectors are stored and searched as unit vectors, so the inner product is their cosine
similarity, and milvus-lite's exact search computes it ~1.4x faster than COSINE (which divides by
both norms for every row): 20 against 28 ms for 100k faces (docs/vector-index.md)."""
_SHA256 = re.compile(r"[0-9a-f]{64}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


@dataclass(frozen=True, slots=True, eq=False)
class IndexedFace:
    """One gallery face as the index stores it: ids, source site and its L2-normalized embedding."""

    face_id: str
    photo_id: str
    source_site: str
    embedding: npt.NDArray[np.float32]


@dataclass(frozen=True, slots=True)
class Hit:
    """One ranked search result; `score` is the cosine similarity in [-1, 1]."""

    face_id: str
    score: float
    photo_id: str
    source_site: str


@dataclass(frozen=True, slots=True)
class IndexTuning:
    """Index type and its parameters, chosen by measurement (docs/vector-index.md).

    IVF_FLAT partitions the gallery into `nlist` cells and scans `nprobe` of them per query; FLAT
    scans all. HNSW (`hnsw_m`, `ef_construction`, `ef`) is for a Milvus server. `consistency` is
    Milvus's read consistency: "Strong" makes every acknowledged write and delete visible to the
    next search; on a Milvus server it costs up to one time tick (200 ms by default) per read.
    """

    index_type: str = "FLAT"
    nlist: int = 1024
    nprobe: int = 64
    hnsw_m: int = 16
    ef_construction: int = 200
    ef: int = 256
    consistency: str = "Strong"

    def build_params(self) -> dict[str, int]:
        if self.index_type == "IVF_FLAT":
            return {"nlist": self.nlist}
        if self.index_type == "HNSW":
            return {"M": self.hnsw_m, "efConstruction": self.ef_construction}
        return {}

    def search_params(self, top_k: int) -> dict[str, int]:
        if self.index_type == "IVF_FLAT":
            return {"nprobe": min(self.nprobe, self.nlist)}
        if self.index_type == "HNSW":
            return {"ef": max(self.ef, top_k)}
        return {}


@runtime_checkable
class VectorIndex(Protocol):
    """The gallery's nearest-neighbour index for one recognizer's embeddings."""

    @property
    def collection(self) -> str: ...

    def ensure_collection(self, dim: int) -> None: ...

    def insert(self, faces: Sequence[IndexedFace]) -> None: ...

    def upsert(self, faces: Sequence[IndexedFace]) -> None: ...

    def search(
        self,
        query: npt.NDArray[np.float32],
        top_k: int,
        *,
        exclude_sites: Iterable[str] = (),
        min_score: float | None = None,
    ) -> list[Hit]: ...

    def search_many(
        self,
        queries: npt.NDArray[np.float32],
        top_k: int,
        *,
        exclude_sites: Iterable[str] = (),
        min_score: float | None = None,
    ) -> list[list[Hit]]: ...

    def delete(self, face_ids: Sequence[str]) -> None: ...

    def delete_site(self, source_site: str) -> None: ...

    def delete_photo(self, photo_id: str) -> None: ...

    def count(self) -> int: ...

    def face_ids(self) -> Iterator[str]: ...

    def flush(self) -> None: ...

    def close(self) -> None: ...


def collection_name(recognizer_sha256: str) -> str:
    """The collection holding one recognizer's embeddings: `faces_` + first 16 hex of its sha256.

    Raises InvalidQuery when the digest is not 64 lower-case hex characters.
    """
    if not _SHA256.fullmatch(recognizer_sha256):
        raise InvalidQuery("recognizer_sha256 must be 64 lower-case hex characters")
    return f"faces_{recognizer_sha256[:16]}"


def quote_string(value: str) -> str:
    """A Milvus boolean-expression string literal that denotes exactly `value`.

    Every Milvus parser tried decodes `\\"` and `\\\\` inside double quotes, which is all JSON emits
    for a string free of control characters (sites and ids are checked for those). Non-ASCII
    stays as UTF-8, which the grammar allows.

    Raises InvalidQuery when `value` holds a control character.
    """
    if _CONTROL.search(value):
        raise InvalidQuery("a filter string must not contain control characters")
    return json.dumps(value, ensure_ascii=False)


def site_exclusion_filter(sites: Iterable[str]) -> str:
    """`source_site not in [...]` for the given sites, or "" when there are none."""
    unique = sorted(set(sites))
    if not unique:
        return ""
    return f"{_SITE} not in [{', '.join(quote_string(site) for site in unique)}]"


class MilvusIndex:
    """`VectorIndex` over pymilvus's `MilvusClient`: a milvus-lite file or a server by URI.

    `uri` is a milvus-lite file path ending in `.db`, a server `http://host:port`, or a local
    `unix:/path` socket of the index server (biometrics/index_server.py). Reads are strongly
    consistent, so a face deleted is never returned by the next search.
    """

    def __init__(
        self,
        uri: str,
        *,
        recognizer_sha256: str,
        token: str = "",
        tuning: IndexTuning | None = None,
        timeout: float = 30.0,
        call_timeout: float | None = None,
    ) -> None:
        """Connect to the index; the collection is created by `ensure_collection`.

        ``timeout`` bounds the connection; ``call_timeout``, when given, each search, count,
        write and delete (an index that hangs then fails the call, which raises
        IndexUnavailable, instead of holding it for ever). It bounds the call as a whole:
        pymilvus gives each of its retries the whole timeout, and may first describe the
        collection, so a server that accepts and answers nothing (one shutting down, or
        frozen) held a search for three or four times as long. The call runs in a thread of
        its own, and the caller stops waiting for it at ``call_timeout``; the thread ends
        when pymilvus gives up. Building and loading the collection are not bounded by it:
        they take as long as the gallery needs.

        Raises InvalidQuery (bad digest), IndexUnavailable (cannot connect or open the file).
        """
        self._name = collection_name(recognizer_sha256)
        self._tuning = tuning or IndexTuning()
        self._timeout = timeout
        self._calls: dict[str, float] = {} if call_timeout is None else {"timeout": call_timeout}
        self._deadline = call_timeout
        self._waiting = (
            None
            if call_timeout is None
            else ThreadPoolExecutor(_BOUNDED_CALLS, thread_name_prefix="milvus-call")
        )
        self._dim: int | None = None
        self._metric = _METRIC
        from pymilvus import MilvusClient

        try:
            self._client = MilvusClient(
                uri=uri, token=token, timeout=timeout, grpc_options=channel_options(uri)
            )
        except Exception as exc:
            raise IndexUnavailable(f"cannot open the vector index at {uri!r}: {exc}") from exc

    @property
    def collection(self) -> str:
        return self._name

    @property
    def dim(self) -> int | None:
        """The collection's dimension once `ensure_collection` has run."""
        return self._dim

    def ensure_collection(self, dim: int) -> None:
        """Create the collection and its index if missing, load it, and check its dimension.

        Raises DimensionMismatch (existing collection has another dimension), IndexUnavailable.
        """
        from pymilvus import DataType

        if dim <= 0:
            raise InvalidQuery(f"dimension must be positive, got {dim}")
        with _wrapped(f"ensure collection {self._name}"):
            if self._client.has_collection(self._name):
                existing = _vector_dim(self._client.describe_collection(self._name))
                if existing != dim:
                    raise DimensionMismatch(
                        f"collection {self._name} holds {existing}-d vectors, not {dim}-d"
                    )
                built, self._metric = self._stored_metric()
                if built not in (None, self._tuning.index_type):
                    raise IndexUnavailable(
                        f"collection {self._name} is indexed with {built}, not "
                        f"{self._tuning.index_type}: configure {built}, or rebuild the index "
                        "with `facewarden gallery reindex`"
                    )
            else:
                schema = self._client.create_schema(auto_id=False, enable_dynamic_field=False)
                schema.add_field(_PK, DataType.VARCHAR, max_length=MAX_ID_LENGTH, is_primary=True)
                schema.add_field(_PHOTO, DataType.VARCHAR, max_length=MAX_ID_LENGTH)
                schema.add_field(_SITE, DataType.VARCHAR, max_length=MAX_SITE_LENGTH)
                schema.add_field(_VECTOR, DataType.FLOAT_VECTOR, dim=dim)
                self._client.create_collection(
                    self._name,
                    schema=schema,
                    index_params=self._index_params(),
                    consistency_level=self._tuning.consistency,
                )
            self._client.load_collection(self._name)
        self._dim = dim

    def index_type(self) -> str | None:
        """The index type the collection's vectors are built with (None without an index).

        Raises IndexUnavailable.
        """
        return self._described_index()[0]

    @property
    def metric(self) -> str:
        """The metric searches use: IP over unit vectors (`_METRIC`) for a collection this
        release created, or what an existing collection's index says (COSINE for one built
        before, which keeps it)."""
        return self._metric

    def _stored_metric(self) -> tuple[str | None, str]:
        # An existing collection keeps its metric. Without an index (a rebuild that died between
        # dropping and creating it) nothing says its vectors are unit vectors: COSINE is right
        # for any vectors, IP only for unit ones.
        built, metric = self._described_index()
        return built, metric or "COSINE"

    def _described_index(self) -> tuple[str | None, str | None]:
        with _wrapped(f"describe the index of {self._name}"):
            if _VECTOR not in self._client.list_indexes(self._name):
                return None, None
            info = self._client.describe_index(self._name, index_name=_VECTOR)
        return (
            str(info["index_type"]) if info.get("index_type") else None,
            str(info["metric_type"]) if info.get("metric_type") else None,
        )

    def rebuild_index(self) -> None:
        """Replace the collection's index with one built as the tuning says, with the metric
        the collection already has (`metric`); searches wait until it is loaded again. On a
        large gallery this takes minutes (a server builds in the background: see
        `index_progress`).

        Raises IndexUnavailable.
        """
        self._metric = self._stored_metric()[1]  # a rebuild keeps the collection's metric
        with _wrapped(f"rebuild the index of {self._name}"):
            self._client.release_collection(self._name)
            if _VECTOR in self._client.list_indexes(self._name):
                self._client.drop_index(self._name, index_name=_VECTOR)
            self._client.create_index(self._name, self._index_params())
            self._client.load_collection(self._name)

    def _index_params(self) -> Any:
        params = self._client.prepare_index_params()
        params.add_index(
            field_name=_VECTOR,
            index_type=self._tuning.index_type,
            metric_type=self._metric,
            params=self._tuning.build_params(),
        )
        return params

    def index_progress(self) -> tuple[int, int]:
        """(indexed rows, rows) of the collection's index; a server indexes in the background.

        Raises IndexUnavailable.
        """
        with _wrapped(f"describe the index of {self._name}"):
            info = self._client.describe_index(self._name, index_name=_VECTOR)
        return int(info.get("indexed_rows", 0)), int(info.get("total_rows", 0))

    def insert(self, faces: Sequence[IndexedFace]) -> None:
        """Add faces whose ids are new (an existing id would be stored twice: use `upsert`).

        Raises InvalidQuery, DimensionMismatch, IndexUnavailable.
        """
        self._write(faces, upsert=False)

    def upsert(self, faces: Sequence[IndexedFace]) -> None:
        """Add faces, replacing any stored face with the same id.

        Raises InvalidQuery, DimensionMismatch, IndexUnavailable.
        """
        self._write(faces, upsert=True)

    def search(
        self,
        query: npt.NDArray[np.float32],
        top_k: int,
        *,
        exclude_sites: Iterable[str] = (),
        min_score: float | None = None,
    ) -> list[Hit]:
        """The `top_k` nearest faces to one embedding, best first, outside `exclude_sites`.

        Hits scoring below `min_score` are dropped. Raises InvalidQuery, DimensionMismatch,
        IndexUnavailable.
        """
        vector = np.asarray(query, dtype=np.float32)
        if vector.ndim != 1:
            raise InvalidQuery(f"search takes one 1-D embedding, got shape {vector.shape}")
        return self.search_many(
            vector[None, :], top_k, exclude_sites=exclude_sites, min_score=min_score
        )[0]

    def search_many(
        self,
        queries: npt.NDArray[np.float32],
        top_k: int,
        *,
        exclude_sites: Iterable[str] = (),
        min_score: float | None = None,
    ) -> list[list[Hit]]:
        """`search` for each row of a 2-D array of embeddings, in one round trip.

        Raises InvalidQuery, DimensionMismatch, IndexUnavailable.
        """
        matrix = self._checked_vectors(np.asarray(queries, dtype=np.float32))
        if not 1 <= top_k <= MAX_TOP_K:
            raise InvalidQuery(f"top_k must be within 1..{MAX_TOP_K}, got {top_k}")
        if min_score is not None and not math.isfinite(min_score):
            raise InvalidQuery("min_score must be finite")
        with _wrapped(f"search {self._name}"):
            results = self._bounded(
                self._client.search,
                self._name,
                data=[row.tolist() for row in matrix],
                filter=site_exclusion_filter(_checked_sites(exclude_sites)),
                limit=top_k,
                output_fields=[_PHOTO, _SITE],
                search_params={
                    "metric_type": self._metric,
                    "params": self._tuning.search_params(top_k),
                },
                consistency_level=self._tuning.consistency,
                **self._calls,
            )
        ranked: list[list[Hit]] = []
        for row in results:
            hits = [
                Hit(
                    face_id=_hit_id(hit),
                    score=float(hit["distance"]),
                    photo_id=str(hit["entity"][_PHOTO]),
                    source_site=str(hit["entity"][_SITE]),
                )
                for hit in row
            ]
            hits.sort(key=lambda hit: (-hit.score, hit.face_id))
            if min_score is not None:
                hits = [hit for hit in hits if hit.score >= min_score]
            ranked.append(hits)
        return ranked

    def delete(self, face_ids: Sequence[str]) -> None:
        """Remove the faces with these ids (unknown ids are ignored).

        Raises InvalidQuery, IndexUnavailable.
        """
        ids = [_checked_id(face_id, "face_id") for face_id in face_ids]
        if ids:
            self._delete(f"{_PK} in [{', '.join(quote_string(i) for i in ids)}]")

    def delete_site(self, source_site: str) -> None:
        """Remove every face taken from one source site.

        Raises InvalidQuery, IndexUnavailable.
        """
        self._delete(f"{_SITE} == {quote_string(_checked_site(source_site))}")

    def delete_photo(self, photo_id: str) -> None:
        """Remove every face found in one photo.

        Raises InvalidQuery, IndexUnavailable.
        """
        self._delete(f"{_PHOTO} == {quote_string(_checked_id(photo_id, 'photo_id'))}")

    def count(self) -> int:
        """How many faces the collection holds now (deletes included, strongly consistent).

        Raises IndexUnavailable.
        """
        with _wrapped(f"count {self._name}"):
            rows = self._bounded(
                self._client.query,
                self._name,
                filter="",
                output_fields=["count(*)"],
                consistency_level="Strong",
                **self._calls,
            )
        return int(rows[0]["count(*)"])

    def face_ids(self) -> Iterator[str]:
        """The id of every face the collection holds now, in no particular order, read in
        batches (a gallery's ids fit in memory; its vectors need not).

        Raises IndexUnavailable.
        """
        with _wrapped(f"list {self._name}"):
            batches = self._client.query_iterator(
                self._name,
                batch_size=_LIST_BATCH,
                output_fields=[_PK],
                consistency_level="Strong",
            )
        try:
            while True:
                with _wrapped(f"list {self._name}"):
                    batch = batches.next()
                if not batch:
                    return
                for row in batch:
                    yield str(row[_PK])
        finally:
            batches.close()

    def flush(self) -> None:
        """Seal pending writes to storage so they survive a crash and get indexed.

        Raises IndexUnavailable.
        """
        with _wrapped(f"flush {self._name}"):
            self._client.flush(self._name)

    def close(self) -> None:
        """Release the connection; the data stays in the file or server.

        Raises IndexUnavailable.
        """
        with _wrapped("close the vector index"):
            self._client.close()
        if self._waiting is not None:
            self._waiting.shutdown(wait=False, cancel_futures=True)

    def _write(self, faces: Sequence[IndexedFace], *, upsert: bool) -> None:
        if not faces:
            return
        matrix = self._checked_vectors(np.stack([face.embedding for face in faces]))
        rows = [
            {
                _PK: _checked_id(face.face_id, "face_id"),
                _PHOTO: _checked_id(face.photo_id, "photo_id"),
                _SITE: _checked_site(face.source_site),
                _VECTOR: vector.tolist(),
            }
            for face, vector in zip(faces, matrix, strict=True)
        ]
        write = self._client.upsert if upsert else self._client.insert
        with _wrapped(f"write to {self._name}"):
            for start in range(0, len(rows), _INSERT_BATCH):
                self._bounded(write, self._name, rows[start : start + _INSERT_BATCH], **self._calls)

    def _delete(self, expression: str) -> None:
        with _wrapped(f"remove faces from {self._name}"):
            self._bounded(self._client.delete, self._name, filter=expression, **self._calls)

    def _bounded(self, call: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        """``call(*args, **kwargs)``, waited for ``call_timeout`` at most (see ``__init__``).

        Raises IndexUnavailable when it is late; what it raises when it fails.
        """
        if self._waiting is None or self._deadline is None:
            return call(*args, **kwargs)
        pending = self._waiting.submit(call, *args, **kwargs)
        try:
            return pending.result(timeout=self._deadline)
        except Late:
            raise IndexUnavailable(
                f"vector index did not answer within {self._deadline:g} s (its call timeout)"
            ) from None

    def _checked_vectors(self, matrix: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        if self._dim is None:
            raise IndexUnavailable("call ensure_collection(dim) before reading or writing")
        if matrix.ndim != 2 or matrix.shape[0] == 0:
            raise InvalidQuery(f"expected a non-empty (n, {self._dim}) array, got {matrix.shape}")
        if matrix.shape[1] != self._dim:
            raise DimensionMismatch(
                f"collection {self._name} holds {self._dim}-d vectors, got {matrix.shape[1]}-d"
            )
        if not np.isfinite(matrix).all():
            raise InvalidQuery("embeddings must be finite")
        norms = np.linalg.norm(matrix, axis=1, keepdims=True)
        if (norms == 0).any():
            raise InvalidQuery("a zero vector has no cosine similarity")
        # Unit vectors, so the inner product the index computes is the cosine similarity.
        unit: npt.NDArray[np.float32] = (matrix / norms).astype(np.float32)
        return unit


@contextmanager
def _wrapped(what: str) -> Iterator[None]:
    """Turns pymilvus and transport errors into `IndexUnavailable`, keeping ours as they are."""
    try:
        yield
    except VectorIndexError:
        raise
    except Exception as exc:
        raise IndexUnavailable(f"vector index failed to {what}: {exc}") from exc


def _hit_id(hit: Any) -> str:
    # pymilvus 3 keys the primary key by its field name, pymilvus 2.5 by "id".
    value = hit.get(_PK)
    return str(hit["id"] if value is None else value)


def _vector_dim(description: dict[str, Any]) -> int:
    for field in description.get("fields", []):
        if field.get("name") == _VECTOR:
            return int(field.get("params", {}).get("dim", 0))
    raise IndexUnavailable(f"collection has no {_VECTOR} field: {description!r}")


def _checked_id(value: str, what: str) -> str:
    if not isinstance(value, str) or not 0 < len(value) <= MAX_ID_LENGTH:
        raise InvalidQuery(f"{what} must be a string of 1..{MAX_ID_LENGTH} characters")
    if _CONTROL.search(value):
        raise InvalidQuery(f"{what} must not contain control characters")
    return value


def _checked_site(value: str) -> str:
    # milvus-lite 2.5.1 decodes only \\ and \" in string literals (not \n, \t, \x.., \u....), so
    # a control character could not be matched by a filter: refuse it here; no site name has one.
    if not isinstance(value, str) or len(value.encode()) > MAX_SITE_LENGTH:
        raise InvalidQuery(f"source_site must be a string of at most {MAX_SITE_LENGTH} bytes")
    if _CONTROL.search(value):
        raise InvalidQuery("source_site must not contain control characters")
    return value


def _checked_sites(sites: Iterable[str]) -> list[str]:
    if isinstance(sites, str):
        raise InvalidQuery("exclude_sites takes a collection of sites, not one string")
    return [_checked_site(site) for site in sites]
