"""Photo library on lfw-dev: indexing speed, re-run speed, and clustering quality vs an Immich-style baseline.

1. Copies nothing: indexes ``lfw-dev/images`` (or the first --identities folders,
   linked into a temp folder) into a fresh library with ``faceprint index``'s code
   path (worker processes), timing it; then indexes the unchanged folder again.
2. Evaluates the grouping the index run produced (incremental clustering of all
   new faces), and a full re-clustering, against the identity folders.  Each
   photo's labelled face is the one nearest the image centre (LFW's convention);
   other faces (bystanders) take part in clustering but not in the scores.  A
   face that belongs to nobody counts as a cluster of its own.  Known label
   errors (scripts/lfw_errata.txt: aliases, mislabelled photos) are corrected;
   scores without the correction are reported too.
3. Baseline in the same run, on the same embeddings: DBSCAN as Immich runs it
   (a face is a core point with >= 3 faces, itself included, within cosine
   distance 0.5; noise = its own cluster).

Scores: pairwise precision / recall / F1 and BCubed precision / recall / F1.

    .venv/bin/python benchmarks/clustering.py [--data DIR] [--identities N] [--workers N]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import ERRATA, data_dir, emit, lfw_folder, library_truth, machine

from faceprint import Engine
from faceprint.library import ClusterParams, Library, pairwise_scores


def dbscan(vectors: np.ndarray, max_distance: float = 0.5, min_faces: int = 3, block: int = 2048) -> np.ndarray:
    """Cluster labels (noise: each its own negative label) of DBSCAN on cosine distance."""
    n = len(vectors)
    nbrs: list[np.ndarray] = []
    for lo in range(0, n, block):
        s = vectors[lo : lo + block] @ vectors.T
        nbrs.extend(np.flatnonzero(row >= 1.0 - max_distance) for row in s)
    core = np.array([len(x) >= min_faces for x in nbrs])
    label = np.full(n, -1, np.int64)
    c = 0
    for i in range(n):
        if label[i] >= 0 or not core[i]:
            continue
        label[i] = c
        stack = [i]
        while stack:
            p = stack.pop()
            if not core[p]:
                continue
            for q in nbrs[p]:
                if label[q] < 0:
                    label[q] = c
                    stack.append(int(q))
        c += 1
    noise = np.flatnonzero(label < 0)
    label[noise] = -1 - np.arange(len(noise))
    return label


def rounded(d: dict[str, float]) -> dict[str, float]:
    return {k: round(v, 4) for k, v in d.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=None)
    ap.add_argument("--identities", type=int, default=None, help="only the first N identity folders (smoke runs)")
    ap.add_argument("--workers", type=int, default=None, help="indexing worker processes (default: one per core)")
    ap.add_argument("--errata", default=str(ERRATA), help="known LFW label errors ('' for none): aliases share a label, mislabelled photos are left out")
    args = ap.parse_args()
    root = data_dir(args.data) / "lfw-dev" / "images"
    with tempfile.TemporaryDirectory() as tmp:
        folder = lfw_folder(root, args.identities, Path(tmp))
        engine = Engine()
        with Library(Path(tmp) / "library.db", engine) as lib:
            t0 = time.perf_counter()
            first, result = lib.index(folder, workers=args.workers)
            t_first = time.perf_counter() - t0
            t0 = time.perf_counter()
            second, _ = lib.index(folder, workers=args.workers)
            t_second = time.perf_counter() - t0

            faces = lib.store.faces(with_vectors=True)
            position = {f.id: k for k, f in enumerate(faces)}
            truths = {"raw": library_truth(lib, None), "errata": library_truth(lib, Path(args.errata)) if args.errata else None}
            truth_map = truths["errata"] or truths["raw"]
            labelled = sorted(position[i] for i in truth_map)
            truth = [truth_map[faces[k].id] for k in labelled]

            def scores_of(person: list[int | None], which: str = "errata") -> dict[str, float]:
                tm = truths[which] or truths["raw"]
                ks = sorted(position[i] for i in tm)
                pred = [person[k] if person[k] is not None else f"alone-{faces[k].id}" for k in ks]
                return rounded(pairwise_scores(pred, [tm[faces[k].id] for k in ks]))

            incremental = scores_of([f.person_id for f in faces])
            incremental_raw = scores_of([f.person_id for f in faces], "raw")
            t0 = time.perf_counter()
            lib.cluster(recluster=True)
            t_recluster = time.perf_counter() - t0
            faces2 = {f.id: f.person_id for f in lib.store.faces()}
            full = scores_of([faces2[f.id] for f in faces])
            vecs = np.stack([f.vector for f in faces]).astype(np.float32)
            t0 = time.perf_counter()
            base_labels = dbscan(vecs)
            t_dbscan = time.perf_counter() - t0
            baseline = scores_of([int(x) for x in base_labels])
            baseline_raw = scores_of([int(x) for x in base_labels], "raw")
            counts = lib.store.counts()
    params = ClusterParams()
    res = {
        "benchmark": "clustering",
        "machine": machine(),
        "data": str(folder if not args.identities else f"{root} (first {args.identities} identities)"),
        "photos": first.files,
        "faces": len(faces),
        "labelled_faces": len(labelled),
        "identities": len(set(truth)),
        "index": {
            "first_run_s": round(t_first, 2),
            "photos_per_s": round(first.files / t_first, 2),
            "second_run_s": round(t_second, 3),
            "second_over_first": round(t_second / t_first, 4),
            "errors": len(first.errors),
            "workers": args.workers or os.cpu_count(),
        },
        "params": {
            "link_fmr": params.link_fmr,
            "attach_fmr": params.attach_fmr,
            "min_quality": params.min_quality,
            "min_faces": params.min_faces,
            "knn": params.knn,
            "link_threshold": round(result.link_threshold, 4) if result else None,
        },
        "faceprint_incremental": {**incremental, "people": counts["people"]},
        "faceprint_full_recluster": {**full, "seconds": round(t_recluster, 2)},
        "without_errata": {"faceprint_incremental": incremental_raw, "baseline_immich_dbscan": baseline_raw},
        "errata": args.errata or None,
        "baseline_immich_dbscan": {**baseline, "seconds": round(t_dbscan, 2), "max_distance": 0.5, "min_faces": 3},
        "targets": {"pairwise_precision": 0.99, "pairwise_f1": 0.975, "second_over_first": 0.10},
    }
    res["met"] = (
        incremental["pairwise_precision"] >= 0.99
        and incremental["pairwise_f1"] >= 0.975
        and incremental["pairwise_precision"] > baseline["pairwise_precision"]
        and incremental["pairwise_f1"] > baseline["pairwise_f1"]
        and res["index"]["second_over_first"] < 0.10
    )
    emit(res)


if __name__ == "__main__":
    main()
