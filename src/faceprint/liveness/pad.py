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

Models are JSON files (``pad-v1.json`` ships, trained by ``faceprint train-pad`` on NUAA
prints); evaluation needs NumPy only.  Training (:func:`train`) is deterministic: Newton's
method on the L2-regularised logistic loss, PCA by SVD.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from faceprint.errors import InputError, ModelError
from faceprint.metrics.pad import BONA_FIDE, is_bona_fide, iso_metrics  # noqa: F401 (BONA_FIDE, is_bona_fide re-exported)
from faceprint.liveness.features import CONTEXT_NAMES, TEXTURE_NAMES, context_features, texture_features
from faceprint.types import Detection, Image

__all__ = ["BONA_FIDE", "MODEL_PATH", "Liveness", "PadModel", "features_of", "fit_logistic", "is_bona_fide", "load_pad_model", "pad_features", "train"]

MODEL_PATH = Path(__file__).with_name("pad-v1.json")
FAMILIES = {"texture": TEXTURE_NAMES, "context": CONTEXT_NAMES}
ONE_CLASS_QUANTILE = 0.99
ONE_CLASS_SLOPE = 4.0


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-max(min(x, 60.0), -60.0)))


def pad_features(image: Image, det: Detection) -> dict[str, np.ndarray]:
    """Both feature families of one face."""
    return {"texture": texture_features(image, det), "context": context_features(image, det)}


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

    def to_dict(self) -> dict[str, Any]:
        out = {"live": self.live, "score": round(self.score, 4), "threshold": self.threshold, "mode": self.mode, "model": self.model,
               "detectors": {k: round(v, 4) for k, v in self.detectors.items()}, "evidence": list(self.evidence)}
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

    def logit(self, x: np.ndarray) -> float:
        return float(((x - self.mean) / self.scale) @ self.coef + self.intercept)

    def contributions(self, x: np.ndarray) -> np.ndarray:
        return ((x - self.mean) / self.scale) * self.coef


class PadModel:
    """A loaded PAD model (see the module text)."""

    def __init__(self, data: dict[str, Any], source: str = "") -> None:
        try:
            self.version = str(data["version"])
            self.mode = str(data["mode"])
            self.threshold = float(data["threshold"])
            self.meta = data.get("training", {})
            self.operating_points = data.get("operating_points", [])
            curve = data.get("error_curve")
            self.curve = None if not curve else (np.asarray(curve["threshold"], float), np.asarray(curve["apcer"], float), np.asarray(curve["bpcer"], float))
            if self.mode == "two-class":
                self.detectors = [
                    _Logistic(d["name"], d["family"], np.asarray(d["mean"], float), np.asarray(d["scale"], float), np.asarray(d["coef"], float), float(d["intercept"]))
                    for d in data["detectors"]
                ]
                for d in self.detectors:
                    if d.family not in FAMILIES or d.coef.size != len(FAMILIES[d.family]):
                        raise ValueError(f"detector {d.name!r}: family {d.family!r} with {d.coef.size} weights does not match this faceprint's features")
            elif self.mode == "one-class":
                oc = data["one_class"]
                self.families = list(oc["families"])
                self.oc_mean = np.asarray(oc["mean"], float)
                self.oc_scale = np.asarray(oc["scale"], float)
                self.oc_components = np.asarray(oc["components"], float)
                self.oc_var = np.asarray(oc["var"], float)
                self.oc_radius = float(oc["radius"])
                if self.oc_mean.size != sum(len(FAMILIES[f]) for f in self.families):
                    raise ValueError("one-class model's feature count does not match this faceprint's features")
            else:
                raise ValueError(f"unknown mode {self.mode!r}")
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelError(f"not a faceprint PAD model: {exc}", source=source) from None

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
        """APCER / BPCER the training measured out of subject at ``threshold`` (the nearest
        stored threshold at or below it), with what they were measured on."""
        if self.curve is None:
            return None
        t, a, b = self.curve
        i = max(int(np.searchsorted(t, threshold, side="right")) - 1, 0)
        return {"apcer": round(float(a[i]), 4), "bpcer": round(float(b[i]), 4), "measured_on": self.meta.get("measured_on", "the training data, out of subject")}

    def assess_features(self, feats: dict[str, np.ndarray], *, threshold: float | None = None) -> Liveness:
        thr = self.threshold if threshold is None else float(threshold)
        logits = self.attack_logits(feats)
        score = _sigmoid(-max(logits.values()))
        return Liveness(live=bool(score >= thr), score=score, threshold=thr, mode=self.mode, model=self.version,
                        detectors={k: _sigmoid(-v) for k, v in logits.items()}, evidence=self._evidence(feats, logits), operating_point=self.operating_point(thr))

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
                top = [FAMILIES[d.family][i] for i in np.argsort(-contrib)[:3] if contrib[i] > 0]
                kinds = sorted({_cue_kind(n) for n in top})
                out.append(f"the face's surface looks recaptured ({', '.join(kinds)})")
        return out


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


