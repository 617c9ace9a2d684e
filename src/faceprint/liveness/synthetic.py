"""Synthetic-face check: was this face generated (GAN / diffusion) rather than photographed?

Features of the *aligned* face (the ArcFace similarity transform, scaled to ``CROP`` pixels),
after a normalisation that removes what the file's history alone would give away: every face
is resampled onto the same crop size (so 1024-px generator output and a 250-px news photo
arrive at one resolution), blurred slightly and re-encoded as JPEG at one quality (so a PNG
and a many-times-recompressed JPEG arrive with the same compression).  Then:

- the spectrum of the high-pass residual (up-sampling layers of generators leave periodic
  traces and a too-regular high-frequency fall-off; Durall et al. 2020), azimuthally averaged;
- the cross-channel correlation of the colour noise residual (camera demosaicing correlates
  the channels' noise in a way generator output does not reproduce);
- LBP texture of the luma and of the residual; colour saturation and chroma moments
  (McCloskey & Albright 2019: generators rarely saturate or clip the way sensors do).

A logistic model over these gives the synthetic logit; ``score = sigmoid(logit)`` (0-1,
higher = more likely synthetic), ``synthetic`` is ``score >= threshold``.  The model ships as
``synthetic-v1.json`` (trained by ``faceprint train-synthetic`` on the shared StyleGAN3 and
generated.photos sets against lfw-dev and sample photos).

The *identity-aware* check (:func:`identity_consistency`) needs no generator at all: how well a
new face agrees with an enrolled person's authentic references, as a z-score of its best
similarity against the spread of the references' similarities among themselves.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from faceprint.alignment import ARCFACE_TEMPLATE, align
from faceprint.errors import InputError, ModelError
from faceprint.liveness.features import lbp_histogram
from faceprint.types import Detection, Image

__all__ = ["MODEL_PATH", "SYNTHETIC_NAMES", "IdentityConsistency", "SyntheticCheck", "SyntheticModel", "identity_consistency", "load_synthetic_model",
           "normalised_crop", "synthetic_features", "synthetic_set_features", "train"]

MODEL_PATH = Path(__file__).with_name("synthetic-v1.json")
CROP = 112
JPEG_QUALITY = 75
BLUR_SIGMA = 0.6
RADIAL_BINS = 20


def normalised_crop(image: Image, det: Detection) -> np.ndarray:
    """The aligned face at ``CROP`` px, blurred and JPEG re-encoded at one quality (RGB uint8).
    A face larger than the crop is first shrunk with area averaging (a plain warp would alias
    differently for every source resolution)."""
    target = float(np.linalg.norm(ARCFACE_TEMPLATE[1] - ARCFACE_TEMPLATE[0])) * CROP / 112.0
    s = target / max(det.interocular, 1e-3)
    if s < 1.0:
        x, y, w, h = det.box
        side = 1.6 * max(w, h)
        x0, y0 = int(max(0, x + w / 2 - side)), int(max(0, y + h / 2 - side))
        x1, y1 = int(min(image.width, x + w / 2 + side)), int(min(image.height, y + h / 2 + side))
        region = image.pixels[y0:y1, x0:x1]
        small = cv2.resize(region, (max(1, round(region.shape[1] * s)), max(1, round(region.shape[0] * s))), interpolation=cv2.INTER_AREA)
        lm = (det.landmarks.astype(np.float64) - (x0, y0)) * s
        image = Image(pixels=small, source=image.source)
        det = Detection(box=(0.0, 0.0, float(small.shape[1]), float(small.shape[0])), landmarks=lm.astype(np.float32), score=det.score)
    crop = align(image, det, CROP).pixels
    crop = cv2.GaussianBlur(crop, (0, 0), BLUR_SIGMA)
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(crop, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:  # pragma: no cover - OpenCV always encodes a uint8 RGB array
        raise InputError("cannot JPEG-encode the face crop")
    return cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def _residual(ch: np.ndarray) -> np.ndarray:
    c = ch.astype(np.float32)
    return c - cv2.medianBlur(ch, 3).astype(np.float32)


def _radial(res: np.ndarray) -> list[float]:
    n = res.shape[0]
    win = np.outer(np.hanning(n), np.hanning(n))
    p = np.abs(np.fft.fftshift(np.fft.fft2((res - res.mean()) * win))) ** 2
    yy, xx = np.mgrid[0:n, 0:n]
    rr = np.hypot(yy - n / 2, xx - n / 2) / (n / 2)
    edges = np.linspace(0.05, 1.0, RADIAL_BINS + 1)
    prof = np.array([p[(rr > a) & (rr <= b)].mean() for a, b in zip(edges[:-1], edges[1:])]) + 1e-9
    prof = np.log10(prof)
    return (prof - prof.mean()).tolist()


SYNTHETIC_NAMES: tuple[str, ...] = (
    tuple(f"res_spec_{i}" for i in range(RADIAL_BINS))
    + ("corr_rg", "corr_gb", "corr_rb", "res_energy", "res_kurtosis")
    + tuple(f"lbp_y_{i}" for i in range(59))
    + tuple(f"lbp_res_{i}" for i in range(59))
    + ("sat_mean", "sat_std", "sat_p99", "clip_high", "clip_low", "cr_std", "cb_std", "cr_cb_corr")
)


def synthetic_features(image: Image, det: Detection) -> np.ndarray:
    """The feature vector of one face (order: ``SYNTHETIC_NAMES``)."""
    rgb = normalised_crop(image, det)
    m = 8  # leave out the crop's border (the warp fills it)
    inner = rgb[m:-m, m:-m]
    ycc = cv2.cvtColor(inner, cv2.COLOR_RGB2YCrCb)
    y = ycc[..., 0]
    res_y = _residual(y)
    out: list[float] = _radial(res_y)
    res = [_residual(np.ascontiguousarray(inner[..., i])).ravel() for i in range(3)]

    def corr(a: np.ndarray, b: np.ndarray) -> float:
        sa, sb = a.std(), b.std()
        return float(np.mean((a - a.mean()) * (b - b.mean())) / (sa * sb)) if sa > 1e-6 and sb > 1e-6 else 0.0

    e = float(res_y.std())
    kurt = float(np.mean((res_y - res_y.mean()) ** 4) / (e ** 4 + 1e-9))
    out += [corr(res[0], res[1]), corr(res[1], res[2]), corr(res[0], res[2]), math.log10(e + 1e-3), math.log10(kurt + 1e-3)]
    out += lbp_histogram(y).tolist()
    rq = np.clip(res_y * 8 + 128, 0, 255).astype(np.uint8)
    out += lbp_histogram(rq).tolist()
    hsv = cv2.cvtColor(inner, cv2.COLOR_RGB2HSV)
    s = hsv[..., 1].astype(np.float64) / 255.0
    v = hsv[..., 2]
    cr, cb = ycc[..., 1].astype(np.float64), ycc[..., 2].astype(np.float64)
    out += [float(s.mean()), float(s.std()), float(np.quantile(s, 0.99)), float(np.mean(v >= 250)), float(np.mean(v <= 5)),
            float(cr.std() / 255.0), float(cb.std() / 255.0), corr(cr.ravel(), cb.ravel())]
    return np.asarray(out, np.float64)


@dataclass(frozen=True)
class SyntheticCheck:
    synthetic: bool
    score: float  # 0-1, higher = more likely synthetic
    threshold: float
    model: str
    evidence: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"synthetic": self.synthetic, "score": round(self.score, 4), "threshold": self.threshold, "model": self.model, "evidence": list(self.evidence)}


def _cue(name: str) -> str:
    if name.startswith("res_spec"):
        return "spectrum of the fine detail"
    if name.startswith("corr_") or name.startswith("res_"):
        return "colour noise unlike a camera's"
    if name.startswith("lbp_"):
        return "micro-texture"
    return "colour saturation"


class SyntheticModel:
    def __init__(self, data: dict[str, Any], source: str = "") -> None:
        try:
            self.version = str(data["version"])
            self.threshold = float(data["threshold"])
            self.mean = np.asarray(data["mean"], float)
            self.scale = np.asarray(data["scale"], float)
            self.coef = np.asarray(data["coef"], float)
            self.intercept = float(data["intercept"])
            self.meta = data.get("training", {})
            if self.coef.size != len(SYNTHETIC_NAMES) or self.mean.size != self.coef.size or self.scale.size != self.coef.size:
                raise ValueError(f"{self.coef.size} weights; this faceprint measures {len(SYNTHETIC_NAMES)} features")
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelError(f"not a faceprint synthetic-face model: {exc}", source=source) from None

    def logit(self, x: np.ndarray) -> float:
        return float(((x - self.mean) / self.scale) @ self.coef + self.intercept)

    def score_features(self, x: np.ndarray) -> float:
        z = max(min(self.logit(x), 60.0), -60.0)
        return 1.0 / (1.0 + math.exp(-z))

    def assess(self, image: Image, det: Detection, *, threshold: float | None = None) -> SyntheticCheck:
        return self.assess_features(synthetic_features(image, det), threshold=threshold)

    def assess_features(self, x: np.ndarray, *, threshold: float | None = None) -> SyntheticCheck:
        thr = self.threshold if threshold is None else float(threshold)
        score = self.score_features(x)
        evidence = []
        if score >= thr:
            contrib = ((x - self.mean) / self.scale) * self.coef
            kinds = sorted({_cue(SYNTHETIC_NAMES[i]) for i in np.argsort(-contrib)[:3] if contrib[i] > 0})
            evidence.append(f"looks generated: {', '.join(kinds)}" if kinds else "looks generated")
        return SyntheticCheck(synthetic=bool(score >= thr), score=score, threshold=thr, model=self.version, evidence=evidence)


def load_synthetic_model(path: str | Path | None = None) -> SyntheticModel:
    p = Path(path) if path else MODEL_PATH
    try:
        data = json.loads(p.read_text())
    except FileNotFoundError:
        raise ModelError("synthetic-face model file not found", source=str(p)) from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelError(f"synthetic-face model is not JSON: {exc}", source=str(p)) from None
    if not isinstance(data, dict):
        raise ModelError("not a faceprint synthetic-face model: top level is not an object", source=str(p))
    return SyntheticModel(data, source=str(p))


def fit(x: np.ndarray, y: np.ndarray, *, c: float = 0.1, version: str = "synthetic-custom") -> dict[str, Any]:
    """A model dict from features ``x`` and labels ``y`` (1 = synthetic)."""
    from faceprint.liveness.pad import _standardise, fit_logistic

    mean, scale = _standardise(x)
    coef, b = fit_logistic((x - mean) / scale, y, c)
    return {"version": version, "threshold": 0.5, "mean": mean.tolist(), "scale": scale.tolist(), "coef": coef.tolist(), "intercept": b}


def train(features: np.ndarray, synthetic: Sequence[bool], *, c: float = 0.1, version: str = "synthetic-custom", folds: int = 5,
          progress: Callable[[int], None] | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    """Fit on everything; measure by ``folds``-fold cross-validation over files (each file in
    exactly one test fold, folds stratified by class, deterministic).  Returns (model, evaluation)."""
    from faceprint.evaluation.pad import auc

    y = np.asarray(synthetic, int)
    if (y == 1).sum() < folds or (y == 0).sum() < folds:
        raise InputError(f"{int((y == 1).sum())} synthetic and {int((y == 0).sum())} real faces: at least {folds} of each are needed")
    fold = np.empty(len(y), int)
    for cls in (0, 1):
        idx = np.flatnonzero(y == cls)
        fold[idx] = np.arange(idx.size) % folds
    oof = np.zeros(len(y))
    for k in range(folds):
        m = SyntheticModel(fit(features[fold != k], y[fold != k], c=c, version="fold"))
        oof[fold == k] = [m.score_features(x) for x in features[fold == k]]
        if progress:
            progress(1)
    model = fit(features, y, c=c, version=version)
    ev = {"auc": auc(oof[y == 1], oof[y == 0]), "accuracy": float(np.mean((oof >= 0.5) == (y == 1))), "synthetic": int(y.sum()), "real": int((y == 0).sum()), "folds": folds}
    model["training"] = {**ev, "c": c}
    return model, ev


@dataclass(frozen=True)
class IdentityConsistency:
    """How a new face agrees with an enrolled person's authentic references."""

    best: float  # highest cosine similarity to a reference
    mean: float  # mean cosine similarity to the references
    reference_mean: float  # mean similarity among the references themselves (leave-one-out best)
    reference_std: float
    z: float  # (best - reference_mean) / reference_std: how far below the references' own agreement
    outlier: bool
    references: int

    def to_dict(self) -> dict[str, Any]:
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in self.__dict__.items()}


