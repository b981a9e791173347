"""Accuracy of both packs on the labelled dev faces: detection rate, rank-1, TAR at FAR 1e-3.

Runs every photo through `decode_image` and the full pipeline, then scores all pairs with
`biometrics.evaluation`, the same code the API-level search test compares against.
"""

from __future__ import annotations

import numpy as np
import pytest

from biometrics.evaluation import embed_photos, evaluate
from tests.unit.biometrics import face_models

pytestmark = [pytest.mark.models, pytest.mark.slow]

# The issue measured 0.974 / 0.920 (starter) and SOURCES.md 0.975 / 0.929 (ci-pack, 160 photos);
# the floors leave room for platform differences in onnxruntime and OpenCV, not for regressions.
FLOORS = {"starter": (0.95, 0.88), "ci-pack": (0.95, 0.88)}


@pytest.mark.parametrize("name", ["starter", "ci-pack"])
def test_identification_accuracy_on_dev_faces(name: str) -> None:
    photos = face_models.dev_photos()
    assert len(photos) == 424
    embeddings, identities, missed = embed_photos(face_models.pipeline(name), photos)
    report = evaluate(embeddings, identities, photos=len(photos), far=1e-3)
    print()
    print(report.table(name))
    if missed:
        print(f"{name}: no face found in {[p.name for p in missed]}")
    rank1_floor, tar_floor = FLOORS[name]
    assert report.detection_rate >= 0.99
    assert report.rank1 >= rank1_floor
    assert report.tar >= tar_floor
    assert report.genuine_mean > report.threshold > report.impostor_mean
    assert np.allclose(np.linalg.norm(embeddings, axis=1), 1.0, atol=1e-5)


def test_evaluation_on_a_constructed_case() -> None:
    # Two identities, two photos each, on orthogonal axes plus a small perturbation.
    rng = np.random.default_rng(0)
    base = np.eye(4, dtype=np.float32)[[0, 0, 1, 1]] + rng.normal(0, 0.05, (4, 4)).astype(
        np.float32
    )
    base /= np.linalg.norm(base, axis=1, keepdims=True)
    perfect = evaluate(base, ["a", "a", "b", "b"], photos=5)
    assert perfect.rank1 == 1.0 and perfect.tar == 1.0
    assert perfect.detection_rate == pytest.approx(0.8)
    assert (perfect.genuine_pairs, perfect.impostor_pairs) == (2, 4)
    swapped = evaluate(base, ["a", "b", "a", "b"], photos=4)
    assert swapped.rank1 == 0.0 and swapped.tar == 0.0
