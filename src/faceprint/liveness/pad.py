"""Single-image presentation-attack detection (PAD): is this face a live person or a
recaptured picture of one (a print, a screen)?

Two passive detectors, each a logistic model over a feature family of
:mod:`faceprint.liveness.features`:

- ``texture``: the face region's colour LBP, Fourier spectrum, colour moments and specular
  share -- what recapture does to skin;
- ``context``: long straight edges framing the face -- the border of the photo, the
  bezel of the screen.

Each gives an *attack logit*; the fused attack logit is their maximum (a face is an attack
when either detector is sure of it), and the liveness ``score`` is ``sigmoid(-fused)`` in
(0, 1): higher = more likely live.  ``live`` is ``score >= threshold``.

A *one-class* model (``mode = "one-class"``) is trained on bona fide faces only: the
Mahalanobis distance of the face's features in a PCA subspace of live faces, mapped to the
same 0-1 score (0.5 at the distance that 99% of the training faces stay within).  It is for
deployments with their own live captures and no attack samples.

Every answer states the APCER / BPCER its threshold stands for (``operating_point``), measured
on capture set-ups the scoring model never saw when it was trained on several (leave-one-source-out),
and how far the capture lies from the training captures: ``confidence`` is ``"low"``, with
the reasons, when the picture's or face's size, JPEG blocking or sharpness falls outside the
training captures' range, or its texture outside theirs (the model's ``support``).  Such a
verdict is a guess its measured error rates do not cover: a news photo, a scan, a 4K camera.

Models are JSON files (``pad-v2.json`` ships, trained by ``faceprint train-pad`` on the three
PAD sources: NUAA prints, webcam collections, a filmed self-replay), read by
:func:`faceprint.models.jsonmodel.read_model_json`; scoring needs NumPy only.  A detector
may read a subset of its family (``features``: the texture detector of ``pad-v2`` leaves out
the chroma and HSV LBP histograms, which generalised worse across set-ups).  This module loads and scores; training (deterministic: Newton's method on the
L2-regularised logistic loss, PCA by SVD) is :func:`faceprint.liveness.training.train_pad`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from faceprint.liveness.features import CAPTURE_NAMES, CONTEXT_NAMES, TEXTURE_NAMES, capture_features, context_features, face_region, texture_features
from faceprint.metrics.pad import BONA_FIDE, is_bona_fide  # re-exported: this was their first home
from faceprint.models.jsonmodel import floats, model_fields, read_model_json
from faceprint.types import Detection, Image

__all__ = ["BONA_FIDE", "MODEL_PATH", "Liveness", "PadModel", "features_of", "is_bona_fide", "load_pad_model", "pad_features"]

MODEL_PATH = Path(__file__).with_name("pad-v2.json")
FAMILIES = {"texture": TEXTURE_NAMES, "context": CONTEXT_NAMES}
ONE_CLASS_SLOPE = 4.0  # one-class logit = SLOPE * log(distance / radius); the radius is set by training


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-max(min(x, 60.0), -60.0)))


def pad_features(image: Image, det: Detection) -> dict[str, np.ndarray]:
    """Both detector feature families of one face, and how it was captured (``capture``: what
    the model's support check compares with its training captures)."""
    region = face_region(image, det)  # the face square both texture and capture read
    return {"texture": texture_features(image, det, region), "context": context_features(image, det), "capture": capture_features(image, det, region)}


@dataclass(frozen=True)
class Liveness:
    """A single-image PAD answer: the decision, the score it came from and the evidence."""

    live: bool
    score: float  # 0-1, higher = more likely live
    threshold: float
    mode: str  # "two-class" | "one-class"
    model: str  # the PAD model's version
    detectors: dict[str, float] = field(default_factory=dict)  # detector -> its own liveness score (0-1)
    evidence: list[str] = field(default_factory=list)  # what pointed at an attack, in words
    operating_point: dict[str, Any] | None = None  # APCER / BPCER measured at this threshold, and on what
    confidence: str = "high"  # "low": the capture lies outside what the model was trained on (see confidence_reasons)
    confidence_reasons: list[str] = field(default_factory=list)
    retake_advice: list[str] = field(default_factory=list)  # what the person capturing can change so the model can judge a new capture

    def to_dict(self) -> dict[str, Any]:
        out = {
            "live": self.live,
            "score": round(self.score, 4),
            "threshold": self.threshold,
            "mode": self.mode,
            "model": self.model,
            "detectors": {k: round(v, 4) for k, v in self.detectors.items()},
            "evidence": list(self.evidence),
            "confidence": self.confidence,
            "confidence_reasons": list(self.confidence_reasons),
            "retake_advice": list(self.retake_advice),
        }
        if self.operating_point is not None:
            out["operating_point"] = self.operating_point
        return out


@dataclass(frozen=True)
class _Logistic:
    name: str
    family: str
    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: float
    index: np.ndarray | None = None  # the family's features this detector reads (None: all)
    names: tuple[str, ...] = ()  # their names

    def pick(self, x: np.ndarray) -> np.ndarray:
        return x if self.index is None else x[..., self.index]

    def logit(self, x: np.ndarray) -> float:
        return float(((self.pick(x) - self.mean) / self.scale) @ self.coef + self.intercept)

    def contributions(self, x: np.ndarray) -> np.ndarray:
        return ((self.pick(x) - self.mean) / self.scale) * self.coef


def _detector(d: dict[str, Any]) -> _Logistic:
    family = d["family"]
    if family not in FAMILIES:
        raise ValueError(f"detector {d['name']!r}: unknown family {family!r}")
    known = FAMILIES[family]
    chosen = d.get("features")
    index = None
    if chosen is not None:
        missing = [n for n in chosen if n not in known]
        if missing:
            raise ValueError(f"detector {d['name']!r} reads features this faceprint does not compute: {', '.join(missing[:5])}")
        index = np.array([known.index(n) for n in chosen], np.int64)
    det = _Logistic(d["name"], family, floats(d["mean"]), floats(d["scale"]), floats(d["coef"]), float(d["intercept"]), index, tuple(chosen or known))
    if det.coef.size != len(det.names) or det.mean.size != det.coef.size or det.scale.size != det.coef.size:
        raise ValueError(f"detector {det.name!r}: {det.coef.size} weights for {len(det.names)} features of family {family!r} does not match")
    return det


@dataclass(frozen=True)
class _Support:
    """Where the model's training captures lie: the range of each capture statistic
    (``CAPTURE_NAMES``) and a radius in the texture detector's principal subspace.  An input
    outside either gets ``confidence: low`` and the reason (see :meth:`PadModel.support_of`)."""

    low: np.ndarray
    high: np.ndarray
    detector: str  # the detector whose standardised features the subspace is of
    components: np.ndarray
    var: np.ndarray
    radius: float
    measured_on: str

    @classmethod
    def read(cls, d: dict[str, Any]) -> _Support:
        cap = d["capture"]
        if list(cap["names"]) != list(CAPTURE_NAMES):
            raise ValueError("the model's capture statistics do not match this faceprint's")
        tex = d["texture"]
        return cls(
            floats(cap["low"]),
            floats(cap["high"]),
            str(tex["detector"]),
            floats(tex["components"]),
            floats(tex["var"]),
            float(tex["radius"]),
            str(d.get("measured_on", "")),
        )


class PadModel:
    """A loaded PAD model (see the module text)."""

    def __init__(self, data: dict[str, Any], source: str = "") -> None:
        with model_fields("not a faceprint PAD model", source):
            self.version = str(data["version"])
            self.mode = str(data["mode"])
            self.threshold = float(data["threshold"])
            self.meta = data.get("training", {})
            self.operating_points = data.get("operating_points", [])
            curve = data.get("error_curve")
            self.curve = None if not curve else (floats(curve["threshold"]), floats(curve["apcer"]), floats(curve["bpcer"]))
            if self.mode == "two-class":
                self.detectors = [_detector(d) for d in data["detectors"]]
            elif self.mode == "one-class":
                oc = data["one_class"]
                self.families = list(oc["families"])
                self.oc_mean = floats(oc["mean"])
                self.oc_scale = floats(oc["scale"])
                self.oc_components = floats(oc["components"])
                self.oc_var = floats(oc["var"])
                self.oc_radius = float(oc["radius"])
                if self.oc_mean.size != sum(len(FAMILIES[f]) for f in self.families):
                    raise ValueError("one-class model's feature count does not match this faceprint's features")
            else:
                raise ValueError(f"unknown mode {self.mode!r}")
            self.support = _Support.read(data["support"]) if data.get("support") else None
            if self.support is not None and self.mode == "two-class":
                by_name = {d.name: d for d in self.detectors}
                if self.support.detector not in by_name or self.support.components.shape[1] != by_name[self.support.detector].coef.size:
                    raise ValueError("the model's support subspace does not match its detectors")

    # -- scoring --------------------------------------------------------------
    def assess(self, image: Image, det: Detection, *, threshold: float | None = None) -> Liveness:
        return self.assess_features(pad_features(image, det), threshold=threshold)

    def attack_logits(self, feats: dict[str, np.ndarray]) -> dict[str, float]:
        """Per detector, the attack logit (two-class) or the log distance ratio (one-class)."""
        if self.mode == "two-class":
            return {d.name: d.logit(feats[d.family]) for d in self.detectors}
        x = np.concatenate([feats[f] for f in self.families])
        z = ((x - self.oc_mean) / self.oc_scale) @ self.oc_components.T
        dist = math.sqrt(float(np.sum(z * z / self.oc_var)))
        return {"one_class": ONE_CLASS_SLOPE * math.log(max(dist, 1e-9) / self.oc_radius)}

    def score_features(self, feats: dict[str, np.ndarray]) -> float:
        return _sigmoid(-max(self.attack_logits(feats).values()))

    def operating_point(self, threshold: float) -> dict[str, Any] | None:
        """APCER / BPCER the training measured at ``threshold`` (the nearest stored threshold
        at or below it) -- out of source when it had several sources, else out of subject --
        with what they were measured on."""
        if self.curve is None:
            return None
        t, a, b = self.curve
        i = max(int(np.searchsorted(t, threshold, side="right")) - 1, 0)
        return {
            "apcer": round(float(a[i]), 4),
            "bpcer": round(float(b[i]), 4),
            "measured_on": self.meta.get("operating_points_from") or self.meta.get("measured_on", "the training data, out of subject"),
        }

    def support_of(self, feats: dict[str, np.ndarray]) -> list[str]:
        """Why this face lies outside what the model was trained on ([] when it does not, or
        when the model records no support): each capture statistic outside the training
        captures' range, and a texture unlike all of theirs.  A verdict on such a face is a
        guess the model's measured error rates do not cover."""
        return [reason for reason, _ in self._outside(feats)]

    def _outside(self, feats: dict[str, np.ndarray]) -> list[tuple[str, str | None]]:
        """(reason, what a retake can change or None) for each way the face lies outside."""
        sup = self.support
        if sup is None or "capture" not in feats:
            return []
        x = feats["capture"]
        out = []
        for name, v, lo, hi in zip(CAPTURE_NAMES, x, sup.low, sup.high):
            if lo <= v <= hi:
                continue
            out.append((_capture_reason(name, float(v), float(lo), float(hi)), _capture_advice(name, bool(v > hi))))
        if self.mode == "two-class":
            det = next(d for d in self.detectors if d.name == sup.detector)
            z = ((det.pick(feats[det.family]) - det.mean) / det.scale) @ sup.components.T
            if math.sqrt(float(np.sum(z * z / sup.var))) > sup.radius:
                out.append(("the face's texture statistics lie outside those of every training capture", None))
        return out

    def assess_features(self, feats: dict[str, np.ndarray], *, threshold: float | None = None) -> Liveness:
        thr = self.threshold if threshold is None else float(threshold)
        logits = self.attack_logits(feats)
        score = _sigmoid(-max(logits.values()))
        outside = self._outside(feats)
        return Liveness(
            live=bool(score >= thr),
            score=score,
            threshold=thr,
            mode=self.mode,
            model=self.version,
            detectors={k: _sigmoid(-v) for k, v in logits.items()},
            evidence=self._evidence(feats, logits),
            operating_point=self.operating_point(thr),
            confidence="low" if outside else "high",
            confidence_reasons=[r for r, _ in outside],
            retake_advice=list(dict.fromkeys(a for _, a in outside if a)),
        )

    def _evidence(self, feats: dict[str, np.ndarray], logits: dict[str, float]) -> list[str]:
        out: list[str] = []
        if self.mode == "one-class":
            if logits["one_class"] > 0:
                out.append("the face's texture and surround lie outside what the bona fide training faces showed")
            return out
        for d in self.detectors:
            if logits[d.name] <= 0:
                continue
            x = feats[d.family]
            if d.family == "context":
                sides = [s for s, v in zip(("top", "bottom", "left", "right"), x[:4]) if v > 0]
                where = f" ({', '.join(sides)})" if sides else ""
                out.append(f"long straight edges frame the face{where}: the border of a photo or a screen?")
            else:
                contrib = d.contributions(x)
                top = [d.names[i] for i in np.argsort(-contrib)[:3] if contrib[i] > 0]
                kinds = sorted({_cue_kind(n) for n in top})
                out.append(f"the face's surface looks recaptured ({', '.join(kinds)})")
        return out


def _capture_reason(name: str, v: float, lo: float, hi: float) -> str:
    """One capture statistic outside the training range, in words."""
    above = v > hi
    if name == "log_picture_pixels":
        return f"the picture has {10**v / 1e6:.2f} megapixels; the training captures had {10**lo / 1e6:.2f}-{10**hi / 1e6:.2f}"
    if name == "log_face_pixels":
        return f"the face is {10**v:.0f} px across; the training faces were {10**lo:.0f}-{10**hi:.0f} px"
    if name == "face_share":
        return f"the face spans {v:.0%} of the picture's shorter side; the training faces spanned {lo:.0%}-{hi:.0%}"
    if name == "jpeg_blockiness":
        return "the face shows " + (
            "stronger JPEG compression blocks than any training capture" if above else "a smoother 8x8 pixel grid than the training captures"
        )
    return "the face is " + ("sharper" if above else "blurrier") + " than every training capture"


def _capture_advice(name: str, above: bool) -> str | None:
    """What the person capturing can change when one capture statistic is out of range (None:
    nothing a retake changes -- another camera or encoder; train-pad on its captures)."""
    if name in ("log_face_pixels", "face_share"):
        return "move back from the camera so the whole head is in the picture" if above else "move closer to the camera so the face fills more of the picture"
    if name == "jpeg_blockiness" and above:
        return "send the capture with less compression (a higher JPEG quality, or PNG)"
    if name == "log_face_sharpness" and not above:
        return "hold still in good light and let the camera focus on the face"
    return None


def _cue_kind(name: str) -> str:
    if name.startswith("lbp_"):
        return "micro-texture"
    if name.startswith("spec_"):
        return "frequency spectrum: print dots, moire or lost detail"
    if name == "specular":
        return "specular reflection"
    if name == "log_sharpness":
        return "sharpness"
    return "colour distribution"


def load_pad_model(path: str | Path | None = None) -> PadModel:
    p = Path(path) if path else MODEL_PATH
    return PadModel(read_model_json(p, "PAD"), source=str(p))


def features_of(
    engine: Any, items: Sequence[Any], *, progress: Callable[[int], None] | None = None
) -> tuple[list[dict[str, np.ndarray]], list[Any], list[tuple[str, str]]]:
    """PAD features of the largest face of each labelled image (``items`` have ``.path``).
    Returns (features, the items that had a face, (path, error) of those that did not)."""
    from faceprint.errors import FaceprintError

    feats, kept, failed = [], [], []
    for it in items:
        try:
            feats.append(pad_features(*engine.pick(it.path, face="largest")))
            kept.append(it)
        except FaceprintError as exc:
            failed.append((str(it.path), str(exc)))
        if progress:
            progress(1)
    return feats, kept, failed
