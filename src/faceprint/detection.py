"""Face detection.  ``Detector`` protocol; YuNet (OpenCV) is the default.

YuNet sees faces from about 10 px to the full frame at the size it runs at, so
one pass over a copy downscaled to ``max_side`` finds medium and large faces;
for photos so large that a face of ``small_face`` pixels shrinks below that in
the first pass, a second pass over overlapping tiles at a finer scale recovers
small faces (crowds, distant people).  Tiny images are
upscaled and framed with a border so a face that fills the whole picture
(passport crops, ORL, thumbnails) is still found.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import cv2
import numpy as np

from faceprint.models.registry import verified_path
from faceprint.types import Detection, Image


@contextmanager
def quiet_opencv() -> Iterator[None]:
    """Silence OpenCV's log below errors for the duration (model loading chatter)."""
    level = cv2.utils.logging.getLogLevel()
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
    try:
        yield
    finally:
        cv2.utils.logging.setLogLevel(level)


@runtime_checkable
class Detector(Protocol):
    model_id: str

    def detect(self, image: Image) -> list[Detection]:
        """All faces in the image, highest score first."""
        ...


@dataclass(frozen=True)
class DetectorSettings:
    score_threshold: float = 0.85  # minimum YuNet score kept (CompreFace uses 0.8; lower it for faint/profile faces)
    nms_iou: float = 0.3  # overlap above which two boxes are the same face
    max_side: int = 640  # long side of the whole-image pass
    small_face: float = 40.0  # faces down to this box side (original pixels) are found in photos of any size
    min_side: int = 160  # short side below which the image is upscaled
    min_face: float = 8.0  # faces smaller than this (box side, original pixels) are dropped


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of (N,4) xywh boxes against (M,4) xywh boxes."""
    ax2, ay2 = a[:, 0] + a[:, 2], a[:, 1] + a[:, 3]
    bx2, by2 = b[:, 0] + b[:, 2], b[:, 1] + b[:, 3]
    iw = np.clip(np.minimum(ax2[:, None], bx2[None]) - np.maximum(a[:, None, 0], b[None, :, 0]), 0, None)
    ih = np.clip(np.minimum(ay2[:, None], by2[None]) - np.maximum(a[:, None, 1], b[None, :, 1]), 0, None)
    inter = iw * ih
    union = (a[:, 2] * a[:, 3])[:, None] + (b[:, 2] * b[:, 3])[None] - inter
    return inter / np.maximum(union, 1e-9)


def nms(rows: np.ndarray, iou: float) -> np.ndarray:
    """Greedy non-maximum suppression over rows of [x, y, w, h, 10 landmarks, score]."""
    if len(rows) == 0:
        return rows
    rows = rows[np.argsort(-rows[:, 14])]
    ious = iou_matrix(rows[:, :4], rows[:, :4])
    keep: list[int] = []
    suppressed = np.zeros(len(rows), bool)
    for i in range(len(rows)):
        if suppressed[i]:
            continue
        keep.append(i)
        suppressed |= ious[i] > iou
    return rows[keep]


_X = [0, 4, 6, 8, 10, 12]  # columns of YuNet rows holding x coordinates (2, 3 are w, h)
_Y = [1, 5, 7, 9, 11, 13]


def _shift(rows: np.ndarray, dx: float, dy: float) -> None:
    rows[:, _X] += dx
    rows[:, _Y] += dy


def _tiles(length: int, tile: int) -> list[int]:
    """Start offsets of overlapping windows of ``tile`` covering ``length``."""
    if length <= tile:
        return [0]
    n = int(np.ceil((length - tile) / (tile * 0.75))) + 1
    return [int(round(i * (length - tile) / (n - 1))) for i in range(n)]


#: Box side (pixels, at the scale YuNet runs) below which YuNet's scores fall under 0.85 (measured).
YUNET_SMALLEST_FACE = 20.0


class YuNetDetector:
    """YuNet through ``cv2.FaceDetectorYN`` (BGR 0-255 input)."""

    model_id = "yunet-2023mar-int8bq"

    def __init__(self, settings: DetectorSettings | None = None) -> None:
        self.settings = settings or DetectorSettings()
        path = verified_path(self.model_id)
        with quiet_opencv():  # OpenCV 5 warns that its new graph engine ignores the (default) target
            self._net = cv2.FaceDetectorYN.create(str(path), "", (320, 320), self.settings.score_threshold, self.settings.nms_iou, 5000)
        self._lock = threading.Lock()

    def _run(self, bgr: np.ndarray) -> np.ndarray:
        h, w = bgr.shape[:2]
        with self._lock:
            self._net.setInputSize((w, h))
            _, faces = self._net.detect(bgr)
        return np.zeros((0, 15), np.float32) if faces is None else faces.astype(np.float32)

    def _pass(self, bgr: np.ndarray, scale: float) -> np.ndarray:
        """Detect on the image resized by ``scale``; rows in original coordinates."""
        h, w = bgr.shape[:2]
        if scale != 1.0:
            interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
            bgr = cv2.resize(bgr, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=interp)
        rows = self._run(bgr)
        rows[:, :14] /= scale
        return rows

    def _tiled_pass(self, bgr: np.ndarray, scale: float) -> np.ndarray:
        tile = int(self.settings.max_side / scale)  # tile size in original pixels
        h, w = bgr.shape[:2]
        out = []
        for y0 in _tiles(h, tile):
            for x0 in _tiles(w, tile):
                rows = self._pass(bgr[y0 : y0 + tile, x0 : x0 + tile], scale)
                _shift(rows, x0, y0)
                out.append(rows)
        return np.concatenate(out) if out else np.zeros((0, 15), np.float32)

    def _framed_pass(self, bgr: np.ndarray) -> np.ndarray:
        """For images where a face may fill the frame: add a border, upscale, detect."""
        h, w = bgr.shape[:2]
        pad = max(h, w) // 2
        framed = cv2.copyMakeBorder(bgr, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=(0, 0, 0))
        scale = max(1.0, self.settings.min_side * 2 / max(framed.shape[:2]))
        scale = min(scale, self.settings.max_side / max(framed.shape[:2]))
        rows = self._pass(framed, scale)
        _shift(rows, -pad, -pad)
        return rows

    def detect(self, image: Image) -> list[Detection]:
        s = self.settings
        rgb = image.pixels
        if rgb.shape[0] < 2 or rgb.shape[1] < 2:
            return []
        bgr = np.ascontiguousarray(rgb[:, :, ::-1])
        h, w = bgr.shape[:2]
        long_side, short_side = max(h, w), min(h, w)
        if short_side < s.min_side:
            base = min(s.min_side / short_side, s.max_side / long_side)
        else:
            base = min(1.0, s.max_side / long_side)
        passes = [self._pass(bgr, base)]
        fine = min(1.0, YUNET_SMALLEST_FACE / s.small_face)
        if base < fine * 0.9:
            # the photo is much larger than the working size: faces of `small_face` pixels
            # shrank below what YuNet sees, so look again over tiles at a finer scale.  That
            # pass only answers for faces too small for the first one (with some overlap);
            # larger boxes from it are duplicates or parts of big faces cut by tile edges.
            rows = self._tiled_pass(bgr, fine)
            passes.append(rows[np.minimum(rows[:, 2], rows[:, 3]) < 1.5 * YUNET_SMALLEST_FACE / base])
        rows = np.concatenate(passes)
        if len(rows) == 0 and long_side < 4 * s.max_side:
            rows = self._framed_pass(bgr)
        rows = rows[rows[:, 14] >= s.score_threshold]
        rows = nms(rows, s.nms_iou)
        return [self._to_detection(r, w, h) for r in rows if min(r[2], r[3]) >= s.min_face]

    def _to_detection(self, r: np.ndarray, w: int, h: int) -> Detection:
        x0, y0 = max(0.0, float(r[0])), max(0.0, float(r[1]))
        x1, y1 = min(float(w), float(r[0] + r[2])), min(float(h), float(r[1] + r[3]))
        return Detection(
            box=(x0, y0, max(0.0, x1 - x0), max(0.0, y1 - y0)),
            landmarks=r[4:14].reshape(5, 2).copy(),
            score=float(r[14]),
            detector=self.model_id,
        )
