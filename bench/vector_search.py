"""Vector search latency, mate recall, insert rate and memory of `biometrics.index.MilvusIndex`.

Gallery = real dev-set embeddings (ci-pack) + synthetic face-like distractors; probes = the first
photo of each identity, mates = its other photos. Exact numpy search over the same gallery runs
in the same process as the reference. Prints one table row per gallery size.

    python bench/vector_search.py --shared-dir ../shared --sizes 10k,100k,1M
    python bench/vector_search.py --embeddings dev.npz --uri http://127.0.0.1:19530 --index HNSW
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import numpy.typing as npt

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from biometrics.index import IndexedFace, IndexTuning, MilvusIndex

Matrix = npt.NDArray[np.float32]
RECOGNIZER = "87aacdfe57510db2af90c0251df680e8eec88f122ee94712121d09bcaaaf3581"


def parse_size(text: str) -> int:
    text = text.strip().lower()
    scale = {"k": 1_000, "m": 1_000_000}.get(text[-1], 1)
    return int(float(text.rstrip("km")) * scale)


def dev_embeddings(shared: Path) -> tuple[Matrix, list[str]]:
    """Embed the largest face of every faces/dev crop with the ci-pack (SCRFD + fr_feature 512)."""
    import cv2
    from insightface.model_zoo import get_model
    from insightface.model_zoo.scrfd import SCRFD
    from insightface.utils import face_align

    pack = shared / "models" / "ci-pack"
    detector = SCRFD(model_file=str(pack / "det_scrfd_2.5g_kps_640.onnx"))
    detector.prepare(ctx_id=-1, input_size=(640, 640))
    recognizer = get_model(
        str(pack / "rec_fr_feature_512.onnx"), providers=["CPUExecutionProvider"]
    )
    vectors, labels = [], []
    with (shared / "faces" / "dev" / "manifest.csv").open() as handle:
        for row in csv.DictReader(handle):
            image = cv2.imread(str(shared / "faces" / "dev" / row["file"]))
            if image is None:
                continue
            # The dev images are tight crops: a border gives the detector the context it expects.
            pad = max(image.shape[:2]) // 2
            image = cv2.copyMakeBorder(image, pad, pad, pad, pad, cv2.BORDER_CONSTANT)
            boxes, points = detector.detect(image, input_size=(640, 640))
            if len(boxes) == 0:
                continue
            best = int(np.argmax((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])))
            crop = face_align.norm_crop(image, landmark=points[best])
            vector = recognizer.get_feat(crop).ravel().astype(np.float32)
            vectors.append(vector / np.linalg.norm(vector))
            labels.append(row["identity"])
    return np.stack(vectors), labels


def distractors(real: Matrix, count: int, rng: np.random.Generator) -> Matrix:
    """Face-like synthetic embeddings: a Gaussian with the real set's mean and principal axes."""
    mean = real.mean(axis=0)
    _, singular, axes = np.linalg.svd(real - mean, full_matrices=False)
    scale = singular / np.sqrt(len(real))
    residual = float(scale[-1])
    out = np.empty((count, real.shape[1]), dtype=np.float32)
    for start in range(0, count, 100_000):
        n = min(100_000, count - start)
        z = rng.standard_normal((n, len(scale)), dtype=np.float32) * scale
        block = mean + z @ axes + residual * rng.standard_normal((n, real.shape[1]), np.float32)
        out[start : start + n] = block / np.linalg.norm(block, axis=1, keepdims=True)
    return out


def rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return 0.0
    return 0.0


def child_rss_mb() -> float:
    """Resident memory of this process's children (milvus-lite 2.5 runs its engine as one)."""
    total = 0.0
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == os.getpid():
                total += rss_mb(int(entry.name))
    return total


