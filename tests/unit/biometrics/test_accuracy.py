"""Accuracy of both packs on the labelled dev faces: detection rate, rank-1, TAR at FAR 1e-3.

Runs every photo through `decode_image` and the full pipeline, then scores all pairs with
`biometrics.evaluation`, the same code the API-level search test compares against.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from biometrics.evaluation import (
    calibrate,
    calibrate_set,
    embed_photos,
    evaluate,
    read_excluded,
)
from tests.unit.biometrics import face_models

pytestmark = [pytest.mark.models, pytest.mark.slow]

# The issue measured 0.974 / 0.920 (starter) and SOURCES.md 0.975 / 0.929 (ci-pack, 160 photos);
# the floors leave room for platform differences in onnxruntime and OpenCV, not for regressions.
FLOORS = {"starter": (0.95, 0.88), "ci-pack": (0.95, 0.88)}


@pytest.mark.parametrize("name", ["starter", "ci-pack"])
def test_identification_accuracy_on_dev_faces(name: str) -> None:
    photos = face_models.dev_photos()
    assert len(photos) == 424
    embeddings, identities, missed = embed_photos(face_models.remembered_pipeline(name), photos)
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


@pytest.mark.parametrize("name", ["starter", "ci-pack"])
def test_the_declared_calibration_is_what_the_dev_set_measures(name: str) -> None:
    pack = face_models.pack(name)
    pipeline = face_models.remembered_pipeline(name)
    measured = calibrate_set(pipeline, face_models.dev_dir(), target_far=1e-3)
    print()
    print(measured.table(name))
    assert measured.excluded == 5 and measured.photos == 419
    assert measured.manifest_fields() == {
        "match_threshold": pack.match_threshold,
        "match_far": pack.match_far,
    }
    assert measured.far <= 1e-3


@pytest.mark.parametrize("name", ["starter", "ci-pack"])
def test_a_remembered_answer_is_the_pipelines(name: str) -> None:
    # What the accuracy tests reuse: an image's faces, whatever else its batch holds.
    photos = face_models.dev_photos()[:12]
    alone, _, _ = embed_photos(face_models.pipeline(name), photos[5:], batch=3)
    remembered = face_models.remembered_pipeline(name)
    both, _, _ = embed_photos(remembered, photos, batch=16)
    again, _, _ = embed_photos(remembered, photos[5:], batch=3)
    assert np.array_equal(both[-len(alone) :], alone)
    assert np.array_equal(again, alone)


def test_the_mislabelled_photos_are_read_from_the_set() -> None:
    excluded = read_excluded(face_models.dev_dir())
    assert len(excluded) == 5 and "Colin_Hanks_25412.jpg" in excluded
    assert {p.path.name for p in face_models.dev_photos()} >= excluded


def test_calibration_rounds_up_and_reports_the_far_at_its_threshold(tmp_path: Path) -> None:
    # Four identities, three photos each, near their own axis.
    rng = np.random.default_rng(1)
    base = np.eye(8, dtype=np.float32)[np.repeat(np.arange(4), 3)]
    base += rng.normal(0, 0.2, base.shape).astype(np.float32)
    base /= np.linalg.norm(base, axis=1, keepdims=True)
    labels = [str(i) for i in np.repeat(np.arange(4), 3)]
    report = evaluate(base, labels, photos=12, far=0.1)
    result = calibrate(base, labels, photos=12, excluded=0, target_far=0.1)
    assert result.threshold > report.threshold
    assert result.threshold == pytest.approx(np.ceil(report.threshold * 100) / 100)
    sims = base @ base.T
    same = np.array(labels)[:, None] == np.array(labels)[None, :]
    upper = np.triu(np.ones_like(same), k=1)
    impostor = sims[~same & upper]
    assert result.far == pytest.approx(float((impostor >= result.threshold).mean()))
    assert result.far <= 0.1
    assert read_excluded(tmp_path) == frozenset()
    (tmp_path / "MISLABELLED.txt").write_text("# wrong labels\n\na.jpg\n b.jpg \n")
    assert read_excluded(tmp_path) == {"a.jpg", "b.jpg"}


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
