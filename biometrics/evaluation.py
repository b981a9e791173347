"""Accuracy of a face pipeline on a labelled photo set: detection rate, rank-1, TAR at fixed FAR.

The functions take embeddings from anywhere, so a search made through the API can be scored the
same way as the direct pipeline and the two compared.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from biometrics.errors import BiometricsError
from biometrics.images import decode_image
from biometrics.ports import Embedding, Face, ImageArray

__all__ = [
    "EXCLUDED_LIST",
    "AccuracyReport",
    "Analyzer",
    "Calibration",
    "LabelledPhoto",
    "calibrate",
    "calibrate_set",
    "embed_photos",
    "evaluate",
    "identification_scores",
    "read_excluded",
    "read_manifest",
]

EXCLUDED_LIST = "MISLABELLED.txt"
"""Beside a set's manifest.csv: file names (one a line, `#` comments) whose label is wrong."""


@dataclass(frozen=True, slots=True)
class LabelledPhoto:
    """One photo of a labelled set and whose face it shows."""

    path: Path
    identity: str


@dataclass(frozen=True, slots=True)
class AccuracyReport:
    """How well embeddings separate identities (cosine similarity of unit vectors).

    rank1: share of probes (photos with at least one other photo of the same identity) whose
    nearest other photo is of the same identity. tar: share of genuine pairs scoring above the
    threshold that lets through at most `far` of the impostor pairs.
    """

    photos: int
    detected: int
    rank1: float
    tar: float
    far: float
    threshold: float
    genuine_pairs: int
    impostor_pairs: int
    genuine_mean: float
    impostor_mean: float

    @property
    def detection_rate(self) -> float:
        return self.detected / self.photos if self.photos else 0.0

    def table(self, title: str) -> str:
        """A one-line summary for logs and benchmark output."""
        return (
            f"{title}: detected {self.detected}/{self.photos} ({self.detection_rate:.3f}), "
            f"rank-1 {self.rank1:.3f}, TAR {self.tar:.3f} @ FAR {self.far:g} "
            f"(threshold {self.threshold:.3f}), genuine mean {self.genuine_mean:.3f} over "
            f"{self.genuine_pairs} pairs, impostor mean {self.impostor_mean:.3f} over "
            f"{self.impostor_pairs}"
        )


def read_manifest(directory: Path) -> list[LabelledPhoto]:
    """The photos listed in `directory/manifest.csv` (columns `file`, `identity`).

    Raises BiometricsError when the manifest is missing or lacks those columns.
    """
    path = directory / "manifest.csv"
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
        return [LabelledPhoto(directory / row["file"], row["identity"]) for row in rows]
    except (OSError, KeyError) as exc:
        raise BiometricsError(f"{path}: unreadable or without file/identity columns") from exc


def read_excluded(directory: Path) -> frozenset[str]:
    """The file names `directory/MISLABELLED.txt` lists (none when the file is absent).

    Raises BiometricsError when the list exists but cannot be read.
    """
    path = directory / EXCLUDED_LIST
    if not path.exists():
        return frozenset()
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise BiometricsError(f"{path}: unreadable ({exc})") from exc
    return frozenset(s for line in lines if (s := line.strip()) and not s.startswith("#"))


class Analyzer(Protocol):
    """Anything with `FacePipeline.analyze_many`; structural, so no model code is imported."""

    def analyze_many(self, images: Sequence[ImageArray]) -> list[list[Face]]:
        """Faces per image. Raises BiometricsError."""
        ...


def embed_photos(
    pipeline: Analyzer, photos: Sequence[LabelledPhoto], *, batch: int = 16
) -> tuple[Embedding, list[str], list[Path]]:
    """(embeddings, identities, missed): the largest face of each photo, through `decode_image`.

    Photos with no usable face are listed in `missed` and left out of the embeddings.

    Raises BiometricsError (from decoding or the models).
    """
    rows: list[Embedding] = []
    identities: list[str] = []
    missed: list[Path] = []
    for start in range(0, len(photos), batch):
        chunk = photos[start : start + batch]
        images = [decode_image(p.path.read_bytes()).pixels for p in chunk]
        for photo, faces in zip(chunk, pipeline.analyze_many(images), strict=True):
            if not faces:
                missed.append(photo.path)
                continue
            largest = max(faces, key=lambda f: f.box.width * f.box.height)
            rows.append(largest.embedding)
            identities.append(photo.identity)
    dim = rows[0].shape[0] if rows else 0
    matrix = np.stack(rows) if rows else np.empty((0, dim), dtype=np.float32)
    return matrix.astype(np.float32, copy=False), identities, missed