def wait_for_index(index: MilvusIndex, size: int) -> float:
    """Seconds until a Milvus server has indexed every row (it builds in the background, and
    serves unindexed segments by brute force or an interim index meanwhile)."""
    started = time.perf_counter()
    last = -1
    while True:
        info = index._client.describe_index(index.collection, index_name="embedding")
        done = int(info.get("indexed_rows", 0))
        if done != last:
            print(
                f"#   indexed {done:,}/{size:,} rows after {time.perf_counter() - started:.0f} s",
                file=sys.stderr,
                flush=True,
            )
            last = done
        if done >= size and int(info.get("pending_index_rows", 0)) == 0:
            # Loaded segments keep serving from the interim index until reloaded.
            index._client.release_collection(index.collection)
            index._client.load_collection(index.collection)
            return time.perf_counter() - started
        time.sleep(5)


def search_variants(args: argparse.Namespace, base: IndexTuning) -> list[IndexTuning]:
    """One tuning per value of --ef (HNSW) or --nprobe (IVF_FLAT): the build is reused."""
    if base.index_type == "HNSW":
        return [replace(base, ef=int(v)) for v in args.ef.split(",")]
    if base.index_type == "IVF_FLAT":
        return [replace(base, nprobe=int(v)) for v in args.nprobe.split(",")]
    return [base]


def param(tuning: IndexTuning) -> str:
    if tuning.index_type == "HNSW":
        return f"ef={tuning.ef}"
    if tuning.index_type == "IVF_FLAT":
        return f"nprobe={tuning.nprobe}"
    return "-"


def measure(
    args: argparse.Namespace,
    index: MilvusIndex,
    size: int,
    gallery: Matrix,
    owner: list[str],
    queries: Matrix,
    labels: list[str],
    probes: list[int],
) -> str:
    """One table row (with {insert_rate}, {build} and {param} left to fill)."""
    started = time.perf_counter()
    index.search(queries[0], args.top_k)  # the first search may wait for a load
    ready_s = time.perf_counter() - started
    latencies, found, exact_found, overlap = [], 0, 0, 0.0
    exact_lat = []
    for qi, q in enumerate(queries):
        t0 = time.perf_counter()
        hits = index.search(q, args.top_k)
        latencies.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        scores = gallery @ q
        top = np.argpartition(-scores, args.top_k)[: args.top_k]
        exact_lat.append(time.perf_counter() - t0)
        got = {int(h.face_id[1:]) for h in hits}
        mates = {i for i in top if owner[i] == labels[probes[qi]]}
        exact_found += len(mates)
        found += len(mates & got)
        overlap += len(got & set(top.tolist())) / args.top_k
    index_rss = child_rss_mb() if not args.uri else float("nan")
    lat = np.array(latencies) * 1e3
    return (
        f"| {size:>9,} | {args.index:<8} | {{param}} | {np.percentile(lat, 50):7.2f} | "
        f"{np.percentile(lat, 99):7.2f} | {np.median(exact_lat) * 1e3:7.2f} | "
        f"{found / max(exact_found, 1):6.4f} ({found}/{exact_found}) | "
        f"{overlap / len(queries):6.4f} | {{insert_rate}} | {{build}} | {ready_s:6.1f} | "
        f"{rss_mb(os.getpid()):7,.0f} | {index_rss:7,.0f} |"
    )


