"""The unified quality score: a small gradient-boosted tree model over the component measures.

The model predicts a face's *usefulness for recognition* -- the mean cosine
similarity its template would have to other, clean images of the same person --
from the raw component measures and the face's normalised landmarks.  It is
trained by ``scripts/train_quality.py`` on lfw-dev and degraded copies of it
(:mod:`faceprint.quality.degrade`) and shipped as ``model-v1.json`` (trees in a
compact heap layout, evaluated here with NumPy: no learning library at run time).

``unified`` is that prediction mapped linearly onto 0-100 between two anchors
recorded in the file (the prediction for unrecognisable faces -> 0, for the
best captures -> 100).

Two tree sets are shipped: one that also reads *recognizability* (the template's
distance from the centre of unrecognisable faces; valid only for the embedding
model it was computed with, named in the file) and one without it, used for
templates of any other model or when no template is at hand.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from faceprint.errors import ModelError
from faceprint.models.jsonmodel import floats, model_fields, read_model_json
from faceprint.quality.components import Component, measure
from faceprint.types import Detection, FaceCrop

__all__ = ["MODEL_PATH", "Quality", "QualityModel", "Trees", "feature_vector", "load_model"]

MODEL_PATH = Path(__file__).with_name("model-v1.json")
BASE_FEATURES = ("log_interocular", "log_face_size", "abs_yaw", "abs_pitch", "abs_roll", "log_sharpness", "exposure", "clipping", "contrast", "detector")
LANDMARK_FEATURES = tuple(f"lm{i}_{a}" for i in range(5) for a in "xy")


@dataclass(frozen=True)
class Quality:
    """The quality of one face: the unified 0-100 score and every component."""

    unified: int
    components: dict[str, Component]
    model: str  # the quality model's version

    def to_dict(self) -> dict[str, Any]:
        return {"unified": self.unified, "model": self.model, "components": {k: c.to_dict() for k, c in self.components.items()}}

    def score(self, name: str) -> int | None:
        return self.unified if name == "unified" else self.components[name].score


def feature_vector(components: dict[str, Component], det: Detection, *, recognizability: bool) -> np.ndarray:
    """The model's input for one face (order: BASE_FEATURES, landmarks, then recognizability)."""
    c = components

    def raw(name: str) -> float:
        v = c[name].raw
        return float("nan") if v is None else float(v)

    x, y, w, h = det.box
    lm = ((det.landmarks.astype(np.float64) - (x, y)) / (max(w, 1.0), max(h, 1.0))).ravel()
    base = [
        math.log(max(raw("interocular"), 1e-3)),
        math.log(max(raw("face_size"), 1e-3)),
        abs(raw("yaw")),
        abs(raw("pitch")),
        abs(raw("roll")),
        math.log10(max(raw("sharpness"), 1e-3)),
        raw("exposure"),
        raw("clipping"),
        raw("contrast"),
        raw("detector"),
    ]
    out = base + lm.tolist()
    if recognizability:
        out.append(raw("recognizability"))
    return np.asarray(out, np.float64)


class Trees:
    """Gradient-boosted regression trees of one depth in heap layout: internal node i has
    children 2i+1 and 2i+2; a sample goes left when ``x[feature] <= threshold``."""

    def __init__(self, d: dict[str, Any]) -> None:
        with model_fields("quality model trees are malformed"):
            self.depth = int(d["depth"])
            self.base = float(d["base"])
            self.rate = float(d["learning_rate"])
            self.feature = np.asarray(d["feature"], np.int64)  # (trees, 2^depth - 1)
            self.threshold = floats(d["threshold"])
            self.leaf = floats(d["leaf"])  # (trees, 2^depth)
            self.n_features = int(d["n_features"])
        n_int = 2**self.depth - 1
        if (
            self.feature.ndim != 2
            or self.feature.shape[1] != n_int
            or self.threshold.shape != self.feature.shape
            or self.leaf.shape != (len(self.feature), n_int + 1)
        ):
            raise ModelError("quality model trees have inconsistent shapes")
        self._rows = np.arange(len(self.feature))

    def predict(self, X: np.ndarray) -> np.ndarray:
        X = np.atleast_2d(np.asarray(X, np.float64))
        if X.shape[1] != self.n_features:
            raise ModelError(f"quality model expects {self.n_features} features, got {X.shape[1]}")
        out = np.empty(len(X))
        for i, x in enumerate(X):
            node = np.zeros(len(self.feature), np.int64)
            for _ in range(self.depth):
                go_right = x[self.feature[self._rows, node]] > self.threshold[self._rows, node]
                node = 2 * node + 1 + go_right
            out[i] = self.base + self.rate * float(self.leaf[self._rows, node - (2**self.depth - 1)].sum())
        return out


class QualityModel:
    """Scores faces: component measures plus the unified score (see the module docstring)."""

    def __init__(self, data: dict[str, Any], source: str = "") -> None:
        with model_fields("quality model file is malformed", source):
            self.version = str(data["version"])
            self.embedder = str(data["embedder"])  # the template model recognizability is valid for
            self.ui_centre = np.asarray(data["ui_centre"], np.float32)
            lo, hi = data["recognizability_range"]
            self.recognizability_range = (float(lo), float(hi))
            s_lo, s_hi = data["unified_anchors"]
            self.anchors = (float(s_lo), float(s_hi))
            self.with_rec = Trees(data["final"]["with_recognizability"])
            self.without_rec = Trees(data["final"]["without_recognizability"])
            self.folds = {int(k): Trees(v) for k, v in data.get("folds", {}).items()}
            self.info = {k: data[k] for k in ("trained_on", "created", "target", "metrics") if k in data}
        self.ui_centre = self.ui_centre / max(float(np.linalg.norm(self.ui_centre)), 1e-12)

    @classmethod
    def load(cls, path: str | Path = MODEL_PATH) -> QualityModel:
        return cls(read_model_json(path, "quality"), source=str(path))

    def recognizability(self, vector: np.ndarray | None, model_id: str | None) -> float | None:
        """1 - cosine of the template to the centre of unrecognisable faces (None when the
        template is missing or of another model)."""
        if vector is None or model_id != self.embedder or vector.shape != self.ui_centre.shape:
            return None
        return float(1.0 - np.dot(vector.astype(np.float32), self.ui_centre))

    def to_unified(self, prediction: float) -> int:
        lo, hi = self.anchors
        return round(100.0 * min(1.0, max(0.0, (prediction - lo) / (hi - lo))))

    def assess(
        self,
        image_size: tuple[int, int],
        det: Detection,
        crop: FaceCrop,
        *,
        vector: np.ndarray | None = None,
        model_id: str | None = None,
        trees: Trees | None = None,
    ) -> Quality:
        """The quality of one detected, aligned (and optionally embedded) face.  ``trees``
        overrides the shipped final trees (the benchmark's held-out fold models)."""
        rec = self.recognizability(vector, model_id)
        comps = measure(image_size, det, crop, recognizability=rec, recognizability_range=self.recognizability_range)
        use = trees or (self.with_rec if rec is not None else self.without_rec)
        x = feature_vector(comps, det, recognizability=use.n_features == len(BASE_FEATURES) + len(LANDMARK_FEATURES) + 1)
        pred = float(use.predict(x[None])[0])
        return Quality(self.to_unified(pred), comps, self.version)


@lru_cache(maxsize=4)
def load_model(path: str | None = None) -> QualityModel:
    """The quality model (the shipped one unless ``path``), loaded once per process."""
    return QualityModel.load(path or MODEL_PATH)