def identification_scores(
    embeddings: Embedding, identities: Sequence[str]
) -> tuple[np.ndarray, np.ndarray, float]:
    """(genuine, impostor, rank1): all pair scores split by identity, and rank-1 accuracy."""
    labels = np.asarray(identities)
    sims = embeddings.astype(np.float64) @ embeddings.T.astype(np.float64)
    same = labels[:, None] == labels[None, :]
    upper = np.triu(np.ones_like(same, dtype=bool), k=1)
    genuine = sims[same & upper]
    impostor = sims[~same & upper]
    np.fill_diagonal(sims, -np.inf)
    has_mate = (same.sum(axis=1) - 1) > 0
    nearest = np.argmax(sims, axis=1)
    hits = labels[nearest] == labels
    rank1 = float(hits[has_mate].mean()) if has_mate.any() else 0.0
    return genuine, impostor, rank1


def evaluate(
    embeddings: Embedding, identities: Sequence[str], *, photos: int, far: float = 1e-3
) -> AccuracyReport:
    """Score embeddings of `photos` labelled photos (fewer rows if some were missed).

    Raises BiometricsError when there are no genuine or no impostor pairs to score.
    """
    genuine, impostor, rank1 = identification_scores(embeddings, identities)
    if genuine.size == 0 or impostor.size == 0:
        raise BiometricsError("need at least two photos of one identity and two identities")
    ranked = np.sort(impostor)[::-1]
    # Accept scores strictly above the (k+1)-th best impostor: at most k = floor(far * n) pass.
    allowed = int(np.floor(far * ranked.size))
    threshold = float(ranked[min(allowed, ranked.size - 1)])
    return AccuracyReport(
        photos=photos,
        detected=len(identities),
        rank1=rank1,
        tar=float((genuine > threshold).mean()),
        far=far,
        threshold=threshold,
        genuine_pairs=int(genuine.size),
        impostor_pairs=int(impostor.size),
        genuine_mean=float(genuine.mean()),
        impostor_mean=float(impostor.mean()),
    )


@dataclass(frozen=True, slots=True)
class SearchAccuracy:
    """Accuracy of ranked searches of probes against a gallery (an enrol/search split)."""

    probes: int
    rank1: float
    tar: float
    far: float
    threshold: float
    genuine_pairs: int
    impostor_pairs: int

    def table(self, title: str) -> str:
        return (
            f"{title}: probes {self.probes}, rank-1 {self.rank1:.3f}, TAR {self.tar:.3f} at FAR "
            f"{self.far:g} (threshold {self.threshold:.3f}; {self.genuine_pairs} genuine, "
            f"{self.impostor_pairs} impostor pairs)"
        )


