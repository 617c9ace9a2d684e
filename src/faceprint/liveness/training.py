"""Training of the PAD model (:mod:`faceprint.liveness.pad` loads and scores it).

What only training needs lives here: the NumPy fitting primitives (:func:`standardise`,
:func:`fit_logistic`; :mod:`faceprint.forensics.training` uses them too), the two-class
logistic detectors and the one-class PCA model, leave-one-subject-out scoring, the stored
operating points and error curve, and the model as a JSON-able dict (``faceprint train-pad``
writes it).  Features come from :func:`faceprint.liveness.pad.features_of`, which evaluation
uses as well.  Everything is deterministic: Newton's method on the L2-regularised logistic
loss, PCA by SVD, no learning library.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from faceprint.errors import InputError
from faceprint.liveness.features import CAPTURE_NAMES
from faceprint.liveness.pad import FAMILIES, PadModel
from faceprint.metrics.pad import is_bona_fide, iso_metrics

__all__ = ["DEFAULT_C", "ONE_CLASS_QUANTILE", "PORTABLE_TEXTURE", "TEXTURE_CUES", "fit_logistic", "standardise", "train_pad"]

DEFAULT_C = 0.01  # inverse L2 regularisation of the detectors: chosen by the cross-source ACER (benchmarks/pad.py)
ONE_CLASS_QUANTILE = 0.99  # the one-class radius: this share of the bona fide training faces stay within it (score 0.5)

# The texture cues the texture detector reads, by name prefix.  "portable" leaves out the
# LBP histograms of the chroma and HSV channels: trained on three capture set-ups and tested
# on the one left out, they changed the mean ACER little (13.3% with, 14.5% without, at 0.5)
# but the model with them refused 90% of bona fide photos from cameras no source used (78%
# without) and the live sample photo -- they learn the set-ups' colour rendering.
PORTABLE_TEXTURE = ("lbp_y_", "spec_", "mom_", "specular", "log_sharpness")
TEXTURE_CUES = {"portable": PORTABLE_TEXTURE, "all": ("",)}

# The model's support (see faceprint.liveness.pad._Support): capture statistics between the
# bona fide training faces' SUPPORT_QUANTILE and 1 - SUPPORT_QUANTILE quantiles, widened by
# SUPPORT_MARGIN of that span (bona fide only: the BPCER a live person is promised was measured
# there -- in the shipped sources no live face is under 96 px across while a quarter of the
# webcam replays are, so a small live face was judged by what attacks look like); texture within the SUPPORT_RADIUS quantile of the training faces' distance in
# SUPPORT_COMPONENTS principal directions of the texture detector's features.
SUPPORT_QUANTILE = 0.005
SUPPORT_MARGIN = 0.25
SUPPORT_COMPONENTS = 5
SUPPORT_RADIUS = 0.999


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


def standardise(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-column mean and scale (standard deviation, 1 where a column is constant) of a
    training matrix: a model stores them and scores ``(x - mean) / scale``."""
    mean = x.mean(0)
    scale = x.std(0)
    scale[scale < 1e-9] = 1.0
    return mean, scale


def _cue_names(family: str, cues: Sequence[str]) -> list[str]:
    return [n for n in FAMILIES[family] if family != "texture" or n.startswith(tuple(cues))]


def _fit_two_class(feats: dict[str, np.ndarray], y: np.ndarray, c: float, families: Sequence[str], cues: Sequence[str]) -> list[dict[str, Any]]:
    out = []
    for fam in families:
        names = _cue_names(fam, cues)
        index = [FAMILIES[fam].index(n) for n in names]
        x = feats[fam][:, index]
        mean, scale = standardise(x)
        coef, b = fit_logistic((x - mean) / scale, y, c)
        det = {"name": fam, "family": fam, "mean": mean.tolist(), "scale": scale.tolist(), "coef": coef.tolist(), "intercept": b}
        if len(names) != len(FAMILIES[fam]):
            det["features"] = names
        out.append(det)
    return out


def _principal_radius(z: np.ndarray, components: int, quantile: float) -> tuple[np.ndarray, np.ndarray, float]:
    """The first ``components`` principal directions of standardised rows ``z`` (signs fixed, so
    training is deterministic), the variance along each, and the ``quantile`` of the rows'
    Mahalanobis distance in that subspace."""
    k = max(1, min(components, z.shape[0] - 1, z.shape[1]))
    _, _, vt = np.linalg.svd(z - z.mean(0), full_matrices=False)
    comp = vt[:k]
    comp *= np.where(comp[np.arange(k), np.abs(comp).argmax(1)] < 0, -1.0, 1.0)[:, None]
    proj = z @ comp.T
    var = proj.var(0) + 1e-9
    return comp, var, float(np.quantile(np.sqrt(np.sum(proj**2 / var, 1)), quantile))


