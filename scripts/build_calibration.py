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
from faceprint.evaluation.metrics import build_calibration  # noqa: E402
from faceprint.evaluation.pairs import embed_paths, identity_folders  # noqa: E402
from faceprint.evaluation.protocol import all_pairs_scores  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=os.environ.get("FACEPRINT_DATA", str(REPO.parent / "shared" / "data")))
    ap.add_argument("--out", default=None)
    ap.add_argument("--no-flip", action="store_true")
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

    # LFW labels the face at the centre of each picture
    vectors, errors = embed_paths(lambda ps: engine.embed_many(ps, face="center"), paths, progress=progress)
    valid = np.array([e is None for e in errors])
    gen, imp = all_pairs_scores(vectors, ids, valid)
    table = build_calibration(
        gen,
        imp,
        name="lfw-dev",
        model_id=engine.model_id,
        source=(
            f"scripts/build_calibration.py: every pair of {int(valid.sum())} lfw-dev images ({len(names)} identities, "
            f"{int((~valid).sum())} without a detected face left out), face nearest the centre; "
            f"{len(imp):,} impostor and {len(gen):,} genuine pairs"
        ),
    )
    out = Path(args.out) if args.out else shipped_calibration_path(engine.model_id)
    table.save(out)
    summary = {
        "out": str(out),
        "model_id": table.model_id,
        "images": len(paths),
        "failed": int((~valid).sum()),
        "impostor_pairs": len(imp),
        "genuine_pairs": len(gen),
        "thresholds": {f"{f:g}": round(t, 5) for f, t in zip(table.fmr_grid, table.thresholds)},
        "fnmr": {f"{f:g}": round(x, 5) for f, x in zip(table.fmr_grid, table.fnmr)},
        "seconds": round(time.perf_counter() - t0, 1),
    }
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