def read_model_json(path: Path, what: str) -> dict[str, Any]:
    """A model file's JSON object; a missing, unreadable or non-object file is a ModelError
    naming ``what`` model it should have been."""
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise ModelError(f"{what} model file not found", source=str(path)) from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelError(f"{what} model is not JSON: {exc}", source=str(path)) from None
    if not isinstance(data, dict):
        raise ModelError(f"not a faceprint {what} model: top level is not an object", source=str(path))
    return data


def load_pad_model(path: str | Path | None = None) -> PadModel:
    p = Path(path) if path else MODEL_PATH
    return PadModel(read_model_json(p, "PAD"), source=str(p))


# -- training ---------------------------------------------------------------------------------
def fit_logistic(x: np.ndarray, y: np.ndarray, c: float = 0.3, iters: int = 50) -> tuple[np.ndarray, float]:
    """L2-regularised logistic regression (the objective of scikit-learn's ``C``) by Newton's
    method on standardised ``x``; classes weighted to equal total weight.  Deterministic."""
    n, d = x.shape
    w = np.zeros(d + 1)
    xa = np.hstack([x, np.ones((n, 1))])
    pos = max(int(y.sum()), 1)
    neg = max(n - pos, 1)
    sw = np.where(y == 1, n / (2.0 * pos), n / (2.0 * neg))
    reg = np.full(d + 1, 1.0 / c)
    reg[-1] = 1e-8  # the intercept is not regularised
    for _ in range(iters):
        z = np.clip(xa @ w, -30, 30)
        p = 1.0 / (1.0 + np.exp(-z))
        g = xa.T @ (sw * (p - y)) + reg * w
        h = (xa * (sw * p * (1 - p))[:, None]).T @ xa + np.diag(reg)
        step = np.linalg.solve(h, g)
        w -= step
        if np.max(np.abs(step)) < 1e-8:
            break
    return w[:-1], float(w[-1])


