"""Faces per second through FacePipeline (detect + align + quality + embed) against raw onnxruntime.

For each pack, one recording pass captures every tensor the pipeline feeds its onnxruntime
sessions; then rounds alternate between the full pipeline and a replay of exactly those tensors on
the same sessions, so "raw" is the models' own cost on the same images in the same run. The
overhead is pipeline time / raw time - 1 (median over the rounds of each round's ratio). "glue"
is the pipeline's time with the models answering instantly from a recording, over raw: the cost
of our own code alone (decoding excluded, as in both other columns).

    python bench/faces.py [--packs starter,ci-pack] [--images 48] [--rounds 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from biometrics.evaluation import read_manifest  # noqa: E402
from biometrics.faces import ArcFaceEmbedder, FacePipeline, ScrfdDetector  # noqa: E402
from biometrics.images import decode_image  # noqa: E402
from biometrics.mtcnn import MTCNN  # noqa: E402
from biometrics.packs import Pack, build_pipeline, import_pack, install_pack, load_pack  # noqa: E402


class Recorder:
    """Stands in for an InferenceSession, forwarding every call and keeping its inputs."""

    def __init__(self, session: Any, calls: list[tuple[Any, Any, Any]]) -> None:
        self._session = session
        self._calls = calls

    def run(self, output_names: Any, feed: Any, *args: Any) -> Any:
        self._calls.append((self._session, output_names, feed))
        return self._session.run(output_names, feed, *args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._session, name)


def _holders(pipe: FacePipeline) -> list[tuple[Any, str]]:
    """(object, attribute) pairs that hold the pipeline's sessions."""
    holders: list[tuple[Any, str]] = []
    if isinstance(pipe.detector, MTCNN):
        holders += [(pipe.detector, "pnet"), (pipe.detector, "rnet"), (pipe.detector, "onet")]
    elif isinstance(pipe.detector, ScrfdDetector):
        holders.append((pipe.detector.model, "session"))
    if isinstance(pipe.embedder, ArcFaceEmbedder):
        holders.append((pipe.embedder.model, "session"))
    return holders


def record(pipe: FacePipeline, images: list[Any]) -> tuple[list[tuple[Any, Any, Any]], int]:
    calls: list[tuple[Any, Any, Any]] = []
    holders = _holders(pipe)
    originals = [getattr(obj, attr) for obj, attr in holders]
    for (obj, attr), session in zip(holders, originals, strict=True):
        setattr(obj, attr, Recorder(session, calls))
    try:
        faces = sum(len(f) for f in pipe.analyze_many(images))
    finally:
        for (obj, attr), session in zip(holders, originals, strict=True):
            setattr(obj, attr, session)
    return calls, faces


class Playback:
    """Stands in for an InferenceSession, answering each call with the next recorded output."""

    def __init__(self, session: Any, outputs: Any) -> None:
        self._session = session
        self._outputs = outputs

    def run(self, output_names: Any, feed: Any, *args: Any) -> Any:
        return next(self._outputs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._session, name)


def glue_only(pipe: FacePipeline, images: list[Any], outputs: list[Any]) -> float:
    """The pipeline's time with every model answering instantly from `outputs`: its own cost."""
    holders = _holders(pipe)
    originals = [getattr(obj, attr) for obj, attr in holders]
    answers = iter(outputs)
    for (obj, attr), session in zip(holders, originals, strict=True):
        setattr(obj, attr, Playback(session, answers))
    try:
        return timed_pipeline(pipe, images)
    finally:
        for (obj, attr), session in zip(holders, originals, strict=True):
            setattr(obj, attr, session)


def replay(calls: list[tuple[Any, Any, Any]]) -> float:
    started = time.perf_counter()
    for session, output_names, feed in calls:
        session.run(output_names, feed)
    return time.perf_counter() - started


def timed_pipeline(pipe: FacePipeline, images: list[Any]) -> float:
    started = time.perf_counter()
    pipe.analyze_many(images)
    return time.perf_counter() - started


def bench_pack(name: str, models_dir: Path, shared: Path) -> Pack:
    """The pack `name` under `models_dir`: installed (starter) or imported (ci-pack) if absent."""
    if name == "ci-pack" and not (models_dir / name / "pack.json").is_file():
        import_pack(shared / "models" / "ci-pack", models_dir, name=name)
    if (models_dir / name).is_dir():
        return load_pack(models_dir / name)
    return install_pack(name, models_dir)


def main() -> None:
    shared = Path(os.environ.get("FACEWARDEN_TEST_SHARED_DIR", REPO.parent / "shared"))
    cache = Path.home() / ".cache" / "facewarden-test" / "models"
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--packs", default="starter,ci-pack")
    parser.add_argument("--images", type=int, default=48)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--models-dir", type=Path, default=Path(os.environ.get("FACEWARDEN_TEST_MODELS_DIR", cache))
    )
    args = parser.parse_args()

    photos = read_manifest(shared / "faces" / "dev")
    step = max(1, len(photos) // args.images)
    images = [decode_image(p.path.read_bytes()).pixels for p in photos[::step][: args.images]]

    print(
        f"faces: {len(images)} dev photos, {args.rounds} rounds, "
        f"{os.cpu_count()} CPUs, medians shown"
    )
    header = (
        f"{'pack':<9} {'faces':>5} {'pipeline s':>10} {'raw ort s':>9} "
        f"{'pipeline f/s':>12} {'raw f/s':>8} {'overhead':>8} {'glue':>7} {'ort calls':>9}"
    )
    print(header)
    print("-" * len(header))
    for name in args.packs.split(","):
        pipe = build_pipeline(bench_pack(name, args.models_dir, shared))
        timed_pipeline(pipe, images[:4])  # warm-up: first runs allocate arenas
        calls, faces = record(pipe, images)
        outputs = [session.run(names, feed) for session, names, feed in calls]
        replay(calls)
        piped, raw, glue = [], [], []
        for _ in range(args.rounds):
            piped.append(timed_pipeline(pipe, images))
            raw.append(replay(calls))
            glue.append(glue_only(pipe, images, outputs))
        p, r, g = statistics.median(piped), statistics.median(raw), statistics.median(glue)
        # Each round's pipeline and replay run back to back: the median of their ratios is
        # steadier than the ratio of medians on a machine whose load drifts.
        overhead = statistics.median(a / b - 1 for a, b in zip(piped, raw, strict=True))
        print(
            f"{name:<9} {faces:>5} {p:>10.3f} {r:>9.3f} {faces / p:>12.1f} "
            f"{faces / r:>8.1f} {overhead:>8.1%} {g / r:>7.1%} {len(calls):>9}"
        )


if __name__ == "__main__":
    main()
