"""Synthetic-face check: was this face generated (GAN / diffusion) rather than photographed?

Three feature families, two model designs (``score`` 0-1, higher = more like the generated
faces the model was fitted on; ``synthetic`` is ``score >= threshold``):

- ``layout``: where the face sits in the picture.  Generators trained on FFHQ-aligned faces
  (StyleGAN and the services built on it) put the eyes at almost the same image coordinates
  in every output (Mundra et al. 2023).  A Gaussian over the 5 landmarks and the eye distance,
  relative to the picture's size, fitted on generated faces, widened per picture by the
  landmark localisation error (``LANDMARK_NOISE_PX``); the score is 0.5 at the distance that
  ``LAYOUT_QUANTILE`` (:mod:`faceprint.forensics.training`) of them stay within.  It cannot
  tell a generated face from a *real photo aligned the same way* (FFHQ / CelebA-HQ portraits,
  profile pictures, passport crops all sit there) and is blind to a generated face that was
  cropped or re-framed.
- ``texture`` (v1): the fine detail of the aligned face after a normalisation (area-shrunk to
  one crop size, blurred, JPEG re-encoded): residual spectrum (Durall et al. 2020), colour-noise
  correlation, LBP, saturation and chroma moments (McCloskey & Albright 2019).
- ``residual`` (v2): noise-residual statistics of the face at one fixed scale (three band-pass
  residuals of the 128 px aligned crop: energy, kurtosis, colour-channel correlation, chroma
  share, band ratios, spectrum of the finest band): :func:`residual_features`.

``synthetic-v1.json`` (``V1_PATH``): the layout detector alone, fused by maximum.  It flags
unaltered StyleGAN-family output well and real photos aligned like FFHQ just as well.

``synthetic-v2.json`` (``MODEL_PATH``, :func:`faceprint.forensics.training.fit_reframed`):
the residual logistic, trained with every face also re-framed -- real photos warped onto
the FFHQ layout as negatives, generated faces cropped / rescaled / JPEG-saved and thumbnailed
as positives -- plus the layout logit clipped to +-2 (``fusion: sum``), so the layout is one
piece of evidence and never decides alone.  The operating point (0.5) is the 99th percentile
of real faces aligned like FFHQ *from real sources the fit never saw*.  Measured held out
(``benchmarks/synthetic.py``), the residual statistics do not survive a change of real
source or generator: clean, high-resolution camera photos read as generated, and a generator
left out of training ranks at 0.6-0.85 AUC on its own residual evidence.  So the operating
point that keeps unseen real sources' aligned photos unflagged flags almost no generated
face: v2's ``synthetic`` is rare and strong evidence, its ``not synthetic`` is no evidence
of a real photo (the model's ``note``, carried in every answer, says so).

This module loads and scores (the model file is read by
:func:`faceprint.models.jsonmodel.read_model_json`); fitting, re-framing and
cross-validation are :mod:`faceprint.forensics.training`.  The *identity-aware* check, which
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

from faceprint.alignment import ARCFACE_TEMPLATE, align, similarity_transform
from faceprint.errors import InputError
from faceprint.liveness.features import lbp_histogram
from faceprint.models.jsonmodel import floats, model_fields, read_model_json
from faceprint.types import Detection, Image

__all__ = [
    "FAMILIES",
    "LAYOUT_NAMES",
    "MODEL_PATH",
    "RESIDUAL_NAMES",
    "TEXTURE_NAMES",
    "SyntheticCheck",
    "SyntheticModel",
    "crop_features",
    "layout_distance",
    "layout_features",
    "load_synthetic_model",
    "normalised_crop",
    "residual_features",
    "sigmoid",
    "synthetic_features",
    "synthetic_set_features",
    "verdict_shares",
]

MODEL_PATH = Path(__file__).with_name("synthetic-v2.json")
V1_PATH = Path(__file__).with_name("synthetic-v1.json")  # layout only, max-fused: flags real photos aligned like FFHQ
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
RESIDUAL_CROP = 128  # the residual family's crop: the ArcFace layout at 128 px (eye distance ~40 px)
RESIDUAL_BANDS = 3
RESIDUAL_SPECTRUM = 12
RESIDUAL_NAMES: tuple[str, ...] = (
    tuple(f"band{b}_{k}" for b in range(RESIDUAL_BANDS) for k in ("log_energy", "log_kurtosis", "corr_rg", "corr_gb", "corr_rb", "chroma_over_luma"))
    + ("band_ratio_01", "band_ratio_12")
    + tuple(f"res_spectrum_{i}" for i in range(RESIDUAL_SPECTRUM))
)
FAMILIES = {"layout": LAYOUT_NAMES, "texture": TEXTURE_NAMES, "residual": RESIDUAL_NAMES}


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
    """Every feature family of one face."""
    return {"layout": layout_features(image, det), "texture": crop_features(image, det), "residual": residual_features(image, det)}


def _fixed_scale_crop(image: Image, det: Detection, size: int) -> np.ndarray:
    """The face on the ArcFace layout at ``size`` px; a larger face is first shrunk with area
    averaging, the border replicated (no black corners to learn)."""
    tpl = ARCFACE_TEMPLATE * (size / 112.0)
    lm = det.landmarks.astype(np.float64)
    m = similarity_transform(lm, tpl)
    s = float(np.sqrt(abs(np.linalg.det(m[:, :2]))))
    px = image.pixels
    if s < 1.0:
        px = cv2.resize(px, (max(1, round(px.shape[1] * s)), max(1, round(px.shape[0] * s))), interpolation=cv2.INTER_AREA)
        m = similarity_transform(lm * (px.shape[1] / image.width, px.shape[0] / image.height), tpl)
    return cv2.warpAffine(px, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation of two arrays' values (0 when either is flat)."""
    a = a.ravel() - a.mean()
    b = b.ravel() - b.mean()
    d = math.sqrt(float((a * a).sum() * (b * b).sum()))
    return float((a * b).sum() / d) if d > 1e-9 else 0.0


