"""Synthetic-face check: was this face generated (GAN / diffusion) rather than photographed?

Two detectors, fused by maximum (``score`` 0-1, higher = more likely generated; ``synthetic``
is ``score >= threshold``):

- ``layout``: where the face sits in the picture.  Generators trained on FFHQ-aligned faces
  (StyleGAN and the services built on it) put the eyes at almost the same image coordinates
  in every output (Mundra et al. 2023).  A Gaussian over the 5 landmarks and the eye distance,
  relative to the picture's size, fitted on generated faces, widened per picture by the
  landmark localisation error (``LANDMARK_NOISE_PX``, a larger share of a small picture); the
  score is 0.5 at the distance that ``LAYOUT_QUANTILE`` (:mod:`faceprint.forensics.training`) of
  them stay within.  Precise (real photos,
  cropped or not, almost never sit exactly there) and blind to a generated face that was
  cropped, padded or re-framed.
- ``texture``: the fine detail of the aligned face, after a normalisation that removes what
  the file's history alone would give away (resampled onto one crop size with area
  averaging, blurred slightly, re-encoded as JPEG at one quality): spectrum of the
  high-pass residual (Durall et al. 2020), cross-channel correlation of the colour noise,
  LBP of the luma and of the residual, saturation and chroma moments (McCloskey & Albright
  2019); a logistic model, shifted so that only ``TEXTURE_REAL_FLAG`` (training) of the training's real
  faces (scored out of fold) reach 0.5: it adds to the decision only where it is sure.  Measured honestly it tells generated faces from the *real photo
  sources it was trained against* far better than from real photos of other sources: see
  ``benchmarks/synthetic.py``.

The model ships as ``synthetic-v1.json`` (``faceprint train-synthetic``: the shared StyleGAN3
and generated.photos sets against lfw-dev, NUAA live frames and sample photos) with the
*layout detector only*: measured against a real-photo source it was not trained on, the
texture detector flagged 23-60% of the real faces (``benchmarks/synthetic.py``,
``real_source_held_out``) -- it had learned the training's real sources, not the generators.
Train ``--detectors layout,texture`` on your own real photos when your inputs come from the
same sources.

This module loads and scores (the model file is read by
:func:`faceprint.models.jsonmodel.read_model_json`); fitting and cross-validation are
:func:`faceprint.forensics.training.train_synthetic`.  The *identity-aware* check, which
needs no generator at all, is a gallery statistic: :mod:`faceprint.gallery.consistency`.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from faceprint.alignment import ARCFACE_TEMPLATE, align
from faceprint.errors import InputError
from faceprint.liveness.features import lbp_histogram
from faceprint.models.jsonmodel import floats, model_fields, read_model_json
from faceprint.types import Detection, Image

__all__ = [
    "FAMILIES",
    "LAYOUT_NAMES",
    "MODEL_PATH",
    "TEXTURE_NAMES",
    "SyntheticCheck",
    "SyntheticModel",
    "crop_features",
    "layout_distance",
    "layout_features",
    "load_synthetic_model",
    "normalised_crop",
    "sigmoid",
    "synthetic_features",
    "synthetic_set_features",
]

MODEL_PATH = Path(__file__).with_name("synthetic-v1.json")
CROP = 112
JPEG_QUALITY = 75
BLUR_SIGMA = 0.6
RADIAL_BINS = 20
SLOPE = 4.0


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
    prof = np.array([p[(rr > a) & (rr <= b)].mean() for a, b in itertools.pairwise(edges)]) + 1e-9
    prof = np.log10(prof)
    return (prof - prof.mean()).tolist()


TEXTURE_NAMES: tuple[str, ...] = (
    tuple(f"res_spec_{i}" for i in range(RADIAL_BINS))
    + ("corr_rg", "corr_gb", "corr_rb", "res_energy", "res_kurtosis")
    + tuple(f"lbp_y_{i}" for i in range(59))
    + tuple(f"lbp_res_{i}" for i in range(59))
    + ("sat_mean", "sat_std", "sat_p99", "clip_high", "clip_low", "cr_std", "cb_std", "cr_cb_corr")
)


LAYOUT_NAMES: tuple[str, ...] = tuple(f"lm{i}_{a}" for i in range(5) for a in "xy") + ("interocular", "inv_width", "inv_height")
LAYOUT_DIMS = 11  # the Gaussian reads the first 11; 1/width and 1/height scale the landmark noise
LANDMARK_NOISE_PX = 1.5  # landmark localisation error (pixels) added to the generated faces' spread
FAMILIES = {"layout": LAYOUT_NAMES, "texture": TEXTURE_NAMES}


def layout_features(image: Image, det: Detection) -> np.ndarray:
    """The 5 landmarks in fractions of the picture's width / height, and the eye distance in
    fractions of its width (order: ``LAYOUT_NAMES``)."""
    lm = det.landmarks.astype(np.float64) / (float(image.width), float(image.height))
    return np.r_[lm.ravel(), det.interocular / float(image.width), 1.0 / float(image.width), 1.0 / float(image.height)]


def _layout_noise(x: np.ndarray) -> np.ndarray:
    """Diagonal covariance of landmark localisation noise for a picture of this size: the
    same error in pixels is a larger share of a small picture."""
    iw, ih = float(x[LAYOUT_DIMS]), float(x[LAYOUT_DIMS + 1])
    sx, sy = LANDMARK_NOISE_PX * iw, LANDMARK_NOISE_PX * ih
    return np.diag(np.r_[np.tile([sx * sx, sy * sy], 5), 2.0 * sx * sx])


def layout_distance(x: np.ndarray, mean: np.ndarray, cov: np.ndarray) -> float:
    """Mahalanobis distance of a layout vector from the generated faces' Gaussian, its
    covariance widened by this picture's landmark noise."""
    v = x[:LAYOUT_DIMS] - mean
    return math.sqrt(max(float(v @ np.linalg.solve(cov + _layout_noise(x), v)), 1e-18))


