"""dlib backend (the optional extra ``faceprint[dlib]``).

dlib's HOG + linear-SVM frontal face detector, its 5-point landmark
predictor and its ResNet-29 face embedder, behind the same ``Detector`` /
``Embedder`` interfaces as YuNet and SFace, so any detector can feed either
embedder.  dlib is imported only when one of these classes is constructed:
importing this module never needs dlib, constructing a class without it
raises ``ModelError`` with the pip command to run.

The 5-point predictor (``shape_predictor_5_face_landmarks.dat``) gives,
as checked on LFW images (x grows to the right of the image):

    0: outer corner of the eye on the RIGHT of the image
    1: inner corner of the eye on the RIGHT of the image
    2: outer corner of the eye on the LEFT of the image
    3: inner corner of the eye on the LEFT of the image
    4: base of the nose (below the tip, between the nostrils)

``Detection`` wants the ArcFace order (eye left-in-image, eye right-in-image,
nose tip, mouth left, mouth right).  The eye centres are the means of their
two corners and the nose is point 4 — the nose *base*, about 0.2 interocular
distances below the tip ArcFace uses.  dlib's 5-point model has no mouth
points, so the mouth corners are *estimated*: a similarity transform is
fitted from the ArcFace template's two eyes plus the nose base's position in
template coordinates (``NOSE_BASE_IN_TEMPLATE``) to (eye, eye, nose base),
and the template's two mouth points (``ARCFACE_TEMPLATE[3:]``) are mapped back
into the image.  Fitting to the template's nose *tip* instead puts the mouth
corners 0.28 interocular distances from YuNet's on LFW (median); the
nose-base point brings that to 0.19.  The estimates follow the face's
position, scale and roll, not its expression or yaw: good enough to align a
dlib-hog detection onto the ArcFace template, not for measuring the mouth.

The ResNet embedder does not use those landmarks: it reruns the 5-point
predictor on the detection box (~1 ms), so it accepts boxes from any
detector, and cuts dlib's own 150x150 chip (``dlib.get_face_chip``, padding
0.25), the alignment its network was trained on.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import numpy as np

from faceprint.alignment import ARCFACE_TEMPLATE, similarity_transform
from faceprint.embedding import l2_normalise
from faceprint.errors import InputError, ModelError
from faceprint.models.registry import verified_path
from faceprint.types import Detection, FaceCrop, Image

_INSTALL_HINT = "the dlib backend needs the extra: pip install 'faceprint[dlib]' (dlib-bin, face_recognition_models)"

#: dlib 5-point indices: (outer, inner) corner of the eye on the left of the image, then on the right, then nose base.
EYE_LEFT_IN_IMAGE = (2, 3)
EYE_RIGHT_IN_IMAGE = (0, 1)
NOSE_BASE = 4

#: Where dlib's nose base (point 4) falls in the 112x112 ArcFace template (x, y): median over 135 LFW
#: faces of point 4 mapped through the eyes-only similarity onto the template (the nose tip is at
#: (56.0, 71.7)).  Used with the template's eyes to estimate the mouth corners.
NOSE_BASE_IN_TEMPLATE = (55.82, 76.36)
_FIT_TEMPLATE = np.vstack([ARCFACE_TEMPLATE[:2], np.array([NOSE_BASE_IN_TEMPLATE])])


def _import_dlib() -> Any:
    try:
        import dlib
    except ImportError as exc:
        raise ModelError(_INSTALL_HINT) from exc
    return dlib


def _shape_predictor(dlib: Any) -> Any:
    path = verified_path("dlib-5pt")
    if path is None:  # pragma: no cover — the registry entry has a file
        raise ModelError("model 'dlib-5pt' has no file")
    return dlib.shape_predictor(str(path))


def _rgb(image: Image) -> np.ndarray:
    px = image.pixels
    if px.dtype != np.uint8 or px.ndim != 3 or px.shape[2] != 3:
        px = np.asarray(px, np.uint8)
        if px.ndim == 2:
            px = np.repeat(px[:, :, None], 3, axis=2)
        px = px[:, :, :3]
    return np.ascontiguousarray(px)


def shape_points(shape: Any) -> np.ndarray:
    """The parts of a dlib ``full_object_detection`` as an (n, 2) float32 array (x, y)."""
    return np.array([(shape.part(i).x, shape.part(i).y) for i in range(shape.num_parts)], np.float32)


def arcface_landmarks(points5: np.ndarray) -> np.ndarray:
    """dlib 5-point landmarks -> the 5 ArcFace-order landmarks of ``Detection`` (mouth corners estimated)."""
    p = np.asarray(points5, np.float64)
    eye_l = p[list(EYE_LEFT_IN_IMAGE)].mean(0)
    eye_r = p[list(EYE_RIGHT_IN_IMAGE)].mean(0)
    nose = p[NOSE_BASE]
    known = np.stack([eye_l, eye_r, nose])
    m = similarity_transform(_FIT_TEMPLATE, known)  # template -> image
    mouth = ARCFACE_TEMPLATE[3:] @ m[:, :2].T + m[:, 2]
    return np.vstack([known, mouth]).astype(np.float32)


def chip_transform(details: Any) -> np.ndarray:
    """2x3 affine (image -> chip) equivalent to ``dlib.extract_image_chip`` for a ``chip_details``.

    dlib maps the corners of ``details.rect``, rotated about its centre by
    ``details.angle``, onto the chip corners (0, 0), (cols-1, 0),
    (cols-1, rows-1).  ``cv2.warpAffine(rgb, M, (cols, rows))`` reproduces the
    chip to within interpolation (~0.5 grey levels mean absolute difference).
    """
    r = details.rect
    left, top, right, bottom = r.left(), r.top(), r.right(), r.bottom()
    centre = np.array([(left + right) / 2.0, (top + bottom) / 2.0])
    a = float(details.angle)
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    src = (np.array([[left, top], [right, top], [right, bottom]], np.float64) - centre) @ rot.T + centre
    dst = np.array([[0, 0], [details.cols - 1, 0], [details.cols - 1, details.rows - 1]], np.float64)
    return similarity_transform(src, dst)


def _rectangle(dlib: Any, box: tuple[float, float, float, float]) -> Any:
    x, y, w, h = (float(v) for v in box)
    left, top = int(round(x)), int(round(y))
    right = max(left, int(round(x + w)) - 1)
    bottom = max(top, int(round(y + h)) - 1)
    return dlib.rectangle(left, top, right, bottom)


class DlibHogDetector:
    """dlib HOG frontal face detector, landmarks from the dlib 5-point predictor.

    ``score`` is the raw SVM margin (about 0 to 3.5, not a probability);
    ``score_threshold`` is dlib's ``adjust_threshold`` (0 = dlib's default,
    negative finds more and worse faces).  ``upsample`` doubles the image that
    many times first: the detector's window is 80x80 px, so ``upsample=1``
    finds faces down to about 40 px, at about 4x the cost.
    """

    model_id = "dlib-hog"

    def __init__(self, upsample: int = 1, score_threshold: float = 0.0) -> None:
        if upsample < 0:
            raise InputError(f"upsample must be >= 0, got {upsample}")
        self._dlib = _import_dlib()
        self.upsample = int(upsample)
        self.score_threshold = float(score_threshold)
        self._detector = self._dlib.get_frontal_face_detector()
        self._predictor = _shape_predictor(self._dlib)
        self._lock = threading.Lock()

    def detect(self, image: Image) -> list[Detection]:
        rgb = _rgb(image)
        h, w = rgb.shape[:2]
        if h < 2 or w < 2:
            return []
        with self._lock:
            rects, scores, _ = self._detector.run(rgb, self.upsample, self.score_threshold)
            shapes = [self._predictor(rgb, r) for r in rects]
        out = []
        for rect, score, shape in zip(rects, scores, shapes):
            x0, y0 = max(0.0, float(rect.left())), max(0.0, float(rect.top()))
            x1, y1 = min(float(w), float(rect.right() + 1)), min(float(h), float(rect.bottom() + 1))
            if x1 <= x0 or y1 <= y0:
                continue
            out.append(
                Detection(
                    box=(x0, y0, x1 - x0, y1 - y0),
                    landmarks=arcface_landmarks(shape_points(shape)),
                    score=float(score),
                    detector=self.model_id,
                )
            )
        out.sort(key=lambda d: -d.score)
        return out


class DlibResNetEmbedder:
    """dlib ResNet-29 embedder (``dlib_face_recognition_resnet_model_v1``), 128-d, 150x150 dlib chips.

    ``crop`` reruns the 5-point predictor on the detection box (from any
    detector) and cuts ``dlib.get_face_chip(size=150, padding=0.25)``; the
    crop's ``transform`` is the exact image->chip affine derived from
    ``dlib.get_face_chip_details`` (see ``chip_transform``).  ``embed`` runs
    the whole batch through dlib's list-of-chips overload of
    ``compute_face_descriptor``.  With ``flip`` (default) each template is
    normalise(normalise(e) + normalise(e of the mirrored chip)), as in
    ``SFaceEmbedder``, and the model id gets ``+flip``.
    """

    base_id = "dlib-resnet-v1"
    dim = 128
    chip_size = 150
    chip_padding = 0.25
    batch_size = 64

    def __init__(self, flip: bool = True) -> None:
        self._dlib = _import_dlib()
        self.flip = flip
        self.model_id = self.base_id + ("+flip" if flip else "")
        path = verified_path(self.base_id)
        if path is None:  # pragma: no cover — the registry entry has a file
            raise ModelError(f"model {self.base_id!r} has no file")
        self._net = self._dlib.face_recognition_model_v1(str(path))
        self._predictor = _shape_predictor(self._dlib)
        self._lock = threading.Lock()

    def crop(self, image: Image, detection: Detection) -> FaceCrop:
        rgb = _rgb(image)
        rect = _rectangle(self._dlib, detection.box)
        with self._lock:
            shape = self._predictor(rgb, rect)
            chip = self._dlib.get_face_chip(rgb, shape, size=self.chip_size, padding=self.chip_padding)
            details = self._dlib.get_face_chip_details(shape, self.chip_size, self.chip_padding)
        return FaceCrop(pixels=np.ascontiguousarray(chip, np.uint8), detection=detection, transform=chip_transform(details))

    def _forward(self, chips: list[np.ndarray]) -> np.ndarray:
        with self._lock:
            vecs = self._net.compute_face_descriptor(chips)
        return np.array([np.asarray(v, np.float32) for v in vecs], np.float32).reshape(len(chips), self.dim)

    def embed(self, crops: Sequence[FaceCrop]) -> np.ndarray:
        if len(crops) == 0:
            return np.zeros((0, self.dim), np.float32)
        out = []
        for start in range(0, len(crops), self.batch_size):
            chips = [np.ascontiguousarray(c.pixels, np.uint8) for c in crops[start : start + self.batch_size]]
            for c in chips:
                if c.shape != (self.chip_size, self.chip_size, 3):
                    raise InputError(f"dlib ResNet needs {self.chip_size}x{self.chip_size} RGB chips from crop(), got {c.shape}")
            if self.flip:
                both = self._forward(chips + [np.ascontiguousarray(c[:, ::-1]) for c in chips])
                n = len(chips)
                out.append(l2_normalise(l2_normalise(both[:n]) + l2_normalise(both[n:])))
            else:
                out.append(l2_normalise(self._forward(chips)))
        return np.concatenate(out)
