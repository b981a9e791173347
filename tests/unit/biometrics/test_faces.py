"""Tests for biometrics/faces.py and quality.py: pipeline, alignment, batching, quality, pose."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from biometrics.errors import ModelError
from biometrics.faces import ArcFaceEmbedder, FacePipeline, ScrfdDetector, align
from biometrics.ports import Box, Detection, Detector, Embedder, ImageArray, ModelInfo
from biometrics.quality import assess, blur_score, estimate_pose
from tests.unit.biometrics import face_models

PACKS = ["starter", "ci-pack"]
# The ArcFace 112 x 112 template (insightface.utils.face_align.arcface_dst).
TEMPLATE = (
    (38.2946, 51.6963),
    (73.5318, 51.5014),
    (56.0252, 71.7366),
    (41.5493, 92.3655),
    (70.7299, 92.2041),
)


def _u8(array: object) -> ImageArray:
    return np.asarray(array, dtype=np.uint8)


def _read(index: int) -> ImageArray:
    return face_models.dev_image(index)


def _tile(images: list[ImageArray]) -> ImageArray:
    """Images side by side on one canvas, each centred in a cell of the tallest height."""
    height = max(i.shape[0] for i in images) + 40
    cells = []
    for image in images:
        cell = np.full((height, image.shape[1] + 40, 3), 90, dtype=np.uint8)
        top = (height - image.shape[0]) // 2
        cell[top : top + image.shape[0], 20 : 20 + image.shape[1]] = image
        cells.append(cell)
    return np.concatenate(cells, axis=1)


# ---- quality and pose: pure functions --------------------------------------------------------


def test_template_landmarks_are_frontal_and_level() -> None:
    yaw, pitch, roll = estimate_pose(TEMPLATE)
    assert abs(yaw) < 2 and abs(pitch) < 2 and abs(roll) < 1


@pytest.mark.parametrize("angle", [-40.0, -10.0, 15.0, 35.0])
def test_roll_follows_an_in_plane_rotation(angle: float) -> None:
    theta = math.radians(angle)
    c, s = math.cos(theta), math.sin(theta)
    rotated = tuple((c * x - s * y, s * x + c * y) for x, y in TEMPLATE)
    yaw, pitch, roll = estimate_pose(rotated)  # type: ignore[arg-type]
    assert roll == pytest.approx(angle, abs=0.5)
    assert abs(yaw) < 2 and abs(pitch) < 2


def test_yaw_and_pitch_signs() -> None:
    (le, re, nose, ml, mr) = TEMPLATE
    right = (le, re, (nose[0] + 10, nose[1]), ml, mr)
    left = (le, re, (nose[0] - 10, nose[1]), ml, mr)
    up = (le, re, (nose[0], nose[1] - 8), ml, mr)
    assert estimate_pose(right)[0] > 20 > 0 > -20 > estimate_pose(left)[0]
    assert estimate_pose(up)[1] > 20


def test_blur_score_drops_when_the_crop_is_blurred() -> None:
    crop = _u8(cv2.resize(_read(0), (112, 112)))
    assert blur_score(_u8(cv2.GaussianBlur(crop, (9, 9), 3))) < blur_score(crop) / 4


def test_assess_records_size_score_and_pose() -> None:
    det = Detection(box=Box(10, 20, 110, 150), score=0.93, landmarks=TEMPLATE)
    quality = assess(det, _u8(cv2.resize(_read(0), (112, 112))))
    assert quality.size_px == 100
    assert quality.detection_score == 0.93
    assert quality.blur > 0


# ---- the pipeline on real models ---------------------------------------------------------------


@pytest.mark.models
@pytest.mark.parametrize("name", PACKS)
def test_adapters_satisfy_their_protocols(name: str) -> None:
    pipe = face_models.pipeline(name)
    assert isinstance(pipe.detector, Detector)
    assert isinstance(pipe.embedder, Embedder)
    assert pipe.embedder.input_size == 112


@pytest.mark.models
@pytest.mark.parametrize("name", PACKS)
def test_one_photo_gives_one_normalized_face_with_provenance(name: str) -> None:
    pipe = face_models.pipeline(name)
    pack = face_models.pack(name)
    faces = pipe.analyze(_read(0))
    assert len(faces) == 1
    face = faces[0]
    assert face.embedding.dtype == np.float32
    assert face.embedding.shape == (512,)
    assert float(np.linalg.norm(face.embedding)) == pytest.approx(1.0, abs=1e-5)
    assert face.model == ModelInfo(name, pack.version, pack.recognizer.sha256, 512)
    assert face.model.recognizer_sha256 == (
        "87aacdfe57510db2af90c0251df680e8eec88f122ee94712121d09bcaaaf3581"
    )
    width = _read(0).shape[1]
    assert -0.1 * width < face.box.x1 < face.box.x2 < 1.1 * width
    assert face.quality.size_px > 80
    assert face.quality.blur > 10
    assert abs(face.quality.roll) < 25


@pytest.mark.models
@pytest.mark.parametrize("name", PACKS)
def test_same_person_scores_above_threshold_and_strangers_below(name: str) -> None:
    pipe = face_models.pipeline(name)
    photos = face_models.dev_photos()
    same = [i for i, p in enumerate(photos) if p.identity == photos[0].identity]
    other = next(i for i, p in enumerate(photos) if p.identity != photos[0].identity)
    a, b, c = (pipe.analyze(_read(i))[0].embedding for i in (same[0], same[1], other))
    threshold = face_models.pack(name).match_threshold
    assert float(a @ b) > threshold > float(a @ c)


@pytest.mark.models
@pytest.mark.parametrize("name", PACKS)
@pytest.mark.parametrize("count", [2, 3, 4])
def test_several_faces_in_one_image(name: str, count: int) -> None:
    pipe = face_models.pipeline(name)
    photos = face_models.dev_photos()
    picks, seen = [], set()
    for i, p in enumerate(photos):
        if p.identity not in seen:
            picks.append(i)
            seen.add(p.identity)
        if len(picks) == count:
            break
    singles = [pipe.analyze(_read(i))[0].embedding for i in picks]
    faces = pipe.analyze(_tile([_read(i) for i in picks]))
    assert len(faces) == count
    faces.sort(key=lambda f: f.box.x1)  # tiles run left to right
    for single, face in zip(singles, faces, strict=True):
        assert float(single @ face.embedding) > 0.8


@pytest.mark.models
@pytest.mark.parametrize("name", PACKS)
def test_alignment_undoes_an_in_plane_rotation(name: str) -> None:
    pipe = face_models.pipeline(name)
    image = _read(5)
    upright = pipe.analyze(image)[0]
    height, width = image.shape[:2]
    matrix = cv2.getRotationMatrix2D((width / 2, height / 2), 25, 1.0)
    tilted = _u8(cv2.warpAffine(image, matrix, (width, height), borderMode=cv2.BORDER_REPLICATE))
    faces = pipe.analyze(tilted)
    assert len(faces) == 1
    assert faces[0].quality.roll == pytest.approx(upright.quality.roll - 25, abs=8)
    assert float(upright.embedding @ faces[0].embedding) > 0.7


@pytest.mark.models
def test_align_maps_landmarks_onto_the_template() -> None:
    pipe = face_models.pipeline("ci-pack")
    image = _read(3)
    det = pipe.detect(image)[0]
    crop = align(image, det.landmarks)
    assert crop.shape == (112, 112, 3)
    again = pipe.detector.detect(_u8(cv2.copyMakeBorder(crop, 56, 56, 56, 56, cv2.BORDER_CONSTANT)))
    assert again
    for (x, y), (tx, ty) in zip(again[0].landmarks, TEMPLATE, strict=True):
        assert math.hypot(x - 56 - tx, y - 56 - ty) < 6


@pytest.mark.filterwarnings(
    "ignore:`estimate` is deprecated:FutureWarning"
)  # skimage, in norm_crop
@pytest.mark.parametrize("size", [112, 128, 224])
def test_align_is_insightface_norm_crop(size: int) -> None:
    from insightface.utils.face_align import norm_crop

    rng = np.random.default_rng(size)
    image = rng.integers(0, 256, (300, 260, 3), dtype=np.uint8)
    for _ in range(20):
        # The template moved, turned, scaled and jittered: where a detector would put it.
        angle = rng.uniform(-0.6, 0.6)
        rotation = np.array(
            [[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]]
        )
        points = TEMPLATE @ rotation.T * rng.uniform(0.8, 2.0) + rng.uniform(20, 120, 2)
        points += rng.normal(0, 2, points.shape)
        landmarks = tuple((float(x), float(y)) for x, y in points)
        ours = align(image, landmarks, size=size)  # type: ignore[arg-type]
        theirs = norm_crop(image, landmark=points.astype(np.float32), image_size=size)
        assert ours.shape == theirs.shape == (size, size, 3)
        assert int(np.abs(ours.astype(np.int16) - theirs).max()) <= 1


def test_align_refuses_degenerate_landmarks_and_odd_sizes() -> None:
    image = np.zeros((50, 50, 3), dtype=np.uint8)
    with pytest.raises(ModelError, match="degenerate"):
        align(image, ((10.0, 10.0),) * 5)  # type: ignore[arg-type]
    with pytest.raises(ModelError, match="112 or 128"):
        align(image, tuple((float(x), float(y)) for x, y in TEMPLATE), size=100)  # type: ignore[arg-type]


@pytest.mark.models
@pytest.mark.parametrize("name", PACKS)
def test_batches_agree_with_single_calls(name: str) -> None:
    pipe = face_models.pipeline(name)
    images = [_read(i) for i in (0, 4, 8)]
    batched = pipe.analyze_many(images)
    for image, faces in zip(images, batched, strict=True):
        single = pipe.analyze(image)
        assert len(faces) == len(single) == 1
        assert np.allclose(faces[0].embedding, single[0].embedding, atol=1e-5)
    crops = [align(img, f[0].landmarks) for img, f in zip(images, batched, strict=True)]
    embedded = pipe.embed_batch(crops)
    assert embedded.shape == (3, 512)
    assert np.allclose(embedded, np.stack([f[0].embedding for f in batched]), atol=1e-5)
    assert pipe.embed_batch([]).shape == (0, 512)


@pytest.mark.models
@pytest.mark.parametrize("name", PACKS)
def test_gates_drop_small_or_doubtful_faces(name: str) -> None:
    pipe = face_models.pipeline(name)
    image = _read(0)
    strict = FacePipeline(pipe.detector, pipe.embedder, min_face_size=2000, model=pipe.model)
    assert strict.analyze(image) == []
    doubtful = FacePipeline(pipe.detector, pipe.embedder, min_score=1.01, model=pipe.model)
    assert doubtful.analyze(image) == []
    assert pipe.analyze(np.zeros((200, 200, 3), dtype=np.uint8)) == []


@pytest.mark.models
@pytest.mark.parametrize("name", PACKS)
def test_detects_tight_crops_on_a_sample(name: str) -> None:
    pipe = face_models.pipeline(name)
    photos = face_models.dev_photos()[1::16]
    found = sum(1 for p in photos if pipe.detect(face_models.read_bgr(p.path)))
    assert found >= len(photos) - 1


@pytest.mark.models
def test_pipeline_refuses_a_model_record_of_the_wrong_dimension() -> None:
    pipe = face_models.pipeline("ci-pack")
    wrong = ModelInfo("x", "1", "0" * 64, 128)
    with pytest.raises(ModelError, match="128-d"):
        FacePipeline(pipe.detector, pipe.embedder, model=wrong)


@pytest.mark.models
def test_adapters_refuse_models_of_the_wrong_kind() -> None:
    pack = face_models.ci_pack()
    with pytest.raises(ModelError, match="SCRFD"):
        ScrfdDetector(pack.path(pack.recognizer))
    with pytest.raises(ModelError, match="square"):
        ArcFaceEmbedder(pack.detector_path("scrfd"))