SUPPORT_MIN_BONA_FIDE = 20  # fewer bona fide faces than this: the capture ranges are read over every training face


def _support(feats: dict[str, np.ndarray], detectors: list[dict[str, Any]], y: np.ndarray) -> dict[str, Any] | None:
    """Where the training captures lie (see ``SUPPORT_*`` and :class:`faceprint.liveness.pad._Support`):
    the capture statistics of the bona fide faces (``y == 0``), the texture of them all."""
    tex = next((d for d in detectors if d["family"] == "texture"), None)
    if tex is None or "capture" not in feats:
        return None
    live = y == 0
    cap = feats["capture"][live] if live.sum() >= SUPPORT_MIN_BONA_FIDE else feats["capture"]
    lo, hi = np.quantile(cap, SUPPORT_QUANTILE, axis=0), np.quantile(cap, 1 - SUPPORT_QUANTILE, axis=0)
    span = hi - lo
    names = tex.get("features") or list(FAMILIES["texture"])
    x = feats["texture"][:, [FAMILIES["texture"].index(n) for n in names]]
    comp, var, radius = _principal_radius((x - np.asarray(tex["mean"])) / np.asarray(tex["scale"]), SUPPORT_COMPONENTS, SUPPORT_RADIUS)
    return {
        "capture": {"names": list(CAPTURE_NAMES), "low": (lo - SUPPORT_MARGIN * span).tolist(), "high": (hi + SUPPORT_MARGIN * span).tolist()},
        "texture": {"detector": tex["name"], "components": comp.tolist(), "var": var.tolist(), "radius": radius},
        "measured_on": f"capture statistics of {len(cap)} {'bona fide ' if len(cap) < len(y) else ''}training faces, texture of {len(y)}",
    }


def _fit_one_class(feats: dict[str, np.ndarray], components: int) -> dict[str, Any]:
    x = np.hstack([feats["texture"], feats["context"]])
    mean, scale = standardise(x)
    comp, var, radius = _principal_radius((x - mean) / scale, components, ONE_CLASS_QUANTILE)
    return {
        "families": ["texture", "context"],
        "mean": mean.tolist(),
        "scale": scale.tolist(),
        "components": comp.tolist(),
        "var": var.tolist(),
        "radius": radius,
    }


def _model_dict(
    feats: dict[str, np.ndarray],
    y: np.ndarray,
    *,
    one_class: bool,
    c: float,
    components: int,
    version: str,
    families: Sequence[str],
    cues: Sequence[str] = PORTABLE_TEXTURE,
) -> dict[str, Any]:
    if one_class:
        live = y == 0
        return {"version": version, "mode": "one-class", "threshold": 0.5, "one_class": _fit_one_class({k: v[live] for k, v in feats.items()}, components)}
    detectors = _fit_two_class(feats, y, c, families, cues)
    model = {"version": version, "mode": "two-class", "threshold": 0.5, "detectors": detectors}
    support = _support(feats, detectors, y)
    if support:
        model["support"] = support
    return model


def _error_curve(scores: np.ndarray, labels: Sequence[str], points: int = 201) -> dict[str, list[float]]:
    """APCER (worst attack type) and BPCER at ``points`` thresholds evenly spread over 0-1."""
    lab = np.asarray(labels)
    bona = np.array([is_bona_fide(x) for x in labels])
    types = sorted({x for x in labels if not is_bona_fide(x)})
    ts = np.linspace(0.0, 1.0, points)
    apcer = [max(float(np.mean(scores[lab == t] >= th)) for t in types) for th in ts]
    bpcer = [float(np.mean(scores[bona] < th)) for th in ts]
    return {"threshold": [round(float(t), 4) for t in ts], "apcer": [round(a, 5) for a in apcer], "bpcer": [round(b, 5) for b in bpcer]}


