"""Plain data passed between the stages.  Frozen dataclasses, NumPy inside."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from faceprint.forensics.synthetic import SyntheticCheck
    from faceprint.liveness.pad import Liveness
    from faceprint.quality.model import Quality


@dataclass(frozen=True)
class Image:
    """A decoded picture: RGB uint8 pixels (H, W, 3) plus where it came from."""

    pixels: np.ndarray
    source: str = "<array>"
    format: str | None = None  # e.g. "JPEG", "PNG", "HEIF"
    original_mode: str | None = None  # Pillow mode before normalisation, e.g. "CMYK", "I;16"
    exif_orientation: int | None = None  # EXIF orientation tag that was applied (1..8)
    frames: int = 1  # number of frames in the file (first one is used)

    @property
    def height(self) -> int:
        return int(self.pixels.shape[0])

    @property
    def width(self) -> int:
        return int(self.pixels.shape[1])

    @property
    def size(self) -> tuple[int, int]:
        """(width, height), as Pillow reports it."""
        return self.width, self.height


@dataclass(frozen=True)
class Detection:
    """One face: box (x, y, w, h) in image pixels, 5 landmarks, detector score.

    Landmarks are in the ArcFace order, as the viewer sees the image:
    eye on the left of the image, eye on the right, nose tip, left mouth
    corner, right mouth corner.  Shape (5, 2), float32, (x, y).
    """

    box: tuple[float, float, float, float]
    landmarks: np.ndarray
    score: float
    detector: str = ""

    @property
    def area(self) -> float:
        return float(self.box[2] * self.box[3])

    @property
    def center(self) -> tuple[float, float]:
        x, y, w, h = self.box
        return x + w / 2.0, y + h / 2.0

    @property
    def interocular(self) -> float:
        """Distance between the eye centres in pixels."""
        return float(np.linalg.norm(self.landmarks[1] - self.landmarks[0]))

    def to_dict(self) -> dict[str, Any]:
        x, y, w, h = self.box
        return {
            "box": {"x": round(float(x), 1), "y": round(float(y), 1), "w": round(float(w), 1), "h": round(float(h), 1)},
            "landmarks": [[round(float(a), 1), round(float(b), 1)] for a, b in self.landmarks],
            "score": round(float(self.score), 4),
            "detector": self.detector,
        }


@dataclass(frozen=True)
class FaceCrop:
    """An aligned face, ready for an embedder: RGB uint8 (size, size, 3)."""

    pixels: np.ndarray
    detection: Detection
    transform: np.ndarray  # 2x3 affine matrix image -> crop


@dataclass(frozen=True)
class Template:
    """A unit-length identity vector and the model that made it.

    Templates of different ``model_id`` never compare.
    """

    vector: np.ndarray
    model_id: str
    detection: Detection | None = None
    source: str = ""
    quality: Quality | None = None
    liveness: Liveness | None = None  # presentation-attack check, when it was asked for
    synthetic: SyntheticCheck | None = None  # synthetic-face check, when it was asked for

    def to_dict(self, *, with_vector: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {"model_id": self.model_id, "source": self.source, "dim": int(self.vector.size)}
        if self.detection is not None:
            out["face"] = self.detection.to_dict()
        if self.quality is not None:
            out["quality"] = self.quality.to_dict()
        if self.liveness is not None:
            out["liveness"] = self.liveness.to_dict()
        if self.synthetic is not None:
            out["synthetic"] = self.synthetic.to_dict()
        if with_vector:
            out["vector"] = [round(float(v), 7) for v in self.vector]
        return out


@dataclass(frozen=True)
class Decision:
    """A 1:1 verification decision, always with the threshold and FMR it stands for."""

    score: float
    threshold: float
    fmr: float  # the false-match rate the threshold was chosen for
    score_fmr: float  # the FMR at which this score would just pass (how surprising it is for an impostor)
    match: bool
    model_id: str
    calibration: str = ""  # name of the calibration table used

    def to_dict(self) -> dict[str, Any]:
        return {
            "match": self.match,
            "score": round(self.score, 6),
            "threshold": round(self.threshold, 6),
            "fmr": self.fmr,
            "score_fmr": self.score_fmr,
            "model_id": self.model_id,
            "calibration": self.calibration,
        }


@dataclass
class FaceResult:
    """One face of one image with whatever a caller learnt about it: its detection, its
    template when one was made, and free-form ``extras``.  A container for callers' own
    pipelines: nothing in faceprint produces it (there is no ``Engine.analyze``); the engine
    answers with a :class:`Template`, which carries its detection, quality and checks."""

    detection: Detection
    template: Template | None = None
    extras: dict[str, Any] = field(default_factory=dict)