def identity_consistency(vector: np.ndarray, references: np.ndarray, *, z_threshold: float = -3.0, min_std: float = 0.05) -> IdentityConsistency:
    """Outlier score of a new face against a person's references (unit vectors, one model).

    Each reference's best similarity to the *other* references shows how well authentic
    photos of this person agree; the new face's best similarity is placed on that
    distribution as a z-score (``min_std`` floors the spread for small, tight sets).  A face
    far below (``z < z_threshold``) is inconsistent with the person: a different person, or
    a generated face made to resemble them."""
    refs = np.asarray(references, np.float64)
    if refs.ndim != 2 or refs.shape[0] < 2:
        raise InputError("the identity-aware check needs at least two reference templates of the person")
    sims = refs @ np.asarray(vector, np.float64)
    gram = refs @ refs.T
    np.fill_diagonal(gram, -np.inf)
    loo = gram.max(1)
    mu, sd = float(loo.mean()), max(float(loo.std()), min_std)
    z = (float(sims.max()) - mu) / sd
    return IdentityConsistency(best=float(sims.max()), mean=float(sims.mean()), reference_mean=mu, reference_std=sd, z=z, outlier=bool(z < z_threshold), references=int(refs.shape[0]))


def synthetic_set_features(engine: Any, paths: Sequence[Path | str], *, progress: Callable[[int], None] | None = None) -> tuple[np.ndarray, list[bool], list[tuple[str, str]]]:
    """Features of the largest face of each image: (features of those with a face, a
    has-face flag per path, (path, error) of the others)."""
    from faceprint.engine import select_face
    from faceprint.errors import FaceprintError

    rows, ok, failed = [], [], []
    for i, p in enumerate(paths):
        try:
            image = engine.load(p)
            rows.append(synthetic_features(image, select_face(engine.detector.detect(image), image, "largest")))
            ok.append(True)
        except FaceprintError as exc:
            ok.append(False)
            failed.append((str(p), str(exc)))
        if progress:
            progress(1)
    return (np.vstack(rows) if rows else np.zeros((0, len(SYNTHETIC_NAMES)))), ok, failed
