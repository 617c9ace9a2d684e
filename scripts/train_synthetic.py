"""Fit the shipped synthetic-face model (synthetic-v2) on the shared data and write it.

    .venv/bin/python scripts/train_synthetic.py --data ../shared/data --out src/faceprint/forensics/synthetic-v2.json

The data sets are :func:`faceprint.evaluation.datasets.synthetic_training_sets`; the fitting
(every face also seen re-framed) is :func:`faceprint.forensics.training.fit_reframed`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from faceprint.evaluation.datasets import synthetic_training_sets
from faceprint.forensics.training import fit_reframed, variant_features


def main(argv: Sequence[str] | None = None) -> None:
    """Fit the shipped synthetic-v2 on the shared data (``--data``), write it to ``--out``."""
    import argparse
    import json
    import os

    from faceprint import Engine

    ap = argparse.ArgumentParser(description="Fit synthetic-v2 (re-framed training) on the shared data.")
    ap.add_argument("--data", default=os.environ.get("FACEPRINT_DATA"), required=os.environ.get("FACEPRINT_DATA") is None)
    ap.add_argument("--out", required=True)
    ap.add_argument("--version", default="synthetic-v2")
    args = ap.parse_args(argv)
    engine = Engine()
    gen_paths, real_paths = synthetic_training_sets(Path(args.data))
    gen = {g: variant_features(engine, p, thumbnail_done=g == "sfhq-t2i") for g, p in gen_paths.items()}
    real = {r: variant_features(engine, p) for r, p in real_paths.items()}
    model = fit_reframed(gen, real, version=args.version)
    Path(args.out).write_text(json.dumps(model, separators=(",", ":")))
    print(json.dumps(model["training"], indent=1))


if __name__ == "__main__":
    main()
