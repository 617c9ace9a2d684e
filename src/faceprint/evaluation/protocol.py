"""Run verification protocols through an Engine: pair lists (k-fold accuracy, ROC,
TAR@FAR, EER) and calibration from labelled pairs or identity folders."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from faceprint.errors import CalibrationError
from faceprint.evaluation.pairs import Pair, embed_paths, identity_folders, pair_scores
from faceprint.metrics import verification as metrics
from faceprint.metrics.verification import CalibrationTable, build_calibration

Progress = Callable[[int], None]


@dataclass
class PairScores:
    pairs: list[Pair]
    scores: np.ndarray
    labels: np.ndarray
    folds: np.ndarray
    failures: dict[str, str]  # image path -> why it gave no template


def score_pairs(engine: Any, pairs: Sequence[Pair], *, face: str = "center", progress: Progress | None = None) -> PairScores:
    """Embed every distinct image of the pairs once (batched), then score each pair."""
    paths = sorted({p.a for p in pairs} | {p.b for p in pairs})
    vectors, errors = embed_paths(lambda ps: engine.embed_many(ps, face=face), paths, progress=progress)
    index = {p: i for i, p in enumerate(paths)}
    return PairScores(
        pairs=list(pairs),
        scores=pair_scores(pairs, index, vectors, errors),
        labels=np.array([p.same for p in pairs]),
        folds=np.array([p.fold for p in pairs]),
        failures={str(p): e for p, e in zip(paths, errors) if e is not None},
    )


def verification_report(ps: PairScores, *, fars: Sequence[float] = (1e-2, 1e-3)) -> dict[str, Any]:
    """k-fold accuracy (threshold chosen on the other folds), ROC AUC, EER, TAR@FAR."""
    gen, imp = ps.scores[ps.labels], ps.scores[~ps.labels]
    kf = metrics.kfold_accuracy(ps.scores, ps.labels, ps.folds)
    e, e_thr = metrics.eer(gen, imp)
    out: dict[str, Any] = {
        "pairs": int(len(ps.scores)),
        "genuine": int(len(gen)),
        "impostor": int(len(imp)),
        "folds": int(len(np.unique(ps.folds))),
        "accuracy_mean": kf["accuracy_mean"],
        "accuracy_std": kf["accuracy_std"],
        "fold_accuracies": kf["fold_accuracies"],
        "fold_thresholds": kf["thresholds"],
        "auc": metrics.auc(gen, imp),
        "eer": e,
        "eer_threshold": e_thr,
        "failures_to_enrol": len(ps.failures),
        "failed_images": dict(list(ps.failures.items())[:20]),
    }
    out.update(tar_entries(gen, imp, fars))
    return out


def tar_entries(gen: np.ndarray, imp: np.ndarray, fars: Sequence[float]) -> dict[str, Any]:
    """``tar_at_far_1e-3`` / ``threshold_at_far_1e-3`` per FAR, or None and a ``note_far_...``
    when the impostor pairs are too few to state that FAR."""
    out: dict[str, Any] = {}
    for far in fars:
        key = f"{far:.0e}".replace("e-0", "e-")
        try:
            tar, thr = metrics.tar_at_far(gen, imp, far)
            out[f"tar_at_far_{key}"] = tar
            out[f"threshold_at_far_{key}"] = thr
        except CalibrationError as exc:
            out[f"tar_at_far_{key}"] = None
            out[f"note_far_{key}"] = str(exc)
    return out


def write_report(report: dict[str, Any], ps: PairScores, out_dir: str | Path, *, title: str, label: str) -> dict[str, str]:
    """results.json, roc.png, det.png and a score histogram in ``out_dir``; returns the paths."""
    from faceprint.evaluation.plots import plot_det, plot_roc, plot_score_histogram

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    gen, imp = ps.scores[ps.labels], ps.scores[~ps.labels]
    fmr, tar, _ = metrics.roc(gen, imp)
    files = {
        "roc": str(plot_roc({f"{label} (AUC {report['auc']:.4f})": (fmr, tar)}, out / "roc.png", title=title)),
        "det": str(plot_det({label: (fmr, 1.0 - tar)}, out / "det.png", title=title)),
        "histogram": str(plot_score_histogram(gen, imp, out / "scores.png", thresholds={"EER": report["eer_threshold"]}, title=title)),
        "results": str(out / "results.json"),
    }
    (out / "results.json").write_text(json.dumps({**report, "files": files}, indent=1))
    return files


def all_pairs_scores(vectors: np.ndarray, ids: np.ndarray, valid: np.ndarray | None = None, groups: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Genuine and impostor cosine scores of every unordered pair of valid templates
    (n*(n-1)/2 pairs: 19 million for the 6,165 LFW-dev images), computed blockwise.

    ``groups`` (optional, one value per image) marks identities known to be the same
    person under different labels: pairs of different ids in one group are left out."""
    groups = ids if groups is None else groups
    if valid is not None:
        vectors, ids, groups = vectors[valid], ids[valid], groups[valid]
    n = len(vectors)
    gen: list[np.ndarray] = []
    imp: list[np.ndarray] = []
    block = 2048
    for s in range(0, n, block):
        sims = vectors[s : s + block] @ vectors.T  # (b, n)
        rows = np.arange(s, min(s + block, n))
        upper = np.arange(n)[None, :] > rows[:, None]
        same = ids[rows][:, None] == ids[None, :]
        other = groups[rows][:, None] != groups[None, :]
        gen.append(sims[upper & same])
        imp.append(sims[upper & other])
    return np.concatenate(gen).astype(np.float32), np.concatenate(imp).astype(np.float32)


def calibrate_folders(engine: Any, root: str | Path, *, name: str, progress: Progress | None = None) -> tuple[CalibrationTable, dict[str, Any]]:
    """Calibration from ``root/<identity>/<images>``: every same-identity pair is genuine,
    every different-identity pair an impostor."""
    paths, ids, names = identity_folders(root)
    vectors, errors = embed_paths(lambda ps: engine.embed_many(ps, face="largest"), paths, progress=progress)
    valid = np.array([e is None for e in errors])
    gen, imp = all_pairs_scores(vectors, ids, valid)
    if len(imp) == 0:
        raise CalibrationError("need images of at least two identities to measure false matches", source=str(root))
    table = build_calibration(
        gen, imp, name=name, model_id=engine.model_id, source=f"identity folders under {root}: {int(valid.sum())} images of {len(names)} identities"
    )
    return table, {"images": len(paths), "failed": int((~valid).sum()), "identities": len(names), "genuine": len(gen), "impostor": len(imp)}


def calibrate_pairs(engine: Any, pairs: Sequence[Pair], *, name: str, source: str, progress: Progress | None = None) -> tuple[CalibrationTable, dict[str, Any]]:
    """Calibration from labelled pairs (pairs with an unusable image are left out, not scored -1)."""
    ps = score_pairs(engine, pairs, face="largest", progress=progress)
    bad = {p for p in ps.failures}
    keep = np.array([str(p.a) not in bad and str(p.b) not in bad for p in ps.pairs])
    gen, imp = ps.scores[keep & ps.labels], ps.scores[keep & ~ps.labels]
    if len(imp) == 0:
        raise CalibrationError("the pairs contain no usable different-person pairs", source=source)
    table = build_calibration(gen, imp, name=name, model_id=engine.model_id, source=source)
    return table, {"pairs": len(pairs), "failed_images": len(bad), "genuine": len(gen), "impostor": len(imp)}