def search_accuracy(
    ranked: Sequence[Sequence[tuple[str, float]]],
    probe_identities: Sequence[str],
    gallery_identities: Sequence[str],
    *,
    far: float = 1e-3,
) -> SearchAccuracy:
    """Rank-1 and TAR at ``far`` from each probe's ranked (identity, score) search results.

    Every (probe, gallery face) pair counts, including those a search did not return: the
    lists must be long enough to hold every impostor above the threshold (top-k of at least
    ``far`` x gallery size x probes plus the genuine faces), which the caller ensures; a pair
    not returned scored below every returned one, so below the threshold. An empty list is a
    probe without a face: a miss for rank-1, its genuine pairs rejected.
    Raises BiometricsError when there is nothing to score.
    """
    per_identity: dict[str, int] = {}
    for identity in gallery_identities:
        per_identity[identity] = per_identity.get(identity, 0) + 1
    size = len(gallery_identities)
    genuine_total = sum(per_identity.get(p, 0) for p in probe_identities)
    impostor_total = sum(size - per_identity.get(p, 0) for p in probe_identities)
    if not probe_identities or genuine_total == 0 or impostor_total == 0:
        raise BiometricsError("need probes with mates in the gallery and impostors")
    impostors = sorted(
        (
            s
            for results, p in zip(ranked, probe_identities, strict=True)
            for i, s in results
            if i != p
        ),
        reverse=True,
    )
    allowed = int(np.floor(far * impostor_total))
    threshold = impostors[allowed] if allowed < len(impostors) else -1.0
    accepted = sum(
        1
        for results, p in zip(ranked, probe_identities, strict=True)
        for i, s in results
        if i == p and s > threshold
    )
    hits = sum(
        1
        for results, p in zip(ranked, probe_identities, strict=True)
        if results and results[0][0] == p
    )
    return SearchAccuracy(
        probes=len(probe_identities),
        rank1=hits / len(probe_identities),
        tar=accepted / genuine_total,
        far=far,
        threshold=float(threshold),
        genuine_pairs=genuine_total,
        impostor_pairs=impostor_total,
    )


@dataclass(frozen=True, slots=True)
class Calibration:
    """A pack's match threshold measured on a labelled set, and the FAR it lets through.

    threshold: the target-FAR threshold rounded up to the next 0.01, so that a round figure
    never lets through more than the target. far: share of impostor pairs scoring at or above
    `threshold` (what a search at that threshold accepts), tar: share of genuine pairs doing so.
    """

    threshold: float
    far: float
    target_far: float
    tar: float
    photos: int
    excluded: int
    detected: int
    genuine_pairs: int
    impostor_pairs: int

    def manifest_fields(self) -> dict[str, float]:
        """The members of pack.json that declare this calibration."""
        return {"match_threshold": self.threshold, "match_far": float(f"{self.far:.3g}")}

    def table(self, title: str) -> str:
        return (
            f"{title}: threshold {self.threshold:.2f} at FAR {self.far:.2e} (target "
            f"{self.target_far:g}), TAR {self.tar:.3f}; {self.detected} of {self.photos} photos "
            f"detected ({self.excluded} mislabelled excluded), {self.genuine_pairs} genuine and "
            f"{self.impostor_pairs} impostor pairs"
        )


def calibrate(
    embeddings: Embedding,
    identities: Sequence[str],
    *,
    photos: int,
    excluded: int,
    target_far: float = 1e-3,
) -> Calibration:
    """The match threshold of these embeddings at `target_far` (see `Calibration`).

    Raises BiometricsError when there are no genuine or no impostor pairs to score.
    """
    report = evaluate(embeddings, identities, photos=photos, far=target_far)
    genuine, impostor, _ = identification_scores(embeddings, identities)
    # Round up: scores strictly above report.threshold pass at the target FAR, and so do those
    # at or above any higher value. The small epsilon keeps 0.35 from becoming 0.36 by float.
    threshold = float(np.ceil(report.threshold * 100 - 1e-9) / 100)
    if threshold <= report.threshold:
        threshold = round(threshold + 0.01, 2)
    return Calibration(
        threshold=threshold,
        far=float((impostor >= threshold).mean()),
        target_far=target_far,
        tar=float((genuine >= threshold).mean()),
        photos=photos,
        excluded=excluded,
        detected=len(identities),
        genuine_pairs=int(genuine.size),
        impostor_pairs=int(impostor.size),
    )


def calibrate_set(pipeline: Analyzer, directory: Path, *, target_far: float = 1e-3) -> Calibration:
    """Calibrate `pipeline` on the labelled set in `directory` (its manifest.csv), leaving out
    the photos its MISLABELLED.txt lists.

    Raises BiometricsError (an unreadable set, decoding, the models, too few pairs).
    """
    photos = read_manifest(directory)
    excluded = read_excluded(directory)
    kept = [p for p in photos if p.path.name not in excluded]
    embeddings, identities, _ = embed_photos(pipeline, kept)
    return calibrate(
        embeddings,
        identities,
        photos=len(kept),
        excluded=len(photos) - len(kept),
        target_far=target_far,
    )
