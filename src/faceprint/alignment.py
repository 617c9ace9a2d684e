"""Similarity-transform alignment onto the 112x112 ArcFace template."""

from __future__ import annotations

import cv2
import numpy as np

from faceprint.types import Detection, FaceCrop, Image

#: The ArcFace / InsightFace 5-point template for a 112x112 crop (x, y), in the
#: order eye left-in-image, eye right-in-image, nose tip, mouth left, mouth right.
ARCFACE_TEMPLATE = np.array(
    [
        [38.2946, 51.6963],
        [73.5318, 51.5014],
        [56.0252, 71.7366],
        [41.5493, 92.3655],
        [70.7299, 92.2041],
    ],
    dtype=np.float64,
)


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity transform (Umeyama, no reflection) mapping src onto dst; 2x3 matrix."""
    src = np.asarray(src, np.float64)
    dst = np.asarray(dst, np.float64)
    n = src.shape[0]
    mu_s, mu_d = src.mean(0), dst.mean(0)
    s_c, d_c = src - mu_s, dst - mu_d
    cov = d_c.T @ s_c / n
    u, sig, vt = np.linalg.svd(cov)
    d = np.ones(2)
    if np.linalg.det(cov) < 0:
        d[1] = -1
    rot = u @ np.diag(d) @ vt
    var_s = (s_c**2).sum() / n
    scale = (sig * d).sum() / var_s if var_s > 0 else 1.0
    m = np.zeros((2, 3))
    m[:, :2] = scale * rot
    m[:, 2] = mu_d - scale * rot @ mu_s
    return m


def align(image: Image, detection: Detection, size: int = 112) -> FaceCrop:
    """Warp the face onto the ArcFace template (scaled to ``size``); RGB uint8 crop."""
    template = ARCFACE_TEMPLATE * (size / 112.0)
    m = similarity_transform(detection.landmarks, template)
    crop = cv2.warpAffine(image.pixels, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    return FaceCrop(pixels=crop, detection=detection, transform=m)
