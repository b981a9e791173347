"""Per-face quality: size, detector confidence, blur of the aligned crop, and head pose.

Pose is a coarse geometric estimate from the five landmarks against the ArcFace reference face,
good enough to flag profiles and tilted heads; it is not a 3-D head-pose model.
"""

from __future__ import annotations

import math

import cv2

from biometrics.ports import Detection, ImageArray, Landmarks, Quality

__all__ = ["FRONTAL_NOSE_RATIO", "assess", "blur_score", "estimate_pose"]

# In the ArcFace 112 x 112 template the nose tip sits this far from the eye line towards the
# mouth line (eyes y=51.6, nose y=71.7, mouth y=92.3); a frontal, level face shows the same.
FRONTAL_NOSE_RATIO = (71.7366 - 51.5989) / (92.2848 - 51.5989)


def blur_score(crop: ImageArray) -> float:
    """Variance of the Laplacian of the grey crop: sharp faces score in the hundreds, blurred
    ones near zero."""
    grey = cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY) if crop.ndim == 3 else crop
    _, std = cv2.meanStdDev(cv2.Laplacian(grey, cv2.CV_64F))
    return float(std[0, 0]) ** 2


def estimate_pose(landmarks: Landmarks) -> tuple[float, float, float]:
    """(yaw, pitch, roll) in degrees from five landmarks in ArcFace order.

    Roll is the angle of the eye line. In the frame that undoes the roll, yaw follows the nose's
    sideways offset from the eye midpoint (relative to half the eye distance) and pitch the nose's
    height between the eye and mouth lines relative to the frontal template. Positive yaw: the
    face turns towards the image's right; positive pitch: the face looks up.
    """
    (lx, ly), (rx, ry), (nx, ny), (m1x, m1y), (m2x, m2y) = landmarks
    ex, ey = (lx + rx) / 2, (ly + ry) / 2
    dx, dy = rx - lx, ry - ly
    roll = math.degrees(math.atan2(dy, dx))
    # Undo the roll: rotate by -roll about the eye midpoint (plain floats: five points).
    cos_r, sin_r = math.cos(math.radians(roll)), math.sin(math.radians(roll))
    nose_x, nose_y = nx - ex, ny - ey
    mouth_x, mouth_y = (m1x + m2x) / 2 - ex, (m1y + m2y) / 2 - ey
    nose_r = (cos_r * nose_x + sin_r * nose_y, -sin_r * nose_x + cos_r * nose_y)
    mouth_depth = -sin_r * mouth_x + cos_r * mouth_y
    half_iod = max(math.hypot(dx, dy) / 2, 1e-6)
    yaw = math.degrees(math.asin(min(max(nose_r[0] / half_iod, -1.0), 1.0)))
    depth = max(mouth_depth, 1e-6)
    ratio = nose_r[1] / depth
    pitch = math.degrees(math.asin(min(max((FRONTAL_NOSE_RATIO - ratio) * 2, -1.0), 1.0)))
    return yaw, pitch, roll


def assess(detection: Detection, aligned: ImageArray) -> Quality:
    """The quality record of one detected face given its aligned crop."""
    yaw, pitch, roll = estimate_pose(detection.landmarks)
    return Quality(
        size_px=float(min(detection.box.width, detection.box.height)),
        detection_score=detection.score,
        blur=blur_score(aligned),
        yaw=yaw,
        pitch=pitch,
        roll=roll,
    )