def run_size(args: argparse.Namespace, size: int, real: Matrix, labels: list[str]) -> str:
    rng = np.random.default_rng(size)
    first: dict[str, int] = {}
    for i, label in enumerate(labels):
        first.setdefault(label, i)
    probes = sorted(first.values())
    gallery_real = [i for i in range(len(labels)) if i not in set(probes)]
    gallery = np.concatenate([real[gallery_real], distractors(real, size - len(gallery_real), rng)])
    owner = [labels[i] for i in gallery_real] + [""] * (size - len(gallery_real))
    queries = real[probes]
    workdir = Path(tempfile.mkdtemp(prefix="vbench-", dir=args.workdir))
    uri = args.uri or str(workdir / "bench.db")
    tuning = IndexTuning(
        index_type=args.index,
        nlist=args.nlist,
        nprobe=int(args.nprobe.split(",")[0]),
        ef=int(args.ef.split(",")[0]),
        hnsw_m=args.hnsw_m,
        ef_construction=args.ef_construction,
        consistency=args.consistency,
    )
    index = MilvusIndex(uri, recognizer_sha256=RECOGNIZER, tuning=tuning)
    try:
        if args.uri:
            index._client.drop_collection(index.collection)
        index.ensure_collection(real.shape[1])
        faces = [
            IndexedFace(face_id=f"f{i}", photo_id=f"p{i}", source_site=f"s{i % 50}", embedding=v)
            for i, v in enumerate(gallery)
        ]
        started = time.perf_counter()
        for start in range(0, size, 10_000):
            index.insert(faces[start : start + 10_000])
        index.flush()
        insert_rate = size / (time.perf_counter() - started)
        del faces
        build_s = wait_for_index(index, size) if args.uri else float("nan")
        rows = []
        for variant in search_variants(args, tuning):
            index._tuning = variant  # same collection, other search parameters
            rows.append(measure(args, index, size, gallery, owner, queries, labels, probes))
            rows[-1] = rows[-1].format(
                insert_rate=f"{insert_rate:8,.0f}", build=f"{build_s:7.0f}", param=param(variant)
            )
        return "\n".join(rows)
    finally:
        if args.uri:
            index._client.drop_collection(index.collection)
        index.close()
        shutil.rmtree(workdir, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--shared-dir", type=Path, help="directory holding models/ and faces/dev")
    source.add_argument("--embeddings", type=Path, help=".npz with 'vectors' and 'labels'")
    parser.add_argument("--save-embeddings", type=Path, help="write the dev embeddings here")
    parser.add_argument("--sizes", default="10k,100k,1M")
    parser.add_argument("--uri", default="", help="a Milvus server; default a milvus-lite file")
    parser.add_argument(
        "--index", default=IndexTuning().index_type, choices=["FLAT", "IVF_FLAT", "HNSW"]
    )
    parser.add_argument("--nlist", type=int, default=IndexTuning().nlist)
    parser.add_argument(
        "--nprobe", default=str(IndexTuning().nprobe), help="IVF cells probed; a list: 16,64"
    )
    parser.add_argument("--ef", default=str(IndexTuning().ef), help="HNSW ef; a list: 64,128")
    parser.add_argument("--hnsw-m", type=int, default=IndexTuning().hnsw_m)
    parser.add_argument("--ef-construction", type=int, default=IndexTuning().ef_construction)
    parser.add_argument("--top-k", type=int, default=10)
    parser.add_argument("--consistency", default="Strong", help="Strong, Session, Bounded")
    parser.add_argument("--workdir", default=None, help="where the milvus-lite file goes")
    args = parser.parse_args()

    if args.embeddings:
        data = np.load(args.embeddings)
        real, labels = data["vectors"].astype(np.float32), [str(x) for x in data["labels"]]
    else:
        real, labels = dev_embeddings(args.shared_dir)
    if args.save_embeddings:
        np.savez(args.save_embeddings, vectors=real, labels=np.array(labels))
    import pymilvus

    try:
        from importlib.metadata import version

        lite = version("milvus-lite")
    except Exception:
        lite = "absent"
    print(
        f"# {len(real)} real embeddings of {len(set(labels))} identities; pymilvus "
        f"{pymilvus.__version__}, milvus-lite {lite}, {args.uri or 'milvus-lite file'}; "
        f"nlist={args.nlist} nprobe={args.nprobe} M={args.hnsw_m} "
        f"efConstruction={args.ef_construction} ef={args.ef} top_k={args.top_k} "
        f"consistency={args.consistency}"
    )
    print(
        "| gallery   | index    | search | p50 ms  | p99 ms  | numpy ms | mate recall vs exact | "
        "top-k overlap | insert/s | build s | ready s | bench RSS MB | index RSS MB |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for size in (parse_size(s) for s in args.sizes.split(",")):
        print(run_size(args, size, real, labels), flush=True)


if __name__ == "__main__":
    main()