def synthetic_features(image: Image, det: Detection) -> dict[str, np.ndarray]:
    """Both feature families of one face."""
    return {"layout": layout_features(image, det), "texture": crop_features(image, det)}


def crop_features(image: Image, det: Detection) -> np.ndarray:
    """The texture vector of one face's normalised crop (order: ``TEXTURE_NAMES``)."""
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
    kurt = float(np.mean((res_y - res_y.mean()) ** 4) / (e**4 + 1e-9))
    out += [corr(res[0], res[1]), corr(res[1], res[2]), corr(res[0], res[2]), math.log10(e + 1e-3), math.log10(kurt + 1e-3)]
    out += lbp_histogram(y).tolist()
    rq = np.clip(res_y * 8 + 128, 0, 255).astype(np.uint8)
    out += lbp_histogram(rq).tolist()
    hsv = cv2.cvtColor(inner, cv2.COLOR_RGB2HSV)
    s = hsv[..., 1].astype(np.float64) / 255.0
    v = hsv[..., 2]
    cr, cb = ycc[..., 1].astype(np.float64), ycc[..., 2].astype(np.float64)
    out += [
        float(s.mean()),
        float(s.std()),
        float(np.quantile(s, 0.99)),
        float(np.mean(v >= 250)),
        float(np.mean(v <= 5)),
        float(cr.std() / 255.0),
        float(cb.std() / 255.0),
        corr(cr.ravel(), cb.ravel()),
    ]
    return np.asarray(out, np.float64)


@dataclass(frozen=True)
class SyntheticCheck:
    synthetic: bool
    score: float  # 0-1, higher = more likely synthetic
    threshold: float
    model: str
    evidence: list[str] = field(default_factory=list)
    detectors: dict[str, float] = field(default_factory=dict)  # detector -> its own score

    def to_dict(self) -> dict[str, Any]:
        return {
            "synthetic": self.synthetic,
            "score": round(self.score, 4),
            "threshold": self.threshold,
            "model": self.model,
            "detectors": dict(self.detectors),
            "evidence": list(self.evidence),
        }


def _cue(name: str) -> str:
    if name.startswith("res_spec"):
        return "spectrum of the fine detail"
    if name.startswith(("corr_", "res_")):
        return "colour noise unlike a camera's"
    if name.startswith("lbp_"):
        return "micro-texture"
    return "colour saturation"


def sigmoid(z: float) -> float:
    """The logistic function (a logit -> a 0-1 score), clipped to stay finite."""
    z = max(min(z, 60.0), -60.0)
    return 1.0 / (1.0 + math.exp(-z))


