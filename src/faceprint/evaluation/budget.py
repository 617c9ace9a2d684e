"""Accuracy against a per-image time budget across configurations (in the spirit of
WebFace260M's time-constrained protocol): for each configuration, the wall time per image
of the whole pipeline (decode, detect, align, embed, quality) and its verification accuracy
on the same pairs; then, for each budget, the most accurate configuration that fits."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from faceprint.errors import CalibrationError, FaceprintError, InputError
from faceprint.evaluation.html import HtmlReport
from faceprint.evaluation.pairs import Pair, embed_paths, pair_scores
from faceprint.metrics import verification as metrics

__all__ = ["CONFIGS", "budget_report"]

# (name, settings changes)
CONFIGS: list[tuple[str, dict[str, Any]]] = [
    ("SFace + flip, detector 640", {"embedder": "sface-2021dec-int8bq", "flip": True, "detect_max_side": 640}),
    ("SFace, detector 640", {"embedder": "sface-2021dec-int8bq", "flip": False, "detect_max_side": 640}),
    ("SFace + flip, detector 160", {"embedder": "sface-2021dec-int8bq", "flip": True, "detect_max_side": 160}),
    ("SFace, detector 160", {"embedder": "sface-2021dec-int8bq", "flip": False, "detect_max_side": 160}),
    ("dlib ResNet + flip", {"embedder": "dlib-resnet-v1", "flip": True, "detect_max_side": 640}),
    ("dlib ResNet", {"embedder": "dlib-resnet-v1", "flip": False, "detect_max_side": 640}),
]
FUSION = ("SFace + flip, detector 640", "dlib ResNet + flip")
BUDGETS_MS = (25.0, 50.0, 100.0, 200.0, 400.0)


def _fuse(a: np.ndarray, b: np.ndarray, labels: np.ndarray, folds: np.ndarray) -> np.ndarray:
    """Sum of z-normalised scores; each fold normalised with the other folds' impostors."""
    out = np.empty_like(a)
    for f in np.unique(folds):
        train = (folds != f) & ~labels
        za = (a[folds == f] - a[train].mean()) / max(a[train].std(), 1e-9)
        zb = (b[folds == f] - b[train].mean()) / max(b[train].std(), 1e-9)
        out[folds == f] = (za + zb) / 2
    return out


def _scores(engine: Any, pairs: Sequence[Pair], progress: Callable[[int], None] | None) -> tuple[np.ndarray, float, int]:
    """Pair scores (-1 where an image has no face) and wall seconds per image."""
    paths = sorted({p.a for p in pairs} | {p.b for p in pairs})
    engine.embed_many(paths[:2], face="center")  # load the models outside the timing
    t0 = time.perf_counter()
    vectors, errors = embed_paths(lambda ps: engine.embed_many(ps, face="center"), paths, progress=progress)
    per_image = (time.perf_counter() - t0) / max(1, len(paths))
    return pair_scores(pairs, {p: i for i, p in enumerate(paths)}, vectors, errors), per_image, sum(e is not None for e in errors)


def _row(name: str, scores: np.ndarray, labels: np.ndarray, folds: np.ndarray, ms: float, failed: int) -> dict[str, Any]:
    kf = metrics.kfold_accuracy(scores, labels, folds)
    row: dict[str, Any] = {
        "config": name,
        "ms_per_image": ms,
        "accuracy": kf["accuracy_mean"],
        "accuracy_std": kf["accuracy_std"],
        "eer": metrics.eer(scores[labels], scores[~labels])[0],
        "failures_to_enrol": failed,
    }
    try:
        row["tar_at_far_1e-2"] = metrics.tar_at_far(scores[labels], scores[~labels], 1e-2)[0]
    except CalibrationError:
        row["tar_at_far_1e-2"] = None
    return row


def budget_report(
    settings: Any,
    pairs: Sequence[Pair],
    out_dir: str | Path,
    *,
    configs: Sequence[str] | None = None,
    progress: Callable[[str, int], Callable[[int], None]] | None = None,
    title: str = "Accuracy against time budget",
) -> dict[str, Any]:
    from faceprint.engine import Engine
    from faceprint.evaluation.plots import plot_lines
    from faceprint.evaluation.reports import write
    from faceprint.models.registry import get_spec

    if not pairs:
        raise InputError("no pairs to evaluate")
    labels = np.array([p.same for p in pairs])
    folds = np.array([p.fold for p in pairs])
    chosen = [c for c in CONFIGS if configs is None or c[0] in configs]
    rows, skipped, raw = [], {}, {}
    n_img = len({p.a for p in pairs} | {p.b for p in pairs})
    for name, change in chosen:
        spec = get_spec(change["embedder"])
        if not spec.to_dict()["available"]:
            skipped[name] = f"{spec.id} is not installed (pip install {spec.pip})"
            continue
        engine = Engine(settings.replace(**change))
        try:
            s, per_image, failed = _scores(engine, pairs, progress(name, n_img) if progress else None)
        except FaceprintError as exc:  # e.g. the dlib package present but unusable
            skipped[name] = str(exc)
            continue
        raw[name] = (s, per_image)
        rows.append(_row(name, s, labels, folds, 1000 * per_image, failed))
    if all(f in raw for f in FUSION):
        (a, ta), (b, tb) = raw[FUSION[0]], raw[FUSION[1]]
        rows.append(_row(" & ".join(FUSION) + " (score fusion)", _fuse(a, b, labels, folds), labels, folds, 1000 * (ta + tb), 0))
    if not rows:
        raise InputError("no configuration could run: " + "; ".join(skipped.values()))
    best = []
    for budget in BUDGETS_MS:
        fit = [r for r in rows if r["ms_per_image"] <= budget]
        top = max(fit, key=lambda r: (r["accuracy"], -r["ms_per_image"])) if fit else None  # ties: the faster
        best.append({"budget_ms": budget, "best": top["config"] if top else None, "accuracy": top["accuracy"] if top else None})
    res: dict[str, Any] = {
        "kind": "budget",
        "pairs": len(pairs),
        "images": n_img,
        "configs": rows,
        "skipped": skipped,
        "best_within_budget": best,
        "note": "time = wall time per image of the whole pipeline on this machine, one process; the fusion's time is the sum of both configurations'",
    }
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    res["files"] = {
        "budget": str(
            plot_lines(
                {r["config"]: ([r["ms_per_image"]], [r["accuracy"]]) for r in rows},
                out / "budget.png",
                title="Accuracy vs time per image",
                xlabel="ms per image (log)",
                ylabel="k-fold accuracy",
                xlog=True,
                marker="o",
            )
        )
    }
    r = HtmlReport(title, subtitle=f"time budget · {len(pairs)} pairs, {n_img} images")
    r.table(
        ["configuration", "ms / image", "accuracy", "± std", "EER", "TAR at FAR 1e-2", "no face"],
        [[x["config"], x["ms_per_image"], x["accuracy"], x["accuracy_std"], x["eer"], x["tar_at_far_1e-2"], x["failures_to_enrol"]] for x in rows],
    )
    r.table(["budget (ms / image)", "most accurate within it", "accuracy"], [[b["budget_ms"], b["best"] or "— (none fits)", b["accuracy"]] for b in best])
    if skipped:
        r.note("Not run: " + "; ".join(f"{k}: {v}" for k, v in skipped.items()))
    r.para(res["note"])
    r.figure(res["files"]["budget"], "Accuracy against time per image")
    return write(out, res, r)