def _source_acers(scores: np.ndarray, labels: Sequence[str], sources: Sequence[str], threshold: float) -> list[float]:
    """ACER (worst attack type) of each source that has both classes, at ``threshold``."""
    lab, src = np.asarray(labels), np.asarray(sources)
    bona = np.array([is_bona_fide(x) for x in labels])
    out = []
    for name in sorted(set(sources)):
        sel = (src == name) & ~np.isnan(scores)
        types = sorted({x for x in lab[sel] if not is_bona_fide(x)})
        if not types or not (sel & bona).any():
            continue
        apcer = max(float(np.mean(scores[sel & (lab == t)] >= threshold)) for t in types)
        out.append((apcer + float(np.mean(scores[sel & bona] < threshold))) / 2)
    return out


def _cross_source_threshold(scores: np.ndarray, labels: Sequence[str], sources: Sequence[str]) -> float:
    """The threshold for set-ups the model has not seen: the one (on a 0.025 grid) where the worst
    left-out source's ACER is lowest; ties go to the lower mean ACER, then to the one nearest 0.5."""
    best, key = 0.5, (9.0, 9.0, 9.0)
    for t in np.round(np.arange(0.05, 0.951, 0.025), 3):
        acers = _source_acers(scores, labels, sources, float(t))
        if acers and (k := (round(max(acers), 6), round(float(np.mean(acers)), 6), abs(t - 0.5))) < key:
            best, key = float(t), k
    return best


