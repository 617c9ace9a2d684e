"""Train the unified face-quality model and write the shipped model file.

Deterministic: the same data and packages give the same file.

1. **Samples.**  Every lfw-dev image, clean, plus ``--copies`` degraded copies
   (kind and strength drawn from a generator seeded by the file's name; see
   :mod:`faceprint.quality.degrade`).  Each is detected (the face nearest the
   centre: LFW's labelled face), aligned, embedded with the default model, and
   measured (the component raw values, the landmarks normalised to the box).
2. **Target** -- a face's usefulness for recognition: the mean cosine similarity
   of its template to the clean templates of the *other* images of the same
   person (identities with one image carry no target and are left out).
3. **Recognizability.**  The centre of unrecognisable faces is the normalised
   mean template of clean aligned crops shrunk to 6 x 6 pixels and enlarged back
   (every third image); a face's recognizability is 1 - its cosine to that centre.
4. **Models.**  Gradient-boosted regression trees (scikit-learn, depth 3), with
   and without recognizability, trained on all five identity folds of
   ``people.txt`` (the shipped model) and, for the benchmark, once per fold on
   the other four (``folds``: held-out predictions for identities the model
   never saw).  ``unified`` maps a prediction onto 0-100 between the mean
   similarity of strangers (0) and the 95th percentile of clean faces' targets
   (100).

    .venv/bin/python scripts/train_quality.py [--data DIR] [--out PATH] [--cache features.npz] [--workers 2] [--copies 2] [--limit N]

Needs scikit-learn (``pip install -e '.[train]'``); the model file it writes is
read with NumPy alone.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import zlib
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from faceprint.quality.degrade import KINDS  # noqa: E402 (after the sys.path line above)
from faceprint.quality.model import BASE_FEATURES, LANDMARK_FEATURES, MODEL_PATH  # noqa: E402

DEPTH, TREES, RATE = 3, 300, 0.05
_engine: Any = None


def read_folds(lfw: Path) -> dict[str, int]:
    """identity -> fold (1..5) from people.txt."""
    lines = (lfw / "people.txt").read_text().split("\n")
    out: dict[str, int] = {}
    i, fold = 1, 0
    while i < len(lines) and fold < int(lines[0]):
        n = int(lines[i])
        fold += 1
        for line in lines[i + 1 : i + 1 + n]:
            out[line.split("\t")[0]] = fold
        i += 1 + n
    return out


def plan(images: list[Path], copies: int) -> list[tuple[str, str, float, int]]:
    """(path, kind, strength, seed) for every sample; kind 'none' is the clean image."""
    jobs = []
    for p in images:
        seed = zlib.crc32(f"{p.parent.name}/{p.name}".encode())
        rng = np.random.default_rng(seed)
        jobs.append((str(p), "none", 0.0, seed))
        for _ in range(copies):
            jobs.append((str(p), KINDS[int(rng.integers(len(KINDS)))], float(rng.uniform(0.0, 1.0)), int(rng.integers(2**31))))
    return jobs


def _init() -> None:
    import cv2

    cv2.setNumThreads(1)
    global _engine
    from faceprint import Engine, Settings

    _engine = Engine(Settings.load())


def analyse(pixels: np.ndarray, source: str = "<array>", ui: bool = False) -> dict[str, Any] | None:
    """Detect (centre face), align, embed and measure one image; None without a face."""
    import cv2

    from faceprint.errors import NoFaceError
    from faceprint.quality.components import measure
    from faceprint.types import FaceCrop, Image

    e = _engine
    try:
        image, det, crop = e.locate(Image(pixels=pixels, source=source), face="center")
    except NoFaceError:
        return None
    crops = [crop]
    if ui:  # an unrecognisable version of the same face
        tiny = cv2.resize(crop.pixels, (6, 6), interpolation=cv2.INTER_AREA)
        crops.append(FaceCrop(np.ascontiguousarray(cv2.resize(tiny, crop.pixels.shape[1::-1], interpolation=cv2.INTER_LINEAR)), det, crop.transform))
    vecs = e.embedder.embed(crops)
    comps = measure(image.size, det, crop)
    from faceprint.quality.model import feature_vector

    return {"features": feature_vector(comps, det, recognizability=False), "vector": vecs[0], "ui": vecs[1] if ui else None}


def _job(job: tuple[str, str, float, int, bool]) -> dict[str, Any] | None:
    path, kind, strength, seed, ui = job
    from faceprint.imaging import load_image
    from faceprint.quality.degrade import degrade

    pixels = load_image(path).pixels
    if kind != "none":
        pixels = degrade(pixels, kind, strength, seed)
    return analyse(pixels, path, ui)


def extract(jobs: list[tuple[str, str, float, int]], workers: int) -> list[dict[str, Any] | None]:
    tagged = [(*j, j[1] == "none" and i % 3 == 0) for i, j in enumerate(jobs)]
    out: list[dict[str, Any] | None] = []
    t0 = time.time()
    if workers <= 1:
        _init()
        for k, j in enumerate(tagged):
            out.append(_job(j))
            if k % 500 == 0:
                print(f"  {k}/{len(jobs)} samples, {time.time() - t0:.0f} s", file=sys.stderr)
        return out
    import multiprocessing as mp

    with ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn"), initializer=_init) as pool:
        for k, r in enumerate(pool.map(_job, tagged, chunksize=16)):
            out.append(r)
            if k % 1000 == 0:
                print(f"  {k}/{len(jobs)} samples, {time.time() - t0:.0f} s", file=sys.stderr)
    return out


def targets(identity: np.ndarray, image: np.ndarray, clean: np.ndarray, V: np.ndarray, ok: np.ndarray) -> np.ndarray:
    """Mean cosine of each sample to the clean templates of its person's other images (nan: none)."""
    y = np.full(len(V), np.nan)
    by_person: dict[str, list[int]] = {}
    for i in np.flatnonzero(clean & ok):
        by_person.setdefault(str(identity[i]), []).append(int(i))
    for i in np.flatnonzero(ok):
        refs = [j for j in by_person.get(str(identity[i]), []) if image[j] != image[i]]
        if refs:
            y[i] = float(np.mean(V[refs] @ V[i]))
    return y


