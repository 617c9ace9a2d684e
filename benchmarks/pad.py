"""How well does single-image presentation-attack detection work?  ISO/IEC 30107-3 figures on
NUAA, by subject, and the three sample attack photos.

* NUAA (``pad/nuaa-train``, 9 subjects, live vs printed-photo attacks): leave-one-subject-out
  -- for each subject, a model trained on the other eight scores that subject's faces; APCER,
  BPCER and ACER at the model's threshold (0.5), BPCER at APCER = 10% and 1%, EER and ROC AUC
  over the pooled out-of-subject scores.  For the fused model (texture + context, the
  shipped configuration), each detector alone, and the one-class model (trained on live
  faces only).
* ``samples/pad``: image_F1 (printed poster), image_F2 (screen replay), image_T1 (live) scored
  by the shipped model (``pad-v1.json``) and by the model this run trains on all of NUAA.
* Time: PAD features + scoring per face against embedding per face (SFace + flip), median of
  ``--timing-runs`` runs over the same faces, in the same run.

    .venv/bin/python benchmarks/pad.py [--data DIR] [--every N] [--timing-runs 5] [--timing-faces 20]
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np
from _common import data_dir, emit, machine

SAMPLES = {"image_F1.jpg": "spoof_print", "image_F2.jpg": "spoof_screen", "image_T1.jpg": "live"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=None)
    ap.add_argument("--every", type=int, default=1, help="use every N-th NUAA image (smoke runs)")
    ap.add_argument("--timing-runs", type=int, default=5)
    ap.add_argument("--timing-faces", type=int, default=20, help="faces the timing runs over (an even spread of the NUAA faces)")
    args = ap.parse_args()
    data = data_dir(args.data)

    from faceprint import Engine, Settings
    from faceprint.evaluation.pad import read_labels
    from faceprint.liveness.pad import PadModel, features_of, load_pad_model, pad_features
    from faceprint.liveness.training import train_pad as train

    engine = Engine(Settings.load(min_face_score=0.5))
    items = read_labels(data / "pad" / "nuaa-train" / "labels.csv")[:: args.every]
    t0 = time.perf_counter()
    feats, kept, failed = features_of(engine, items)
    t_feat = time.perf_counter() - t0
    labels = [it.label for it in kept]
    groups = [it.group for it in kept]

    def figures(ev: dict[str, Any]) -> dict[str, Any]:
        return {k: ev[k] for k in ("apcer", "bpcer", "acer", "bpcer_at_apcer", "eer", "auc", "attack_types")}

    configs: dict[str, dict[str, Any]] = {
        "fused (texture + context)": {},
        "texture only": {"families": ("texture",)},
        "context only": {"families": ("context",)},
        "one-class (live faces only)": {"one_class": True},
    }
    loso: dict[str, Any] = {}
    models: dict[str, dict[str, Any]] = {}
    for name, kw in configs.items():
        model, ev = train(feats, labels, groups, **kw)
        loso[name] = figures(ev)
        models[name] = model

    sample_dir = data / "samples" / "pad"
    shipped = load_pad_model()
    trained = PadModel(models["fused (texture + context)"])
    samples = {}
    for fname, truth in SAMPLES.items():
        image = engine.load(sample_dir / fname)
        det = max(engine.detector.detect(image), key=lambda d: d.area)
        f = pad_features(image, det)
        a, b = shipped.assess_features(f), trained.assess_features(f)
        samples[fname] = {
            "truth": truth,
            "shipped": {"live": a.live, "score": round(a.score, 4), "detectors": {k: round(v, 4) for k, v in a.detectors.items()}},
            "trained_here": {"live": b.live, "score": round(b.score, 4)},
            "correct": a.live == (truth == "live"),
        }

    # timing: PAD vs embedding, per face, on the same faces
    timing_imgs = []
    for it in kept[:: max(1, len(kept) // args.timing_faces)][: args.timing_faces]:
        img = engine.load(it.path)
        timing_imgs.append((img, max(engine.detector.detect(img), key=lambda d: d.area)))
    pad_ms, emb_ms = [], []
    for _ in range(args.timing_runs):
        t = time.perf_counter()
        for img, det in timing_imgs:
            engine.liveness_of(img, det)
        pad_ms.append((time.perf_counter() - t) * 1000 / len(timing_imgs))
        t = time.perf_counter()
        for img, det in timing_imgs:
            engine.embed_crops([engine.align(img, det)])
        emb_ms.append((time.perf_counter() - t) * 1000 / len(timing_imgs))
    fused = loso["fused (texture + context)"]
    res = {
        "benchmark": "pad",
        "data": "pad/nuaa-train" + (f" (every {args.every}th image)" if args.every > 1 else ""),
        "faces": len(kept),
        "bona_fide": sum(1 for lb in labels if lb == "live"),
        "attacks": sum(1 for lb in labels if lb != "live"),
        "no_face": len(failed),
        "subjects": len(set(groups)),
        "protocol": "leave-one-subject-out, threshold 0.5",
        "leave_one_subject_out": loso,
        "samples": samples,
        "shipped_model": {"version": shipped.version, "training": shipped.meta.get("leave_one_group_out")},
        "timing": {
            "pad_ms_per_face": float(np.median(pad_ms)),
            "embed_ms_per_face": float(np.median(emb_ms)),
            "ratio_pad_to_embed": float(np.median(pad_ms) / np.median(emb_ms)),
            "faces": len(timing_imgs),
            "runs": args.timing_runs,
            "feature_extraction_s_all": round(t_feat, 1),
        },
        "passes": {
            "acer_at_most_5pct": fused["acer"] <= 0.05,
            "bpcer_at_apcer10_at_most_5pct": fused["bpcer_at_apcer"]["10%"] <= 0.05,
            "samples_all_correct": all(s["correct"] for s in samples.values()),
        },
        "machine": machine(),
    }
    emit(res)


if __name__ == "__main__":
    main()