class SyntheticModel:
    """A loaded synthetic-face model (see the module text)."""

    def __init__(self, data: dict[str, Any], source: str = "") -> None:
        with model_fields("not a faceprint synthetic-face model", source):
            self.version = str(data["version"])
            self.threshold = float(data["threshold"])
            self.meta = data.get("training", {})
            self.detectors: list[dict[str, Any]] = []
            for d in data["detectors"]:
                fam = d["family"]
                n = len(FAMILIES[fam])
                if d["kind"] == "gaussian":
                    det = {
                        "name": d["name"],
                        "family": fam,
                        "kind": "gaussian",
                        "mean": floats(d["mean"]),
                        "cov": floats(d["cov"]),
                        "radius": float(d["radius"]),
                    }
                    ok = fam == "layout" and det["mean"].size == LAYOUT_DIMS and det["cov"].shape == (LAYOUT_DIMS, LAYOUT_DIMS)
                elif d["kind"] == "logistic":
                    det = {
                        "name": d["name"],
                        "family": fam,
                        "kind": "logistic",
                        "mean": floats(d["mean"]),
                        "scale": floats(d["scale"]),
                        "coef": floats(d["coef"]),
                        "intercept": float(d["intercept"]),
                    }
                    ok = det["coef"].size == n and det["mean"].size == n and det["scale"].size == n
                else:
                    raise ValueError(f"unknown detector kind {d['kind']!r}")
                if not ok:
                    raise ValueError(f"detector {d['name']!r} does not match this faceprint's {n} {fam} features")
                self.detectors.append(det)
            if not self.detectors:
                raise ValueError("no detectors")

    def logits(self, feats: dict[str, np.ndarray]) -> dict[str, float]:
        out = {}
        for d in self.detectors:
            x = feats[d["family"]]
            if d["kind"] == "gaussian":
                out[d["name"]] = -SLOPE * math.log(layout_distance(x, d["mean"], d["cov"]) / d["radius"])
            else:
                out[d["name"]] = float(((x - d["mean"]) / d["scale"]) @ d["coef"] + d["intercept"])
        return out

    def score_features(self, feats: dict[str, np.ndarray]) -> float:
        return sigmoid(max(self.logits(feats).values()))

    def assess(self, image: Image, det: Detection, *, threshold: float | None = None) -> SyntheticCheck:
        return self.assess_features(synthetic_features(image, det), threshold=threshold)

    def assess_features(self, feats: dict[str, np.ndarray], *, threshold: float | None = None) -> SyntheticCheck:
        thr = self.threshold if threshold is None else float(threshold)
        logits = self.logits(feats)
        score = sigmoid(max(logits.values()))
        evidence = []
        for d in self.detectors:
            if sigmoid(logits[d["name"]]) < thr:
                continue
            if d["kind"] == "gaussian":
                evidence.append("the face sits in the picture exactly where face generators put it (eyes at the aligned-output position)")
            else:
                x = feats[d["family"]]
                contrib = ((x - d["mean"]) / d["scale"]) * d["coef"]
                kinds = sorted({_cue(TEXTURE_NAMES[i]) for i in np.argsort(-contrib)[:3] if contrib[i] > 0})
                evidence.append(f"the face's fine detail looks generated ({', '.join(kinds)})" if kinds else "the face's fine detail looks generated")
        return SyntheticCheck(
            synthetic=bool(score >= thr),
            score=score,
            threshold=thr,
            model=self.version,
            evidence=evidence,
            detectors={k: round(sigmoid(v), 4) for k, v in logits.items()},
        )


def load_synthetic_model(path: str | Path | None = None) -> SyntheticModel:
    p = Path(path) if path else MODEL_PATH
    return SyntheticModel(read_model_json(p, "synthetic-face"), source=str(p))


def synthetic_set_features(
    engine: Any, paths: Sequence[Path | str], *, progress: Callable[[int], None] | None = None
) -> tuple[dict[str, np.ndarray], list[bool], list[tuple[str, str]]]:
    """Features of the largest face of each image: (family -> matrix of those with a face, a
    has-face flag per path, (path, error) of the others)."""
    from faceprint.errors import FaceprintError

    rows: dict[str, list[np.ndarray]] = {f: [] for f in FAMILIES}
    ok, failed = [], []
    for p in paths:
        try:
            f = synthetic_features(*engine.pick(p, face="largest"))
            for k in FAMILIES:
                rows[k].append(f[k])
            ok.append(True)
        except FaceprintError as exc:
            ok.append(False)
            failed.append((str(p), str(exc)))
        if progress:
            progress(1)
    return {k: (np.vstack(v) if v else np.zeros((0, len(FAMILIES[k])))) for k, v in rows.items()}, ok, failed
