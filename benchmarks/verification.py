"""LFW-dev verification accuracy with the default models.

5-fold protocol on lfw-dev/pairs.txt (3,000 pairs): for each fold the accuracy
threshold is chosen on the other four folds and tested on it.  Prints JSON with
mean accuracy, TAR@FAR=1e-3 (and 1e-2), EER, ROC AUC and failures to enrol.

    .venv/bin/python benchmarks/verification.py [--data DIR] [--limit N] [--out DIR]
"""

from __future__ import annotations

import argparse
import time

from _common import data_dir, emit, machine

from faceprint import Engine
from faceprint.evaluation.pairs import limit_pairs, read_lfw_pairs
from faceprint.evaluation.protocol import score_pairs, verification_report, write_report


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", help="shared data folder (default $FACEPRINT_DATA or ../shared/data)")
    ap.add_argument("--limit", type=int, default=None, help="pairs per fold and class (smoke runs); default all 300")
    ap.add_argument("--out", default=None, help="also write results.json, roc.png, scores.png here")
    args = ap.parse_args()
    root = data_dir(args.data) / "lfw-dev"
    pairs = read_lfw_pairs(root / "pairs.txt", root / "images")
    if args.limit:
        pairs = limit_pairs(pairs, args.limit)
    engine = Engine()
    t0 = time.perf_counter()
    ps = score_pairs(engine, pairs, face="center")
    report = verification_report(ps)
    result = {
        "benchmark": "verification",
        "dataset": "lfw-dev pairs.txt",
        "protocol": f"{report['folds']}-fold, threshold chosen on the other folds",
        "model_id": engine.model_id,
        "detector": engine.detector.model_id,
        "accuracy_mean": round(report["accuracy_mean"], 5),
        "accuracy_std": round(report["accuracy_std"], 5),
        "tar_at_far_1e-3": report["tar_at_far_1e-3"],
        "tar_at_far_1e-2": report["tar_at_far_1e-2"],
        "eer": round(report["eer"], 5),
        "auc": round(report["auc"], 6),
        "pairs": report["pairs"],
        "failures_to_enrol": report["failures_to_enrol"],
        "fold_accuracies": report["fold_accuracies"],
        "seconds": round(time.perf_counter() - t0, 1),
        "machine": machine(),
    }
    if args.out:
        result["files"] = write_report(report, ps, args.out, title="lfw-dev 5-fold", label=engine.model_id)
    emit(result)


if __name__ == "__main__":
    main()