def residual_features(image: Image, det: Detection) -> np.ndarray:
    """Noise-residual statistics of the face at one fixed scale (order: ``RESIDUAL_NAMES``):
    three band-pass residuals (image - blur 1, blur 1 - blur 2, blur 2 - blur 4 px) of the
    inner 96 x 96 of the 128 px aligned crop: log energy, kurtosis, the three colour-channel
    correlations and the chroma share of each; the energy ratios between bands; the radial
    spectrum of the finest band.  Nothing here reads where the face sits in the picture."""
    crop = _fixed_scale_crop(image, det, RESIDUAL_CROP)
    m = RESIDUAL_CROP // 8
    x = crop[m:-m, m:-m].astype(np.float32)
    g1, g2, g4 = (cv2.GaussianBlur(x, (0, 0), s) for s in (1.0, 2.0, 4.0))
    out: list[float] = []
    for b in (x - g1, g1 - g2, g2 - g4):
        y = b.mean(2)
        e = float(y.std()) + 1e-3
        out += [math.log(e), math.log(float(np.mean((y - y.mean()) ** 4)) / e**4 + 1e-3)]
        out += [_corr(b[..., 0], b[..., 1]), _corr(b[..., 1], b[..., 2]), _corr(b[..., 0], b[..., 2])]
        out += [math.log(float((b - b.mean(2, keepdims=True)).std()) + 1e-3) - math.log(e)]
    out += [out[0] - out[6], out[6] - out[12]]
    n = x.shape[0]
    res = x.mean(2) - g1.mean(2)
    win = np.outer(np.hanning(n), np.hanning(n))
    p = np.abs(np.fft.fftshift(np.fft.fft2((res - res.mean()) * win))) ** 2
    yy, xx = np.mgrid[0:n, 0:n]
    rr = np.hypot(yy - n / 2, xx - n / 2) / (n / 2)
    edges = np.linspace(0.05, 1.0, RESIDUAL_SPECTRUM + 1)
    prof = np.log10(np.array([p[(rr > a) & (rr <= b)].mean() for a, b in itertools.pairwise(edges)]) + 1e-9)
    out += (prof - prof.mean()).tolist()
    return np.asarray(out, np.float64)


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

    e = float(res_y.std())
    kurt = float(np.mean((res_y - res_y.mean()) ** 4) / (e**4 + 1e-9))
    out += [_corr(res[0], res[1]), _corr(res[1], res[2]), _corr(res[0], res[2]), math.log10(e + 1e-3), math.log10(kurt + 1e-3)]
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
        _corr(cr, cb),
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
    note: str = ""  # what the score means and what it cannot tell (from the model)
    cannot_tell: list[str] = field(default_factory=list)  # why the check cannot judge this face ([] when it can)

    @property
    def verdict(self) -> str:
        """``synthetic`` (strong evidence), ``cannot tell`` (the face is one the check cannot
        judge, see ``cannot_tell``) or ``no evidence`` (not flagged -- which is not evidence of a real photo)."""
        return "synthetic" if self.synthetic else "cannot tell" if self.cannot_tell else "no evidence"

    def to_dict(self) -> dict[str, Any]:
        out = {
            "synthetic": self.synthetic,
            "score": round(self.score, 4),
            "threshold": self.threshold,
            "model": self.model,
            "detectors": dict(self.detectors),
            "evidence": list(self.evidence),
            "verdict": self.verdict,
            "cannot_tell": list(self.cannot_tell),
        }
        if self.note:
            out["note"] = self.note
        return out


