"""Does quality assessment cut errors?  Error-versus-reject on lfw-dev pairs with one image degraded.

Every lfw-dev pair (pairs.txt, 5 folds) keeps its first image clean; its second is
degraded deterministically (kind cycling through faceprint.quality.degrade.KINDS,
strength drawn from a generator seeded by the pair's index).  Each image's centre
face is detected, aligned, embedded (the default model) and assessed; the unified
score comes from the shipped model's **fold model trained without the pair's
identity fold** (people.txt folds: no identity is both trained on and evaluated).
A pair's quality is the lower of its two faces'.  Pairs where a face was not found
in an image are failures to acquire: counted and reported (also as FNMR counting
them as non-matches), but not part of the curves -- every quality measure would
reject them first and the curves would only show the detector.

For the unified score, every component and random rejection (mean of 200
shuffles): FNMR at the threshold the shipped calibration gives for FMR = 1e-3,
after rejecting the lowest-quality 0-30 % of the genuine pairs (Grother & Tabassi's
error-versus-reject curve; component ties are broken by the component's raw value,
so coarse scores get their best chance).  Also the time quality adds per face
(component measures + unified model; the template already exists), median of
several runs, against the embedding time per face measured in the same run.

    .venv/bin/python benchmarks/quality.py [--data DIR] [--pairs-per-fold N] [--plot quality-erc.png] [--workers 2]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from _common import data_dir, emit, machine

FRACTIONS = [0.0, 0.02, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3]
_engine: Any = None
_model: Any = None


def _init() -> None:
    import cv2

    cv2.setNumThreads(1)
    global _engine, _model
    from faceprint import Engine, Settings
    from faceprint.quality import load_model

    _engine = Engine(Settings.load())
    _model = load_model()


def _analyse(job: tuple[str, str, float, int, int]) -> dict[str, Any] | None:
    """One image: (path, degradation, strength, seed, fold) -> vector, quality, timings."""
    from faceprint.errors import NoFaceError
    from faceprint.imaging import load_image
    from faceprint.quality.degrade import degrade
    from faceprint.types import Image

    path, kind, strength, seed, fold = job
    pixels = load_image(path).pixels
    if kind != "none":
        pixels = degrade(pixels, kind, strength, seed)
    try:
        image, det, crop = _engine.locate(Image(pixels=pixels, source=path), face="center")
    except NoFaceError:
        return None
    t0 = time.perf_counter()
    vec = _engine.embedder.embed([crop])[0]
    t_embed = time.perf_counter() - t0
    trees = _model.folds.get(fold)
    if trees is None:
        raise SystemExit(f"the quality model has no fold model for fold {fold}")
    t0 = time.perf_counter()
    q = _model.assess(image.size, det, crop, vector=vec, model_id=_engine.model_id, trees=trees)
    t_quality = time.perf_counter() - t0
    return {
        "vector": vec,
        "unified": q.unified,
        "components": {k: (c.score, c.raw) for k, c in q.components.items()},
        "t_embed": t_embed,
        "t_quality": t_quality,
    }


def _timing(jobs: list[tuple[str, str, float, int, int]], runs: int) -> dict[str, float]:
    """Median per-face cost of quality (measures + unified) and of embedding, in this process."""
    from faceprint.errors import NoFaceError

    if _engine is None:  # not loaded yet in this process (--workers 1 analysed the images here already)
        _init()
    faces = []
    for path, *_ in jobs:
        try:
            image, det, crop = _engine.locate(path, face="center")
        except NoFaceError:
            continue
        faces.append((image, det, crop, _engine.embedder.embed([crop])[0]))
    q_runs, e_runs = [], []
    for _ in range(runs):
        tq, te = [], []
        for image, det, crop, vec in faces:
            t0 = time.perf_counter()
            _model.assess(image.size, det, crop, vector=vec, model_id=_engine.model_id)
            tq.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            _engine.embedder.embed([crop])
            te.append(time.perf_counter() - t0)
        q_runs.append(float(np.median(tq)))
        e_runs.append(float(np.median(te)))
    q, e = float(np.median(q_runs)), float(np.median(e_runs))
    return {
        "faces": len(faces),
        "runs": runs,
        "quality_ms_per_face": round(1000 * q, 3),
        "quality_ms_runs": [round(1000 * v, 3) for v in q_runs],
        "embed_ms_per_face": round(1000 * e, 3),
        "quality_over_embed": round(q / e, 3),
    }


# the raw value's direction for tie-breaks: higher is better (+1), lower is better (-1), or a target
_RAW_GOOD = {
    "interocular": 1,
    "face_size": 1,
    "yaw": -1,
    "pitch": -1,
    "roll": -1,
    "sharpness": 1,
    "clipping": -1,
    "contrast": 1,
    "detector": 1,
    "recognizability": 1,
}


def _raw_goodness(name: str, raw: float | None) -> float:
    if raw is None:
        return -np.inf
    if name == "exposure":
        return -abs(raw - 130.0)
    return _RAW_GOOD[name] * (abs(raw) if name in ("yaw", "pitch", "roll") else raw)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=None)
    ap.add_argument("--pairs-per-fold", type=int, default=None, help="same and different pairs per fold (smoke runs); default all 300")
    ap.add_argument("--plot", default="results/quality-erc.png", help="the error-versus-reject plot (PNG)")
    ap.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1), help="worker processes for the per-image analysis (1: in this process)")
    ap.add_argument("--timing-faces", type=int, default=200)
    ap.add_argument("--timing-runs", type=int, default=5)
    ap.add_argument("--cache", default=None, help="keep the per-image analysis in this .npz (re-used when present)")
    args = ap.parse_args()

    from faceprint import Engine, Settings
    from faceprint.evaluation.pairs import limit_pairs, read_lfw_pairs
    from faceprint.evaluation.plots import plot_erc
    from faceprint.metrics.verification import error_versus_reject
    from faceprint.quality import COMPONENTS, load_model
    from faceprint.quality.degrade import KINDS

    lfw = data_dir(args.data) / "lfw-dev"
    pairs = read_lfw_pairs(lfw / "pairs.txt", lfw / "images")
    if args.pairs_per_fold:
        pairs = limit_pairs(pairs, args.pairs_per_fold)
    model = load_model()
    jobs: list[tuple[str, str, float, int, int]] = []
    degr: list[tuple[str, float]] = []
    for i, p in enumerate(pairs):
        rng = np.random.default_rng(10_000 + i)
        kind, strength = KINDS[i % len(KINDS)], float(rng.uniform(0.0, 1.0))
        degr.append((kind, strength))
        jobs.append((str(p.a), "none", 0.0, 0, p.fold + 1))
        jobs.append((str(p.b), kind, strength, int(rng.integers(2**31)), p.fold + 1))

    t0 = time.time()
    n_img = len(jobs)
    cache = Path(args.cache) if args.cache else None
    if cache and cache.is_file():
        z = np.load(cache)
        if len(z["ok"]) != n_img:
            sys.exit(f"{cache} holds {len(z['ok'])} images, this run has {n_img}: delete it")
        ok, V, U, S, R = z["ok"], z["V"], z["U"], z["S"], z["R"]
    else:
        if args.workers <= 1:
            _init()
            res = [_analyse(job) for job in jobs]
        else:
            import multiprocessing as mp

            with ProcessPoolExecutor(args.workers, mp_context=mp.get_context("spawn"), initializer=_init) as pool:
                res = list(pool.map(_analyse, jobs, chunksize=8))
        ok = np.array([r is not None for r in res])
        dim = next((len(r["vector"]) for r in res if r is not None), 128)
        V = np.stack([r["vector"] if r else np.zeros(dim, np.float32) for r in res])
        U = np.array([r["unified"] if r else -1 for r in res], np.float64)
        S = np.array([[np.nan if (r is None or r["components"][k][0] is None) else r["components"][k][0] for k in COMPONENTS] for r in res], np.float64)
        R = np.array([[np.nan if (r is None or r["components"][k][1] is None) else r["components"][k][1] for k in COMPONENTS] for r in res], np.float64)
        if cache:
            np.savez_compressed(cache, ok=ok, V=V, U=U, S=S, R=R)
    extract_s = time.time() - t0
    engine = Engine(Settings.load())
    threshold = engine.calibration.threshold_for(1e-3)

    same = np.array([p.same for p in pairs])
    a, b = np.arange(0, n_img, 2), np.arange(1, n_img, 2)
    found = ok[a] & ok[b]  # pairs where both faces were found; the others are failures to acquire
    score = np.where(found, np.sum(V[a] * V[b], axis=1), -1.0)
    q: dict[str, np.ndarray] = {"unified": np.minimum(U[a], U[b])}
    tb: dict[str, np.ndarray] = {}
    for j, k in enumerate(COMPONENTS):
        ga = np.array([_raw_goodness(k, None if np.isnan(x) else float(x)) for x in R[a, j]])
        gb = np.array([_raw_goodness(k, None if np.isnan(x) else float(x)) for x in R[b, j]])
        sa, sb = np.nan_to_num(S[a, j], nan=-1.0), np.nan_to_num(S[b, j], nan=-1.0)
        a_worse = (sa < sb) | ((sa == sb) & (ga <= gb))
        q[k] = np.where(a_worse, sa, sb)
        tb[k] = np.where(a_worse, ga, gb)
    no_face = int((~found).sum())
    fnmr_with_fta = float(np.mean(score[same] < threshold))
    g = same & found  # the error-versus-reject curve is over comparisons that happened
    curves: dict[str, list[float]] = {}
    curves["unified"] = error_versus_reject(score[g], q["unified"][g], threshold, FRACTIONS).tolist()
    for k in COMPONENTS:
        curves[k] = error_versus_reject(score[g], q[k][g], threshold, FRACTIONS, tiebreak=tb[k][g]).tolist()
    rng = np.random.default_rng(0)
    rand = np.mean([error_versus_reject(score[g], rng.random(int(g.sum())), threshold, FRACTIONS) for _ in range(200)], axis=0)
    curves["random"] = rand.tolist()

    i10 = FRACTIONS.index(0.1)
    base = curves["unified"][0]

    def cut(name: str) -> float:
        return round(1.0 - curves[name][i10] / base, 4) if base > 0 else 0.0

    best_component = max(COMPONENTS, key=cut)
    plot = plot_erc(
        FRACTIONS,
        {("unified (held-out folds)" if k == "unified" else k): v for k, v in curves.items()},
        args.plot,
        title="Error vs reject: lfw-dev pairs, one image degraded",
        highlight="unified (held-out folds)",
        baseline="random",
        ylabel=f"FNMR at FMR 1e-3 (threshold {threshold:.3f}), %",
    )
    timing = _timing([j for j in jobs if j[1] == "none"][: args.timing_faces], args.timing_runs)
    kinds_fnmr = {}
    for kind in KINDS:
        m = g & np.array([d[0] == kind for d in degr])
        kinds_fnmr[kind] = {
            "fnmr": round(float(np.mean(score[m] < threshold)), 4) if m.any() else None,
            "genuine_pairs_without_a_face": int((same & ~found & np.array([d[0] == kind for d in degr])).sum()),
        }
    res_out = {
        "benchmark": "quality",
        "machine": machine(),
        "pairs": len(pairs),
        "genuine_pairs": int(g.sum()),
        "pairs_without_a_face": no_face,
        "genuine_pairs_without_a_face": int((same & ~found).sum()),
        "fnmr_counting_failures_to_acquire": round(fnmr_with_fta, 4),
        "quality_model": model.version,
        "embedder": engine.model_id,
        "fmr": 1e-3,
        "threshold": round(threshold, 5),
        "calibration": engine.calibration.name,
        "fractions": FRACTIONS,
        "fnmr": {k: [round(v, 4) for v in c] for k, c in curves.items()},
        "fnmr_cut_at_10pct": {k: cut(k) for k in curves},
        "fnmr_by_degradation_no_rejection": kinds_fnmr,
        "best_component": best_component,
        "plot": str(plot),
        "timing": timing,
        "extract_seconds": round(extract_s, 1),
    }
    res_out["passes"] = {
        "unified_cuts_fnmr_40pct_at_10pct": cut("unified") >= 0.40,
        "unified_beats_random": cut("unified") > cut("random"),
        "unified_beats_every_component": cut("unified") > cut(best_component),
        "quality_at_most_3ms_per_face": timing["quality_ms_per_face"] <= 3.0,
    }
    emit(res_out)


if __name__ == "__main__":
    sys.exit(main())
