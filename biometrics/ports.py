"""The ports of the face engine: `Detector` and `Embedder` Protocols and the values they exchange.

Everything here is plain data or a Protocol, so importing it pulls in neither onnxruntime nor
insightface; the adapters that do live in `biometrics/mtcnn.py` and `biometrics/faces.py`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, TypeAlias, runtime_checkable

import numpy as np
import numpy.typing as npt

__all__ = [
    "Box",
    "Detection",
    "Detector",
    "Embedder",
    "Embedding",
    "Face",
    "ImageArray",
    "Landmarks",
    "ModelInfo",
    "Point",
    "Quality",
]

ImageArray: TypeAlias = npt.NDArray[np.uint8]
"""An H x W x 3 BGR uint8 image, the OpenCV convention used throughout."""

Embedding: TypeAlias = npt.NDArray[np.float32]
"""A 1-D (one face) or 2-D (faces x dimension) float32 array of L2-normalized embeddings."""

Point: TypeAlias = tuple[float, float]
Landmarks: TypeAlias = tuple[Point, Point, Point, Point, Point]
"""Five points in image pixels, in ArcFace order: left eye, right eye, nose, left and right mouth
corner ("left" as seen in the image)."""


@dataclass(frozen=True, slots=True)
class Box:
    """An axis-aligned face box in image pixels; (x1, y1) top-left, (x2, y2) bottom-right."""

    x1: float
    y1: float
    x2: float
    y2: float

    @property
    def width(self) -> float:
        return self.x2 - self.x1

    @property
    def height(self) -> float:
        return self.y2 - self.y1

    def shifted(self, dx: float, dy: float) -> Box:
        """The same box moved by (dx, dy) pixels."""
        return Box(self.x1 + dx, self.y1 + dy, self.x2 + dx, self.y2 + dy)


@dataclass(frozen=True, slots=True)
class Detection:
    """One face found by a `Detector`: its box, the detector's confidence and five landmarks."""

    box: Box
    score: float
    landmarks: Landmarks


@dataclass(frozen=True, slots=True)
class Quality:
    """How usable a detected face is for recognition.

    `size_px` is the shorter side of the box; `blur` the variance of the Laplacian of the aligned
    112 x 112 grey crop (low means blurred); yaw, pitch and roll are degrees estimated from the
    five landmarks (0 is frontal and upright).
    """

    size_px: float
    detection_score: float
    blur: float
    yaw: float
    pitch: float
    roll: float


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """Which model produced an embedding; stored beside every embedding for provenance."""

    pack_name: str
    pack_version: str
    recognizer_sha256: str
    dimension: int


@dataclass(frozen=True, slots=True, eq=False)
class Face:
    """A face found in an image, with its quality record and its L2-normalized embedding."""

    detection: Detection
    quality: Quality
    embedding: Embedding
    model: ModelInfo

    @property
    def box(self) -> Box:
        return self.detection.box

    @property
    def score(self) -> float:
        return self.detection.score

    @property
    def landmarks(self) -> Landmarks:
        return self.detection.landmarks


@runtime_checkable
class Detector(Protocol):
    """Finds faces and their five landmarks in a BGR image."""

    def detect(self, image: ImageArray) -> list[Detection]:
        """Every face in `image`, best score first. Raises ModelError."""
        ...


@runtime_checkable
class Embedder(Protocol):
    """Turns aligned square face crops into L2-normalized embeddings."""

    @property
    def input_size(self) -> int:
        """Side of the square aligned crop the model expects (112 for ArcFace-style models)."""
        ...

    @property
    def dimension(self) -> int:
        """Length of one embedding."""
        ...

    def embed(self, crops: Sequence[ImageArray]) -> Embedding:
        """A (len(crops), dimension) float32 array, each row of unit length. Raises ModelError."""
        ...
