"""Tests for biometrics/mtcnn.py: NMS and box helpers, and the cascade on real photos."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from biometrics.mtcnn import MTCNN, _crops, _halved, _nms, _regress, _square
from biometrics.ports import Detector, ImageArray
from tests.unit.biometrics import face_models

pytestmark = pytest.mark.models


@pytest.fixture(scope="module")
def mtcnn() -> MTCNN:
    pack = face_models.starter_pack()
    return MTCNN(pack.detector_path("pnet"), pack.detector_path("rnet"), pack.detector_path("onet"))


@pytest.fixture(scope="module")
def photo() -> ImageArray:
    return face_models.dev_image(0)


def test_nms_keeps_the_best_of_overlapping_boxes_and_distinct_ones() -> None:
    boxes = np.array(
        [
            [0, 0, 10, 10, 0.9],
            [1, 1, 11, 11, 0.95],  # overlaps the first heavily, better score
            [50, 50, 60, 60, 0.5],  # elsewhere
        ],
        dtype=np.float32,
    )
    assert _nms(boxes, 0.5).tolist() == [1, 2]
    assert sorted(_nms(boxes, 0.99).tolist()) == [0, 1, 2]
    assert _nms(np.empty((0, 5), dtype=np.float32), 0.5).size == 0


def test_nms_min_mode_suppresses_a_box_inside_another() -> None:
    boxes = np.array([[0, 0, 100, 100, 0.9], [10, 10, 30, 30, 0.8]], dtype=np.float32)
    assert sorted(_nms(boxes, 0.7).tolist()) == [0, 1]  # IoU is small
    assert _nms(boxes, 0.7, mode="min").tolist() == [0]  # but it lies wholly inside


def test_nms_with_levels_suppresses_only_within_a_level() -> None:
    boxes = np.array([[0, 0, 10, 10, 0.9], [1, 1, 11, 11, 0.95]], dtype=np.float32)
    assert _nms(boxes, 0.5, levels=np.array([0, 0], dtype=np.int32)).tolist() == [1]
    assert sorted(_nms(boxes, 0.5, levels=np.array([0, 1], dtype=np.int32)).tolist()) == [0, 1]


def test_crops_are_black_outside_the_image_and_width_first() -> None:
    rng = np.random.default_rng(5)
    image = rng.integers(1, 256, (40, 30, 3), dtype=np.uint8)  # no black pixel inside
    # 1-based inclusive corners: (11, 6)-(20, 25) is columns 10..19, rows 5..24.
    inside, across = [11, 6, 20, 25, 1.0], [-9, -9, 10, 10, 1.0]
    out = _crops(image, np.array([inside, across], dtype=np.float32), 24)
    assert out.shape == (2, 24, 24, 3)
    expected = cv2.resize(image[5:25, 10:20], (24, 24), interpolation=cv2.INTER_LINEAR)
    expected = (expected.transpose(1, 0, 2).astype(np.float32) - 127.5) * 0.0078125
    np.testing.assert_array_equal(out[0], expected)
    # The second box's top-left half lies outside: black there (-127.5 / 128), image elsewhere.
    assert np.all(out[1, :10, :10] == -127.5 * 0.0078125)
    assert np.all(out[1, 14:, 14:] > -127.5 * 0.0078125)


def test_halving_stops_before_overshooting_the_scale() -> None:
    image = np.zeros((200, 161, 3), dtype=np.uint8)
    assert _halved(image, 0.2).shape == (50, 40, 3)  # 0.2 -> 0.4 -> 0.8 of it: two halvings
    assert _halved(image, 0.6) is image
    assert _halved(np.zeros((30, 30, 3), dtype=np.uint8), 0.1).shape == (15, 15, 3)


def test_square_keeps_the_centre_and_takes_the_longer_side() -> None:
    boxes = np.array([[10, 20, 30, 60, 1.0]], dtype=np.float32)
    squared = _square(boxes)[0]
    assert squared[2] - squared[0] == pytest.approx(40)
    assert squared[3] - squared[1] == pytest.approx(40)
    assert (squared[0] + squared[2]) / 2 == pytest.approx(20)
    assert (squared[1] + squared[3]) / 2 == pytest.approx(40)


def test_regress_moves_corners_by_fractions_of_the_size() -> None:
    boxes = np.array([[0, 0, 9, 19, 1.0]], dtype=np.float32)
    out = _regress(boxes, np.array([[0.1, 0.1, -0.1, 0.0]], dtype=np.float32))[0]
    assert out[:4].tolist() == pytest.approx([1.0, 2.0, 8.0, 19.0])


def test_satisfies_the_detector_protocol(mtcnn: MTCNN) -> None:
    assert isinstance(mtcnn, Detector)


def test_finds_one_face_with_plausible_landmarks(mtcnn: MTCNN, photo: ImageArray) -> None:
    found = mtcnn.detect(photo)
    assert len(found) == 1
    face = found[0]
    assert face.score > 0.95
    assert face.box.width > 0.4 * photo.shape[1]
    (lex, ley), (rex, rey), (_, ny), (mlx, mly), (mrx, mry) = face.landmarks
    for x, y in face.landmarks:
        assert face.box.x1 - 5 <= x <= face.box.x2 + 5
        assert face.box.y1 - 5 <= y <= face.box.y2 + 5
    assert lex < rex and mlx < mrx
    assert max(ley, rey) < ny < min(mly, mry)


def test_blank_and_noise_images_have_no_faces(mtcnn: MTCNN) -> None:
    assert mtcnn.detect(np.zeros((240, 320, 3), dtype=np.uint8)) == []
    rng = np.random.default_rng(7)
    assert mtcnn.detect(rng.integers(0, 256, (240, 320, 3), dtype=np.uint8)) == []


def test_large_images_are_downscaled_and_mapped_back(mtcnn: MTCNN, photo: ImageArray) -> None:
    small = mtcnn.detect(photo)[0]
    factor = 8
    big = np.asarray(
        cv2.resize(photo, None, fx=factor, fy=factor, interpolation=cv2.INTER_CUBIC), np.uint8
    )
    assert max(big.shape[:2]) > mtcnn.max_side
    large = mtcnn.detect(big)
    assert len(large) == 1
    for got, want in zip(
        (large[0].box.x1, large[0].box.y1, large[0].box.x2, large[0].box.y2),
        (small.box.x1, small.box.y1, small.box.x2, small.box.y2),
        strict=True,
    ):
        assert got == pytest.approx(want * factor, abs=0.08 * small.box.width * factor)


def test_detects_most_dev_photos_quickly(mtcnn: MTCNN) -> None:
    photos = face_models.dev_photos()[::12]
    found = [len(mtcnn.detect(face_models.read_bgr(p.path))) for p in photos]
    assert sum(1 for n in found if n >= 1) >= len(photos) - 1
