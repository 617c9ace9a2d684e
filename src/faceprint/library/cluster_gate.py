"""The photo library's clustering gate: a quick per-face quality from size, sharpness and
detector confidence.  (Not the unified face-quality model of :mod:`faceprint.quality`: the
library stores that score beside this one, for the UI.)

``quality`` is in [0, 1]: the weakest of three ramps --
* the distance between the eyes, 12 px (0) to 24 px (1): below ~12 px a face
  carries little identity;
* sharpness, the variance of the Laplacian of the aligned 112 x 112 grey crop,
  log-scaled between 20 (0, smeared) and 80 (1);
* the detector score, 0.6 (0) to 0.9 (1).
Faces under ``ClusterParams.min_quality`` (0.5) never seed or bridge a person.
The components are kept beside the score so the UI can say why a face is weak.
Switching the gate to the unified score needs the clustering benchmark re-run first.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from faceprint.types import Detection, FaceCrop

__all__ = ["face_quality"]


def _ramp(x: float, lo: float, hi: float) -> float:
    return float(np.clip((x - lo) / (hi - lo), 0.0, 1.0))


def face_quality(det: Detection, crop: FaceCrop) -> tuple[float, dict[str, Any]]:
    """(quality in [0, 1], components) of one detected and aligned face."""
    eyes = det.interocular
    grey = cv2.cvtColor(crop.pixels, cv2.COLOR_RGB2GRAY)
    sharp = float(cv2.Laplacian(grey, cv2.CV_64F).var())
    parts = {
        "size": _ramp(eyes, 12.0, 24.0),
        "sharpness": _ramp(np.log10(max(sharp, 1e-6)), np.log10(20.0), np.log10(80.0)),
        "detector": _ramp(det.score, 0.6, 0.9),
    }
    quality = min(parts.values())
    weakest = min(parts, key=parts.__getitem__)
    return round(quality, 4), {
        "interocular_px": round(eyes, 1),
        "laplacian_var": round(sharp, 1),
        "det_score": round(float(det.score), 4),
        **{k: round(v, 3) for k, v in parts.items()},
        "weakest": weakest,
    }
