"""Component quality measures of one face: each a raw value plus a 0-100 score.

All are cheap (well under a millisecond together) and read only what the
pipeline already has: the image, the detection (box, 5 landmarks, score), the
aligned 112 x 112 crop and, for recognizability, the template.

=================  ===========================================  ====================================
name               raw value                                    score 100 ... 0
=================  ===========================================  ====================================
interocular        distance between the eye centres (px)        >= 40 px ... <= 10 px
face_size          face box height (px)                         >= 100 px ... <= 24 px
yaw                head turn left/right (degrees, from the      |yaw| <= 10 ... >= 60
                   5 landmarks by PnP on a generic 3-D face)
pitch              head tilt up/down (degrees, as yaw)          |pitch| <= 10 ... >= 45
roll               in-plane rotation (degrees, eye line)        |roll| <= 20 ... >= 60 (alignment
                                                                undoes roll; only extreme hurts)
sharpness          variance of the Laplacian of the aligned     >= 150 ... <= 10 (log scale)
                   grey face (eyes to mouth)
exposure           mean grey level of the face (0-255)          70-190 ... <= 15 or >= 245
clipping           share of face pixels at 0-3 or 252-255       0 ... >= 25 %
contrast           grey-level standard deviation of the face    >= 40 ... <= 8
detector           detector confidence (0-1)                    >= 0.95 ... <= 0.5
recognizability    1 - cosine of the template to the centre     set per model by the training
                   of unrecognisable faces (the mean template   script: typical of clean faces ...
                   of heavily degraded faces; see               typical of unrecognisable ones
                   ``scripts/train_quality.py``)
=================  ===========================================  ====================================

The ranges are where each measure stops mattering on lfw-dev (above) or leaves
nothing to recognise (below); the unified score (:mod:`faceprint.quality.model`)
learns how they combine.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from faceprint.types import Detection, FaceCrop

__all__ = ["COMPONENTS", "Component", "head_pose", "measure"]

# a generic face in millimetres in OpenCV's camera frame for a frontal face: x to the viewer's
# right, y down, z away from the camera (the eyes and mouth lie behind the nose tip); the order
# of Detection.landmarks (image-left eye, image-right eye, nose tip, mouth corners)
_FACE_3D = np.array([[-31.0, -33.0, 28.0], [31.0, -33.0, 28.0], [0.0, 0.0, 0.0], [-25.0, 30.0, 24.0], [25.0, 30.0, 24.0]], np.float64)
# the face region of the aligned 112 x 112 crop: eyebrows to chin, cheek to cheek
_ROWS, _COLS = slice(30, 104), slice(22, 90)


@dataclass(frozen=True)
class Component:
    name: str
    raw: float | None  # None: not measurable here (recognizability without a template of the right model)
    score: int | None  # 0-100, higher is better; None when raw is None
    unit: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"raw": None if self.raw is None else round(self.raw, 4), "score": self.score, "unit": self.unit}


COMPONENTS = ("interocular", "face_size", "yaw", "pitch", "roll", "sharpness", "exposure", "clipping", "contrast", "detector", "recognizability")


def _ramp(x: float, lo: float, hi: float) -> int:
    """0 at ``lo``, 100 at ``hi`` (either order), linear between."""
    return int(round(100.0 * min(1.0, max(0.0, (x - lo) / (hi - lo)))))


def _band(x: float, zero_lo: float, lo: float, hi: float, zero_hi: float) -> int:
    return _ramp(x, zero_lo, lo) if x < lo else (_ramp(x, zero_hi, hi) if x > hi else 100)


def head_pose(det: Detection, image_size: tuple[int, int]) -> tuple[float, float, float]:
    """(yaw, pitch, roll) in degrees from the 5 landmarks.  Yaw > 0: the face turns towards the
    viewer's right; pitch > 0: it looks up; roll > 0: the head leans clockwise as seen."""
    w, h = image_size
    pts = det.landmarks.astype(np.float64)
    eyes = pts[1] - pts[0]
    roll = math.degrees(math.atan2(eyes[1], eyes[0]))
    f = float(max(w, h))
    cam = np.array([[f, 0, w / 2.0], [0, f, h / 2.0], [0, 0, 1]], np.float64)
    ok, rvec, _ = cv2.solvePnP(_FACE_3D, pts, cam, None, flags=cv2.SOLVEPNP_SQPNP)
    if not ok:
        return 0.0, 0.0, roll
    r, _ = cv2.Rodrigues(rvec)
    # rotation about y (yaw) and x (pitch) of the face relative to the camera, roll taken from the eyes
    yaw = math.degrees(math.asin(max(-1.0, min(1.0, -r[2, 0]))))
    pitch = math.degrees(math.atan2(r[2, 1], r[2, 2]))
    return yaw, -pitch, roll


def measure(
    image_size: tuple[int, int],
    det: Detection,
    crop: FaceCrop,
    *,
    recognizability: float | None = None,
    recognizability_range: tuple[float, float] | None = None,
) -> dict[str, Component]:
    """Every component of one face.  ``recognizability`` is the raw value (computed by the
    caller from the template, see :class:`faceprint.quality.model.QualityModel`), scored
    over ``recognizability_range`` (unrecognisable, clean)."""
    grey = cv2.cvtColor(crop.pixels, cv2.COLOR_RGB2GRAY)
    face = grey[_ROWS, _COLS]
    lap = float(cv2.Laplacian(face, cv2.CV_32F).var())
    mean, std = (float(v[0][0]) for v in cv2.meanStdDev(face))
    clipped = float(np.count_nonzero((face <= 3) | (face >= 252))) / face.size
    yaw, pitch, roll = head_pose(det, image_size)
    eyes = det.interocular
    height = float(det.box[3])
    out = {
        "interocular": Component("interocular", eyes, _ramp(eyes, 10.0, 40.0), "px"),
        "face_size": Component("face_size", height, _ramp(height, 24.0, 100.0), "px"),
        "yaw": Component("yaw", yaw, 100 - _ramp(abs(yaw), 10.0, 60.0), "deg"),
        "pitch": Component("pitch", pitch, 100 - _ramp(abs(pitch), 10.0, 45.0), "deg"),
        "roll": Component("roll", roll, 100 - _ramp(abs(roll), 20.0, 60.0), "deg"),
        "sharpness": Component("sharpness", lap, _ramp(math.log10(max(lap, 1e-3)), 1.0, math.log10(150.0))),
        "exposure": Component("exposure", mean, _band(mean, 15.0, 70.0, 190.0, 245.0), "grey level"),
        "clipping": Component("clipping", clipped, 100 - _ramp(clipped, 0.0, 0.25), "fraction"),
        "contrast": Component("contrast", std, _ramp(std, 8.0, 40.0), "grey level"),
        "detector": Component("detector", float(det.score), _ramp(float(det.score), 0.5, 0.95)),
    }
    if recognizability is None or recognizability_range is None:
        out["recognizability"] = Component("recognizability", None, None)
    else:
        lo, hi = recognizability_range
        out["recognizability"] = Component("recognizability", recognizability, _ramp(recognizability, lo, hi))
    return out
