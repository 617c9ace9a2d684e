"""Build the calibration table faceprint ships: threshold <-> false-match rate for the
default model, from ALL different-identity pairs of lfw-dev (about 19 million impostor
scores, enough to state FMRs down to 1e-6), not only the 1,500 of pairs.txt.

    .venv/bin/python scripts/build_calibration.py [--data DIR] [--out FILE] [--no-flip]

Writes src/faceprint/calibration/<model id>.json by default and prints a summary.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

import numpy as np  # noqa: E402

from faceprint import Engine, Settings  # noqa: E402
from faceprint.engine import shipped_calibration_path  # noqa: E402
from faceprint.evaluation.pairs import embed_paths, identity_folders, read_errata  # noqa: E402
from faceprint.evaluation.protocol import all_pairs_scores  # noqa: E402
from faceprint.metrics.verification import build_calibration  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=os.environ.get("FACEPRINT_DATA", str(REPO.parent / "shared" / "data")))
    ap.add_argument("--out", default=None)
    ap.add_argument("--no-flip", action="store_true")
    ap.add_argument("--errata", default=str(REPO / "scripts" / "lfw_errata.txt"), help="known label errors to leave out ('' for none)")
    ap.add_argument("--vectors", default=None, help="cache the templates in this .npz (reused when present)")
    ap.add_argument("--review", type=int, default=0, help="print the N highest-scoring impostor pairs (to find label errors)")
    args = ap.parse_args()
    root = Path(args.data) / "lfw-dev" / "images"
    engine = Engine(Settings.load(flip=not args.no_flip))
    paths, ids, names = identity_folders(root)
    t0 = time.perf_counter()
    done = [0]

    def progress(n: int) -> None:
        done[0] += n
        if done[0] % 640 < n:
            print(f"{done[0]}/{len(paths)} images, {time.perf_counter() - t0:.0f} s", file=sys.stderr)

    cache = Path(args.vectors) if args.vectors else None
    if cache and cache.is_file():
        saved = np.load(cache, allow_pickle=False)
        if str(saved["model_id"]) != engine.model_id or list(saved["paths"]) != [str(p) for p in paths]:
            sys.exit(f"{cache} holds templates of another model or image list; delete it")
        vectors, errors = saved["vectors"], [e or None for e in saved["errors"]]
    else:
        # LFW labels the face at the centre of each picture
        vectors, errors = embed_paths(lambda ps: engine.embed_many(ps, face="center"), paths, progress=progress)
        if cache:
            np.savez(cache, vectors=vectors, errors=np.array([e or "" for e in errors]), paths=np.array([str(p) for p in paths]), model_id=engine.model_id)
    group_of_identity, skip = read_errata(Path(args.errata), names) if args.errata else (np.arange(len(names)), set())
    valid = np.array([e is None and p.name not in skip for p, e in zip(paths, errors)])
    gen, imp = all_pairs_scores(vectors, ids, valid, groups=group_of_identity[ids])
    table = build_calibration(
        gen,
        imp,
        name="lfw-dev",
        model_id=engine.model_id,
        source=(
            f"scripts/build_calibration.py: every pair of {int(valid.sum())} lfw-dev images ({len(names)} identities, "
            f"{sum(e is not None for e in errors)} without a detected face and {len(skip)} mislabelled left out), face nearest the centre; "
            f"{len(imp):,} impostor and {len(gen):,} genuine pairs; cross pairs of identities listed as the same person in "
            f"scripts/lfw_errata.txt left out"
        ),
    )
    out = Path(args.out) if args.out else shipped_calibration_path(engine.model_id)
    table.save(out)
    if args.review:
        review_pairs(vectors, ids, valid, group_of_identity[ids], paths, args.review)
    summary = {
        "out": str(out),
        "model_id": table.model_id,
        "images": len(paths),
        "no_face": sum(e is not None for e in errors),
        "mislabelled_left_out": len(skip),
        "impostor_pairs": len(imp),
        "genuine_pairs": len(gen),
        "thresholds": {f"{f:g}": round(t, 5) for f, t in zip(table.fmr_grid, table.thresholds)},
        "fnmr": {f"{f:g}": round(x, 5) for f, x in zip(table.fmr_grid, table.fnmr)},
        "seconds": round(time.perf_counter() - t0, 1),
    }
    print(json.dumps(summary, indent=1))


def review_pairs(vectors: np.ndarray, ids: np.ndarray, valid: np.ndarray, groups: np.ndarray, paths: list[Path], n: int) -> None:
    """Print the n highest-scoring impostor pairs: label errors show up here first."""
    keep = np.flatnonzero(valid)
    sims = vectors[keep] @ vectors[keep].T
    impostor = (groups[keep][:, None] != groups[keep][None, :]) & np.triu(np.ones_like(sims, bool), 1)
    flat = np.flatnonzero(impostor)
    top = flat[np.argsort(-sims.flat[flat])[:n]]
    for k in top:
        i, j = np.unravel_index(k, sims.shape)
        print(f"{sims[i, j]:.3f}  {paths[keep[i]].name}  {paths[keep[j]].name}", file=sys.stderr)


if __name__ == "__main__":
    main()