def _cue(name: str) -> str:
    if name.startswith(("res_spec", "band_ratio")) or name.endswith(("log_energy", "log_kurtosis")):
        return "spectrum of the fine detail"
    if name.startswith(("corr_", "res_")) or "_corr_" in name or name.endswith("chroma_over_luma"):
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
            self.fusion = str(data.get("fusion", "max"))
            if self.fusion not in ("max", "sum"):
                raise ValueError(f"unknown fusion {self.fusion!r}")
            self.layout_clip = float(data.get("layout_clip", 60.0))
            self.note = str(data.get("note", ""))

    def logits(self, feats: dict[str, np.ndarray]) -> dict[str, float]:
        out = {}
        for d in self.detectors:
            x = feats[d["family"]]
            if d["kind"] == "gaussian":
                out[d["name"]] = -SLOPE * math.log(layout_distance(x, d["mean"], d["cov"]) / d["radius"])
            else:
                out[d["name"]] = float(((x - d["mean"]) / d["scale"]) @ d["coef"] + d["intercept"])
        return out

    def fused_logit(self, logits: dict[str, float]) -> float:
        """``max`` (v1: any detector alone decides) or ``sum`` (v2: the layout logit, clipped to
        +-``layout_clip``, is one piece of evidence added to the others; it cannot decide alone
        when the clip is below the operating point's margin)."""
        if self.fusion == "max":
            return max(logits.values())
        kinds = {d["name"]: d["kind"] for d in self.detectors}
        c = self.layout_clip
        return float(sum(min(max(v, -c), c) if kinds[k] == "gaussian" else v for k, v in logits.items()))

    def score_features(self, feats: dict[str, np.ndarray]) -> float:
        return sigmoid(self.fused_logit(self.logits(feats)))

    def assess(self, image: Image, det: Detection, *, threshold: float | None = None) -> SyntheticCheck:
        return self.assess_features(synthetic_features(image, det), threshold=threshold)

    def assess_features(self, feats: dict[str, np.ndarray], *, threshold: float | None = None) -> SyntheticCheck:
        thr = self.threshold if threshold is None else float(threshold)
        logits = self.logits(feats)
        score = sigmoid(self.fused_logit(logits))
        evidence = []
        for d in self.detectors:
            if sigmoid(logits[d["name"]]) < (0.5 if self.fusion == "sum" else thr):
                continue
            if d["kind"] == "gaussian":
                evidence.append(
                    "the face sits in the picture exactly where face generators put it (eyes at the aligned-output position)"
                    + ("; real photos aligned the same way (portrait datasets, profile and passport crops) sit there too" if self.fusion == "sum" else "")
                )
            else:
                x = feats[d["family"]]
                contrib = ((x - d["mean"]) / d["scale"]) * d["coef"]
                names = FAMILIES[d["family"]]
                kinds = sorted({_cue(names[i]) for i in np.argsort(-contrib)[:3] if contrib[i] > 0})
                evidence.append(f"the face's fine detail looks generated ({', '.join(kinds)})" if kinds else "the face's fine detail looks generated")
        cannot_tell = []
        if self.fusion == "sum" and score < thr:
            layout = [d["name"] for d in self.detectors if d["kind"] == "gaussian" and sigmoid(logits[d["name"]]) >= 0.5]
            if layout:
                # the one cue that catches unaltered FFHQ-style generator output also fires on
                # real photos cropped that way, and the others do not settle it: say so
                cannot_tell.append(
                    "the face sits exactly where FFHQ-aligned generators (StyleGAN and services built on it) put faces, and where real "
                    "portraits cropped the same way (CelebA-HQ, profile pictures, passport crops) sit too; the other cues do not settle which"
                )
        return SyntheticCheck(
            synthetic=bool(score >= thr),
            score=score,
            threshold=thr,
            model=self.version,
            evidence=evidence,
            detectors={k: round(sigmoid(v), 4) for k, v in logits.items()},
            note=self.note,
            cannot_tell=cannot_tell,
        )


def verdict_shares(model: SyntheticModel, feats: dict[str, np.ndarray]) -> dict[str, float]:
    """Share of the rows of ``feats`` (family -> matrix) the model answers ``synthetic``,
    ``cannot tell`` and ``no evidence``."""
    n = len(feats["layout"])
    said = [model.assess_features({f: feats[f][i] for f in FAMILIES}).verdict for i in range(n)]
    return {k: round(said.count(k) / max(n, 1), 4) for k in ("synthetic", "cannot tell", "no evidence")}


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