def train_pad(
    features: Sequence[dict[str, np.ndarray]],
    labels: Sequence[str],
    groups: Sequence[str],
    *,
    one_class: bool = False,
    c: float = DEFAULT_C,
    components: int = 20,
    version: str = "pad-custom",
    families: Sequence[str] = ("texture", "context"),
    progress: Callable[[int], None] | None = None,
    sources: Sequence[str] | None = None,
    texture_cues: str = "portable",
    threshold: float | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Fit a PAD model on per-face features.  ``labels``: ``live`` (or another bona fide
    name, see ``faceprint.metrics.pad.BONA_FIDE``) or the attack type; ``groups``: the subject of each face -- the
    out-of-group (leave-one-subject-out) scores measure the model on subjects it never saw
    and are returned with the model; the model itself is fitted on everything.  ``sources``:
    the capture set-up (data set) of each face; with two or more, each source is also scored
    by a model trained without it (leave-one-source-out, how the model does on a set-up it
    never saw), and the model's threshold (:func:`_cross_source_threshold`) and stated operating
    points come from those scores.
    ``texture_cues``: which texture features the texture detector reads (``TEXTURE_CUES``).
    ``threshold``: the model's threshold, and the one its figures are measured at (default:
    chosen across sources when there are several, else 0.5).

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
    if texture_cues not in TEXTURE_CUES:
        raise InputError(f"unknown texture cues {texture_cues!r}; known: {', '.join(TEXTURE_CUES)}")
    cues = TEXTURE_CUES[texture_cues]
    feats = {f: np.vstack([d[f] for d in features]) for f in FAMILIES}
    if all("capture" in d for d in features):
        feats["capture"] = np.vstack([d["capture"] for d in features])

    def out_of_group(keys: Sequence[str], step: Callable[[int], None] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Each face scored by a model fitted without its key (subject, or source), and whether
        it lies outside that model's support."""
        g = np.asarray(keys)
        oof = np.full(len(y), np.nan)
        outside = np.zeros(len(y), bool)
        for grp in sorted(set(keys)):
            held = g == grp
            if (y[~held] == 0).sum() < 5 or (not one_class and (y[~held] == 1).sum() < 5):
                continue
            fold = {f: v[~held] for f, v in feats.items()}
            m = PadModel(_model_dict(fold, y[~held], one_class=one_class, c=c, components=components, version="fold", families=families, cues=cues))
            for i in np.flatnonzero(held):
                one = {f: v[i] for f, v in feats.items()}
                oof[i] = m.score_features(one)
                outside[i] = bool(m.support_of(one))
            if step:
                step(1)
        return oof, outside

    uniq = sorted(set(groups))
    oof = out_of_group(groups, progress)[0] if len(uniq) >= 2 else np.full(len(y), np.nan)
    model = _model_dict(feats, y, one_class=one_class, c=c, components=components, version=version, families=families, cues=cues)
    ok = ~np.isnan(oof)
    names = sorted(set(sources)) if sources is not None else []
    if len(names) >= 2:
        cross, outside = out_of_group(list(sources))
        model["threshold"] = _cross_source_threshold(cross, labels, sources) if threshold is None else float(threshold)
    elif threshold is not None:
        model["threshold"] = float(threshold)
    evaluation: dict[str, Any] = {"groups": len(uniq), "scored": int(ok.sum()), "threshold": model["threshold"]}
    if ok.any() and (y[ok] == 0).any() and (y[ok] == 1).any():
        evaluation.update(iso_metrics(oof[ok], [lb for lb, o in zip(labels, ok) if o], threshold=model["threshold"]))
        model["operating_points"] = evaluation["operating_points"]
        model["error_curve"] = _error_curve(oof[ok], [lb for lb, o in zip(labels, ok) if o])
        if len(names) >= 2:  # the out-of-subject figures of each source (a subject's set-up may be its own)
            src = np.asarray(sources)
            evaluation["per_source"] = {}
            for name in names:
                sel = ok & (src == name)
                lab = [labels[i] for i in np.flatnonzero(sel)]
                if any(is_bona_fide(x) for x in lab) and not all(is_bona_fide(x) for x in lab):
                    m = iso_metrics(oof[sel], lab, threshold=model["threshold"])
                    evaluation["per_source"][name] = {k: m[k] for k in ("apcer", "bpcer", "acer", "auc")} | {"faces": int(sel.sum())}
    if len(names) >= 2:
        # the figure that travels: each source scored by a model that never saw it; the answers'
        # stated operating points and error curve come from these scores, and so did the threshold
        src = np.asarray(sources)
        per_source = {}
        for name in names:
            sel = (src == name) & ~np.isnan(cross)
            lab = [labels[i] for i in np.flatnonzero(sel)]
            if sel.any() and any(is_bona_fide(x) for x in lab) and not all(is_bona_fide(x) for x in lab):
                m = iso_metrics(cross[sel], lab, threshold=model["threshold"])
                wrong = (cross[sel] >= model["threshold"]) != np.array([is_bona_fide(x) for x in lab])
                low = outside[sel]
                per_source[name] = {k: m[k] for k in ("apcer", "bpcer", "acer", "auc", "attack_types")} | {
                    "faces": int(sel.sum()),
                    # how often the support check said "confidence: low" on a set-up the model never
                    # saw, and whether the decisions it flagged were in fact the wrong ones
                    "low_confidence": round(float(low.mean()), 4),
                    "error_when_confident": round(float(wrong[~low].mean()), 4) if (~low).any() else None,
                    "error_when_low_confidence": round(float(wrong[low].mean()), 4) if low.any() else None,
                }
        scored = ~np.isnan(cross)
        pooled = [labels[i] for i in np.flatnonzero(scored)]
        allm = iso_metrics(cross[scored], pooled, threshold=model["threshold"])
        acers = [v["acer"] for v in per_source.values()]
        evaluation["leave_one_source_out"] = {
            "sources": names,
            "per_source": per_source,
            "mean_acer": float(np.mean(acers)) if acers else None,
            "max_acer": float(np.max(acers)) if acers else None,
            "pooled": {k: allm[k] for k in ("apcer", "bpcer", "acer", "bpcer_at_apcer", "auc", "attack_types")},
        }
        model["operating_points"] = allm["operating_points"]
        model["error_curve"] = _error_curve(cross[scored], pooled)
        model["operating_points_measured"] = "leave-one-source-out: each source scored by a model trained without it"
    model["training"] = {
        "faces": len(y),
        "bona_fide": int((y == 0).sum()),
        "attacks": {t: int(sum(1 for lb in labels if lb == t)) for t in sorted({lb for lb in labels if not is_bona_fide(lb)})},
        "groups": len(uniq),
        "c": c,
        "components": components if one_class else None,
        "detectors": None if one_class else list(families),
        "texture_cues": None if one_class else texture_cues,
        "leave_one_group_out": {k: evaluation[k] for k in ("apcer", "bpcer", "acer", "bpcer_at_apcer", "auc") if k in evaluation},
        "measured_on": f"{len(y)} faces of {len(uniq)} subjects, each scored by a model trained without its subject",
    }
    if "leave_one_source_out" in evaluation:
        cross = evaluation["leave_one_source_out"]
        model["training"]["operating_points_from"] = f"{len(y)} faces of {len(names)} sources, each source scored by a model trained without it"
        model["training"]["leave_one_source_out"] = {
            "sources": cross["sources"],
            "mean_acer": cross["mean_acer"],
            "max_acer": cross["max_acer"],
            "per_source": {k: {m: v[m] for m in ("apcer", "bpcer", "acer", "auc", "faces", "low_confidence")} for k, v in cross["per_source"].items()},
        }
    return model, evaluation