def heap_trees(model: Any, n_features: int) -> dict[str, Any]:
    """scikit-learn GradientBoostingRegressor -> the heap layout of faceprint.quality.model.Trees."""
    n_int = 2**DEPTH - 1
    feats, thrs, leaves = [], [], []
    for est in model.estimators_[:, 0]:
        t = est.tree_
        feat = np.zeros(n_int, np.int64)
        thr = np.full(n_int, 1e308)
        leaf = np.zeros(n_int + 1)

        def fill(node: int, pos: int, d: int, t: Any = t, feat: np.ndarray = feat, thr: np.ndarray = thr, leaf: np.ndarray = leaf) -> None:
            if d == DEPTH:
                leaf[pos - n_int] = float(t.value[node][0][0])
                return
            if t.children_left[node] == -1:  # a leaf above full depth: both branches lead to it
                fill(node, 2 * pos + 1, d + 1)
                fill(node, 2 * pos + 2, d + 1)
                return
            feat[pos], thr[pos] = int(t.feature[node]), float(t.threshold[node])
            fill(int(t.children_left[node]), 2 * pos + 1, d + 1)
            fill(int(t.children_right[node]), 2 * pos + 2, d + 1)

        fill(0, 0, 0)
        feats.append(feat.tolist())
        thrs.append([float(f"{v:.6g}") for v in thr])
        leaves.append([float(f"{v:.6g}") for v in leaf])
    return {
        "depth": DEPTH,
        "n_features": n_features,
        "learning_rate": RATE,
        "base": float(model.init_.constant_[0][0]),
        "feature": feats,
        "threshold": thrs,
        "leaf": leaves,
    }