def _standardise(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean = x.mean(0)
    scale = x.std(0)
    scale[scale < 1e-9] = 1.0
    return mean, scale


def _fit_two_class(feats: dict[str, np.ndarray], y: np.ndarray, c: float, families: Sequence[str]) -> list[dict[str, Any]]:
    out = []
    for fam in families:
        x = feats[fam]
        mean, scale = _standardise(x)
        coef, b = fit_logistic((x - mean) / scale, y, c)
        out.append({"name": fam, "family": fam, "mean": mean.tolist(), "scale": scale.tolist(), "coef": coef.tolist(), "intercept": b})
    return out


def _fit_one_class(feats: dict[str, np.ndarray], components: int) -> dict[str, Any]:
    x = np.hstack([feats["texture"], feats["context"]])
    mean, scale = _standardise(x)
    z = (x - mean) / scale
    k = max(1, min(components, z.shape[0] - 1, z.shape[1]))
    _, _, vt = np.linalg.svd(z - z.mean(0), full_matrices=False)
    comp = vt[:k]
    comp *= np.where(comp[np.arange(k), np.abs(comp).argmax(1)] < 0, -1.0, 1.0)[:, None]  # deterministic signs
    proj = z @ comp.T
    var = proj.var(0) + 1e-9
    dist = np.sqrt(np.sum(proj ** 2 / var, 1))
    radius = float(np.quantile(dist, ONE_CLASS_QUANTILE))
    return {"families": ["texture", "context"], "mean": mean.tolist(), "scale": scale.tolist(), "components": comp.tolist(), "var": var.tolist(), "radius": radius}


def _model_dict(feats: dict[str, np.ndarray], y: np.ndarray, *, one_class: bool, c: float, components: int, version: str, families: Sequence[str]) -> dict[str, Any]:
    if one_class:
        live = y == 0
        return {"version": version, "mode": "one-class", "threshold": 0.5, "one_class": _fit_one_class({k: v[live] for k, v in feats.items()}, components)}
    return {"version": version, "mode": "two-class", "threshold": 0.5, "detectors": _fit_two_class(feats, y, c, families)}


def _error_curve(scores: np.ndarray, labels: Sequence[str], points: int = 201) -> dict[str, list[float]]:
    """APCER (worst attack type) and BPCER at ``points`` thresholds evenly spread over 0-1."""
    lab = np.asarray(labels)
    bona = np.array([is_bona_fide(x) for x in labels])
    types = sorted({x for x in labels if not is_bona_fide(x)})
    ts = np.linspace(0.0, 1.0, points)
    apcer = [max(float(np.mean(scores[lab == t] >= th)) for t in types) for th in ts]
    bpcer = [float(np.mean(scores[bona] < th)) for th in ts]
    return {"threshold": [round(float(t), 4) for t in ts], "apcer": [round(a, 5) for a in apcer], "bpcer": [round(b, 5) for b in bpcer]}


def train(
    features: Sequence[dict[str, np.ndarray]],
    labels: Sequence[str],
    groups: Sequence[str],
    *,
    one_class: bool = False,
    c: float = 0.3,
    components: int = 20,
    version: str = "pad-custom",
    families: Sequence[str] = ("texture", "context"),
    progress: Callable[[int], None] | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Fit a PAD model on per-face features.  ``labels``: ``live`` (or another bona fide
    name, see ``BONA_FIDE``) or the attack type; ``groups``: the subject of each face -- the
    out-of-group (leave-one-subject-out) scores measure the model on subjects it never saw
    and are returned with the model; the model itself is fitted on everything.

    Returns (model as a JSON-able dict, out-of-group evaluation)."""

    if len(features) != len(labels) or len(labels) != len(groups):
        raise InputError("features, labels and groups differ in length")
    y = np.asarray([0 if is_bona_fide(lb) else 1 for lb in labels])
    if (y == 0).sum() < 5:
        raise InputError(f"{int((y == 0).sum())} bona fide faces: at least 5 are needed")
    if not one_class and (y == 1).sum() < 5:
        raise InputError(f"{int((y == 1).sum())} attack faces: a two-class model needs at least 5 (or train --one-class)")
    unknown = [f for f in families if f not in FAMILIES]
    if unknown or not families:
        raise InputError(f"unknown detector family {', '.join(unknown) or '(none)'}; known: {', '.join(FAMILIES)}")
    feats = {f: np.vstack([d[f] for d in features]) for f in FAMILIES}
    g = np.asarray(groups)
    uniq = sorted(set(groups))
    oof = np.full(len(y), np.nan)
    if len(uniq) >= 2:
        for k, grp in enumerate(uniq):
            held = g == grp
            if (y[~held] == 0).sum() < 5 or (not one_class and (y[~held] == 1).sum() < 5):
                continue
            m = PadModel(_model_dict({f: v[~held] for f, v in feats.items()}, y[~held], one_class=one_class, c=c, components=components, version="fold", families=families))
            for i in np.flatnonzero(held):
                oof[i] = m.score_features({f: v[i] for f, v in feats.items()})
            if progress:
                progress(1)
    model = _model_dict(feats, y, one_class=one_class, c=c, components=components, version=version, families=families)
    ok = ~np.isnan(oof)
    evaluation: dict[str, Any] = {"groups": len(uniq), "scored": int(ok.sum())}
    if ok.any() and (y[ok] == 0).any() and (y[ok] == 1).any():
        evaluation.update(iso_metrics(oof[ok], [lb for lb, o in zip(labels, ok) if o], threshold=model["threshold"]))
        model["operating_points"] = evaluation["operating_points"]
        model["error_curve"] = _error_curve(oof[ok], [lb for lb, o in zip(labels, ok) if o])
    model["training"] = {
        "faces": len(y), "bona_fide": int((y == 0).sum()), "attacks": {t: int(sum(1 for lb in labels if lb == t)) for t in sorted({lb for lb in labels if not is_bona_fide(lb)})},
        "groups": len(uniq), "c": c, "components": components if one_class else None, "detectors": None if one_class else list(families),
        "leave_one_group_out": {k: evaluation[k] for k in ("apcer", "bpcer", "acer", "bpcer_at_apcer", "auc") if k in evaluation},
        "measured_on": f"{len(y)} faces of {len(uniq)} subjects, each scored by a model trained without its subject",
    }
    return model, evaluation


def features_of(engine: Any, items: Sequence[Any], *, progress: Callable[[int], None] | None = None) -> tuple[list[dict[str, np.ndarray]], list[Any], list[tuple[str, str]]]:
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
