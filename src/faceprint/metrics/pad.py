"""Presentation-attack detection metrics in ISO/IEC 30107-3 terms (NumPy only).

Scores are liveness scores (higher = more likely bona fide); a presentation is accepted as
bona fide at ``score >= threshold``.  APCER per attack type (PAI species) and overall (the
worst type's, 30107-3 clause 13.1.1), BPCER, ACER, BPCER at APCER 10% / 1%, the pooled DET,
ROC AUC (:func:`faceprint.metrics.verification.auc`: one Mann-Whitney primitive for
verification, PAD and synthetic-face reports).  Labels: :data:`BONA_FIDE` names the bona fide
class; every other label is an attack type.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from faceprint.errors import InputError
from faceprint.metrics.verification import auc

__all__ = ["APCER_TARGETS", "BONA_FIDE", "auc", "is_bona_fide", "iso_metrics", "threshold_at_apcer"]

BONA_FIDE = ("live", "bona_fide", "bonafide", "bona-fide", "real", "genuine")
APCER_TARGETS = (0.2, 0.1, 0.05, 0.01)


def is_bona_fide(label: str) -> bool:
    return label.strip().lower() in BONA_FIDE


def threshold_at_apcer(scores: np.ndarray, labels: Sequence[str], target: float) -> float:
    """The lowest threshold at which every attack type's APCER is at most ``target``."""
    lab = np.asarray(labels)
    thr = -np.inf
    for t in sorted({lb for lb in labels if not is_bona_fide(lb)}):
        s = np.sort(scores[lab == t])[::-1]
        allowed = int(np.floor(target * s.size + 1e-9))
        if allowed < s.size:
            thr = max(thr, float(np.nextafter(s[allowed], np.inf)))
    return float(thr)


def iso_metrics(scores: Sequence[float] | np.ndarray, labels: Sequence[str], *, threshold: float) -> dict[str, Any]:
    """APCER per attack type and overall, BPCER, ACER at ``threshold``; BPCER at APCER 10% / 1%;
    the DET curve; operating points (threshold for APCER 20/10/5/1%); ROC AUC."""
    s = np.asarray(scores, float)
    lab = list(labels)
    bona = np.array([is_bona_fide(lb) for lb in lab])
    if not bona.any() or bona.all():
        raise InputError("PAD metrics need both bona fide and attack presentations")
    types = sorted({lb for lb in lab if not is_bona_fide(lb)})
    la = np.asarray(lab)
    per_type = {t: {"presentations": int((la == t).sum()), "apcer": float(np.mean(s[la == t] >= threshold))} for t in types}
    apcer = max(v["apcer"] for v in per_type.values())
    bpcer = float(np.mean(s[bona] < threshold))
    out: dict[str, Any] = {
        "threshold": threshold,
        "bona_fide": int(bona.sum()),
        "attacks": int((~bona).sum()),
        "attack_types": per_type,
        "apcer": apcer,
        "bpcer": bpcer,
        "acer": (apcer + bpcer) / 2.0,
        "auc": auc(s[bona], s[~bona]),
    }
    out["bpcer_at_apcer"] = {}
    out["operating_points"] = []
    for target in APCER_TARGETS:
        t = threshold_at_apcer(s, lab, target)
        b = float(np.mean(s[bona] < t))
        if target in (0.1, 0.01):
            out["bpcer_at_apcer"][f"{target:.0%}"] = b
        out["operating_points"].append({"apcer": target, "threshold": t if np.isfinite(t) else None, "bpcer": b})
    # DET (pooled attacks): every distinct score as a threshold
    cand = np.unique(s)
    att = np.sort(s[~bona])
    bf = np.sort(s[bona])
    ap = 1.0 - np.searchsorted(att, cand, side="left") / att.size
    bp = np.searchsorted(bf, cand, side="left") / bf.size
    out["det"] = {"apcer": ap.tolist(), "bpcer": bp.tolist()}
    i = int(np.argmin(np.abs(ap - bp)))
    out["eer"] = float((ap[i] + bp[i]) / 2.0)
    return out