def fit(X: np.ndarray, y: np.ndarray) -> Any:
    from sklearn.ensemble import GradientBoostingRegressor

    return GradientBoostingRegressor(n_estimators=TREES, max_depth=DEPTH, learning_rate=RATE, subsample=0.8, min_samples_leaf=20, random_state=0).fit(X, y)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=os.environ.get("FACEPRINT_DATA", str(REPO.parent / "shared" / "data")))
    ap.add_argument("--out", default=str(MODEL_PATH))
    ap.add_argument("--cache", default=None, help="keep the extracted features in this .npz (re-used when present)")
    ap.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    ap.add_argument("--copies", type=int, default=2, help="degraded copies per image")
    ap.add_argument("--limit", type=int, default=None, help="only the first N identities (smoke runs)")
    args = ap.parse_args()
    lfw = Path(args.data) / "lfw-dev"
    if not (lfw / "people.txt").is_file():
        sys.exit(f"lfw-dev not found under {args.data}: pass --data or set FACEPRINT_DATA")
    folds = read_folds(lfw)
    names = sorted(folds)[: args.limit] if args.limit else sorted(folds)
    images = [p for n in names for p in sorted((lfw / "images" / n).glob("*.jpg"))]
    jobs = plan(images, args.copies)

    if args.cache and Path(args.cache).is_file():
        z = np.load(args.cache, allow_pickle=False)
        X, V, U, ok, has_ui = z["X"], z["V"], z["U"], z["ok"], z["has_ui"]
        if len(X) != len(jobs):
            sys.exit(f"{args.cache} holds {len(X)} samples, this run plans {len(jobs)}: delete it")
    else:
        print(f"extracting {len(jobs)} samples from {len(images)} images with {args.workers} workers", file=sys.stderr)
        res = extract(jobs, args.workers)
        nf = len(BASE_FEATURES) + len(LANDMARK_FEATURES)
        ok = np.array([r is not None for r in res])
        X = np.stack([r["features"] if r else np.full(nf, np.nan) for r in res])
        V = np.stack([r["vector"] if r else np.zeros(128, np.float32) for r in res]).astype(np.float32)
        has_ui = np.array([r is not None and r["ui"] is not None for r in res])
        U = np.stack([r["ui"] if (r and r["ui"] is not None) else np.zeros(V.shape[1], np.float32) for r in res]).astype(np.float32)
        if args.cache:
            np.savez_compressed(args.cache, X=X, V=V, U=U, ok=ok, has_ui=has_ui)

    identity = np.array([Path(j[0]).parent.name for j in jobs])
    image = np.array([j[0] for j in jobs])
    kind = np.array([j[1] for j in jobs])
    clean = kind == "none"
    fold = np.array([folds[n] for n in identity])
    y = targets(identity, image, clean, V, ok)
    usable = ok & ~np.isnan(y)
    if usable.sum() < 2 or len(set(identity[usable].tolist())) < 2:
        sys.exit(f"only {int(usable.sum())} usable samples from {len(set(identity[usable].tolist()))} identities: too few to fit a model (raise --limit)")
    # strangers: mean similarity of clean templates of different people (the 0 anchor)
    rng = np.random.default_rng(0)
    ci = np.flatnonzero(clean & ok)
    a, b = rng.choice(ci, 20000), rng.choice(ci, 20000)
    diff = identity[a] != identity[b]
    stranger = float(np.mean(np.sum(V[a[diff]] * V[b[diff]], axis=1)))

    def train(mask: np.ndarray) -> dict[str, Any]:
        ui = U[mask & has_ui].mean(axis=0)
        ui = ui / np.linalg.norm(ui)
        rec = 1.0 - V @ ui
        lo = float(np.median(1.0 - U[mask & has_ui] @ ui))
        hi = float(np.median(rec[mask & clean & ok]))
        m = mask & usable
        Xr = np.column_stack([X, rec])
        return {"ui": ui, "range": (lo, hi), "with": fit(Xr[m], y[m]), "without": fit(X[m], y[m]), "rec": rec}

    t0 = time.time()
    final = train(np.ones(len(jobs), bool))
    nf = X.shape[1]
    out: dict[str, Any] = {
        "version": "fq-1",
        "embedder": _embedder_id(),
        "created": datetime.now(UTC).strftime("%Y-%m-%d"),
        "trained_on": {
            "data": "lfw-dev (all 5 identity folds of people.txt)",
            "images": len(images),
            "samples": int(usable.sum()),
            "copies_per_image": args.copies,
            "degradations": list(KINDS),
            "identities": len(names),
        },
        "target": "mean cosine similarity to the clean templates of the other images of the same person",
        "features": list(BASE_FEATURES) + list(LANDMARK_FEATURES) + ["recognizability"],
        "ui_centre": [float(f"{v:.6g}") for v in final["ui"]],
        "recognizability_range": [round(final["range"][0], 5), round(final["range"][1], 5)],
        "unified_anchors": [round(stranger, 5), round(float(np.percentile(y[usable & clean], 95)), 5)],
        "final": {"with_recognizability": heap_trees(final["with"], nf + 1), "without_recognizability": heap_trees(final["without"], nf)},
        "folds": {},
    }
    metrics: dict[str, Any] = {}
    for k in sorted(set(fold.tolist())):
        if args.limit and not (fold == k).any():
            continue
        if not ((fold != k) & usable).any():  # (a --limit run) every usable sample sits in this fold: nothing to fit it on
            print(f"fold {k}: no usable sample outside it, no held-out model", file=sys.stderr)
            continue
        mdl = train(fold != k)
        out["folds"][str(k)] = heap_trees(mdl["with"], nf + 1)
        held = (fold == k) & usable
        if held.any():
            pred = mdl["with"].predict(np.column_stack([X, mdl["rec"]])[held])
            metrics[str(k)] = {
                "held_out_samples": int(held.sum()),
                "r2": round(1 - float(np.mean((pred - y[held]) ** 2) / np.var(y[held])), 4),
                "spearman": round(_spearman(pred, y[held]), 4),
            }
    out["metrics"] = {"held_out_by_fold": metrics, "fit_seconds": round(time.time() - t0, 1)}
    Path(args.out).write_text(json.dumps(out, separators=(",", ":")) + "\n")
    print(
        json.dumps(
            {
                "out": args.out,
                "bytes": Path(args.out).stat().st_size,
                "samples": int(usable.sum()),
                "no_face": int((~ok).sum()),
                "anchors": out["unified_anchors"],
                "recognizability_range": out["recognizability_range"],
                **out["metrics"],
            },
            indent=1,
        )
    )


def _embedder_id() -> str:
    from faceprint import Engine, Settings

    return Engine(Settings.load()).model_id


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    return float(np.corrcoef(ra, rb)[0, 1])


if __name__ == "__main__":
    main()
