"""Training of the synthetic-face model (:mod:`faceprint.forensics.synthetic` loads and
scores it).

What only training needs lives here: the layout Gaussian fitted on generated faces, the
texture logistic detector (with :func:`faceprint.liveness.training.fit_logistic` and
:func:`~faceprint.liveness.training.standardise`, shared with the PAD trainer), k-fold
cross-validation over files, the texture detector's shift to ``TEXTURE_REAL_FLAG`` and the
model as a JSON-able dict (``faceprint train-synthetic`` writes it).  Features come from
:func:`faceprint.forensics.synthetic.synthetic_set_features`, which evaluation uses as well.
Deterministic; NumPy only.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from faceprint.errors import InputError
from faceprint.forensics.synthetic import LAYOUT_DIMS, SyntheticModel, layout_distance, sigmoid
from faceprint.liveness.training import fit_logistic, standardise
from faceprint.metrics import auc

__all__ = ["LAYOUT_MARGIN", "LAYOUT_QUANTILE", "TEXTURE_REAL_FLAG", "fit_synthetic", "train_synthetic"]

LAYOUT_QUANTILE = 0.99  # the layout radius: this share of the generated training faces stay within it (score 0.5)
LAYOUT_MARGIN = 1.0
TEXTURE_REAL_FLAG = 0.01  # the texture detector is shifted so this share of real faces (out of fold) reach 0.5


def _fit_gaussian(x: np.ndarray) -> dict[str, Any]:
    core = x[:, :LAYOUT_DIMS]
    mean = core.mean(0)
    cov = np.cov(core.T) + np.eye(LAYOUT_DIMS) * 1e-8
    dist = np.array([layout_distance(r, mean, cov) for r in x])
    return {"mean": mean.tolist(), "cov": cov.tolist(), "radius": float(np.quantile(dist, LAYOUT_QUANTILE) * LAYOUT_MARGIN)}


def fit_synthetic(
    feats: dict[str, np.ndarray], y: np.ndarray, *, c: float = 0.01, detectors: Sequence[str] = ("layout",), version: str = "synthetic-custom"
) -> dict[str, Any]:
    """A model dict from per-family feature matrices and labels ``y`` (1 = synthetic): the
    layout Gaussian is fitted on the synthetic faces only, the texture logistic on both."""
    out = []
    for name in detectors:
        if name == "layout":
            out.append({"name": "layout", "family": "layout", "kind": "gaussian", **_fit_gaussian(feats["layout"][y == 1])})
        elif name == "texture":
            x = feats["texture"]
            mean, scale = standardise(x)
            coef, b = fit_logistic((x - mean) / scale, y, c)
            out.append(
                {
                    "name": "texture",
                    "family": "texture",
                    "kind": "logistic",
                    "mean": mean.tolist(),
                    "scale": scale.tolist(),
                    "coef": coef.tolist(),
                    "intercept": b,
                }
            )
        else:
            raise InputError(f"unknown synthetic-face detector {name!r} (known: layout, texture)")
    return {"version": version, "threshold": 0.5, "detectors": out}


def train_synthetic(
    features: dict[str, np.ndarray],
    synthetic: Sequence[bool],
    *,
    c: float = 0.01,
    detectors: Sequence[str] = ("layout",),
    version: str = "synthetic-custom",
    folds: int = 5,
    progress: Callable[[int], None] | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Fit on everything; measure by ``folds``-fold cross-validation over files (each file in
    exactly one test fold, folds stratified by class, deterministic).  ``features``: family ->
    (N, d) matrix.  Returns (model, evaluation with fused and per-detector out-of-fold AUC)."""
    y = np.asarray(synthetic, int)
    if (y == 1).sum() < max(folds, 12) or (y == 0).sum() < folds:
        raise InputError(
            f"{int((y == 1).sum())} synthetic and {int((y == 0).sum())} real faces: at least {max(folds, 12)} synthetic and {folds} real are needed"
        )
    fold = np.empty(len(y), int)
    for cls in (0, 1):
        idx = np.flatnonzero(y == cls)
        fold[idx] = np.arange(idx.size) % folds
    per = {d: np.zeros(len(y)) for d in detectors}  # out-of-fold logits
    for k in range(folds):
        m = SyntheticModel(fit_synthetic({f: v[fold != k] for f, v in features.items()}, y[fold != k], c=c, detectors=detectors, version="fold"))
        for i in np.flatnonzero(fold == k):
            lg = m.logits({f: v[i] for f, v in features.items()})
            for d in detectors:
                per[d][i] = lg[d]
        if progress:
            progress(1)
    model = fit_synthetic(features, y, c=c, detectors=detectors, version=version)
    if "texture" in detectors:  # shift: only TEXTURE_REAL_FLAG of the real faces (out of fold) reach 0.5
        shift = float(np.quantile(per["texture"][y == 0], 1.0 - TEXTURE_REAL_FLAG))
        per["texture"] = per["texture"] - shift
        for d in model["detectors"]:
            if d["name"] == "texture":
                d["intercept"] -= shift
    oof = np.array([sigmoid(max(per[d][i] for d in detectors)) for i in range(len(y))])
    per = {d: np.array([sigmoid(v) for v in per[d]]) for d in detectors}
    ev = {
        "auc": auc(oof[y == 1], oof[y == 0]),
        "accuracy": float(np.mean((oof >= 0.5) == (y == 1))),
        "detected": float(np.mean(oof[y == 1] >= 0.5)),
        "real_flagged": float(np.mean(oof[y == 0] >= 0.5)),
        "synthetic": int(y.sum()),
        "real": int((y == 0).sum()),
        "folds": folds,
        "per_detector_auc": {d: auc(per[d][y == 1], per[d][y == 0]) for d in detectors},
        "oof": oof,
    }
    model["training"] = {**{k: v for k, v in ev.items() if k != "oof"}, "c": c, "detectors": list(detectors)}
    return model, ev
