"""Fit the shipped synthetic-face model (synthetic-v2) on the shared data and write it.

    .venv/bin/python scripts/train_synthetic.py --data ../shared/data --out src/faceprint/forensics/synthetic-v2.json

The data sets are :func:`faceprint.evaluation.datasets.synthetic_training_sets`; the fitting
(every face also seen re-framed) is :func:`faceprint.forensics.training.train_reframed`, which
``faceprint train-synthetic`` runs on a user's own folders.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from faceprint.evaluation.datasets import synthetic_training_sets
from faceprint.forensics.training import train_reframed


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
    model, report = train_reframed(engine, gen_paths, real_paths, version=args.version, thumbnails=("sfhq-t2i",))
    Path(args.out).write_text(json.dumps(model, separators=(",", ":")))
    print(json.dumps({"training": model["training"], "report": report}, indent=1))


if __name__ == "__main__":
    main()
