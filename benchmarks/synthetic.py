"""How well does the synthetic-face check work, and does it read the generator or the file?

Generated faces: ``synthetic/stylegan3`` (150 PNG, 256 px) and ``synthetic/generated-photos``
(200 JPEG, 512 px).  Real faces: an even spread of ``lfw-dev`` (250 px news JPEGs) and the
real sample photos (deepface, face_recognition examples, dlib examples).  Every face goes
through the detector's normalisation (aligned, resampled to one size, blurred, re-encoded at
one JPEG quality: :func:`faceprint.liveness.synthetic.normalised_crop`).

* Per generator: 5-fold cross-validation over files (stratified, deterministic), that
  generator against the real faces: ROC AUC and accuracy at 0.5.
* Cross-generator: train on one generator against half of the real faces, test on the
  other generator against the other half.
* File-history control: the shipped model's scores for real faces against the *same* faces
  enlarged 2x and saved as PNG, and for StyleGAN3 faces against the same faces halved and
  saved as JPEG q85: an AUC near 0.5 means resolution and compression alone do not move the
  score.
* Identity-aware check: lfw-dev people with >= 5 photos; 4 are references; the 5th photo of
  the same person (genuine), a photo of another person (impostor) and a generated face
  (synthetic) are scored by :func:`identity_consistency`: share flagged as outliers.

    .venv/bin/python benchmarks/synthetic.py [--data DIR] [--real N] [--every N] [--people N]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np
from _common import data_dir, emit, machine


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=None)
    ap.add_argument("--real", type=int, default=700, help="lfw-dev photos used as real faces")
    ap.add_argument("--every", type=int, default=1, help="use every N-th generated face (smoke runs)")
    ap.add_argument("--people", type=int, default=120, help="lfw-dev people for the identity-aware check")
    args = ap.parse_args()
    data = data_dir(args.data)

    from faceprint import Engine
    from faceprint.evaluation.pad import auc, read_labels
    from faceprint.imaging import IMAGE_EXTENSIONS
    from faceprint.liveness.synthetic import SyntheticModel, fit, identity_consistency, load_synthetic_model, synthetic_features, synthetic_set_features, train

    engine = Engine()
    gens = {g: [it.path for it in read_labels(data / "synthetic" / g / "labels.csv")][:: args.every] for g in ("stylegan3", "generated-photos")}
    lfw = sorted((data / "lfw-dev" / "images").rglob("*.jpg"))
    lfw = [lfw[int(i)] for i in np.floor(np.arange(min(args.real, len(lfw))) * (len(lfw) / min(args.real, len(lfw))))]
    sample_real = [p for sub in ("deepface", "face-recognition-examples", "dlib-landmarks") for p in sorted((data / "samples" / sub).rglob("*")) if p.suffix.lower() in IMAGE_EXTENSIONS]
    sets = {**gens, "real": lfw + sample_real}
    feats = {}
    for name, paths in sets.items():
        x, _, failed = synthetic_set_features(engine, paths)
        feats[name] = x
    xr = feats["real"]
    per_gen, cross = {}, {}
    for g in gens:
        x = np.vstack([feats[g], xr])
        y = np.r_[np.ones(len(feats[g])), np.zeros(len(xr))].astype(int)
        _, ev = train(x, y.astype(bool).tolist())
        per_gen[g] = {"auc": ev["auc"], "accuracy": ev["accuracy"], "synthetic": ev["synthetic"], "real": ev["real"], "protocol": "5-fold over files"}
    half = np.arange(len(xr)) % 2 == 0
    for g1, g2 in (("stylegan3", "generated-photos"), ("generated-photos", "stylegan3")):
        m = SyntheticModel(fit(np.vstack([feats[g1], xr[half]]), np.r_[np.ones(len(feats[g1])), np.zeros(half.sum())].astype(int)))
        ps = np.array([m.score_features(v) for v in feats[g2]])
        pr = np.array([m.score_features(v) for v in xr[~half]])
        cross[f"train {g1} -> test {g2}"] = {"auc": auc(ps, pr), "accuracy": float((np.sum(ps >= 0.5) + np.sum(pr < 0.5)) / (len(ps) + len(pr))),
                                             "synthetic_detected": float(np.mean(ps >= 0.5)), "real_flagged": float(np.mean(pr >= 0.5))}

    # file-history control with the shipped model
    shipped = load_synthetic_model()

    def rescored(paths: list[Path], scale: float, ext: str, params: list[int]) -> tuple[np.ndarray, np.ndarray]:
        a, b = [], []
        for p in paths:
            img = engine.load(p)
            dets = engine.detector.detect(img)
            if not dets:
                continue
            a.append(shipped.score_features(synthetic_features(img, max(dets, key=lambda d: d.area))))
            px = cv2.resize(img.pixels, (round(img.width * scale), round(img.height * scale)), interpolation=cv2.INTER_CUBIC if scale > 1 else cv2.INTER_AREA)
            ok, buf = cv2.imencode(ext, cv2.cvtColor(px, cv2.COLOR_RGB2BGR), params)
            img2 = engine.load(buf.tobytes())
            d2 = engine.detector.detect(img2)
            if d2:
                b.append(shipped.score_features(synthetic_features(img2, max(d2, key=lambda d: d.area))))
        return np.array(a), np.array(b)

    ra, rb = rescored(lfw[::10], 2.0, ".png", [])
    sa, sb = rescored(gens["stylegan3"][::3], 0.5, ".jpg", [cv2.IMWRITE_JPEG_QUALITY, 85])
    control = {
        "real_vs_real_2x_png": {"auc": auc(rb, ra), "mean_score": float(ra.mean()), "mean_score_resaved": float(rb.mean()), "faces": len(ra)},
        "stylegan3_vs_halved_jpeg85": {"auc": auc(sa, sb), "mean_score": float(sa.mean()), "mean_score_resaved": float(sb.mean()), "faces": len(sa)},
    }

    # identity-aware check
    people = sorted(d for d in (data / "lfw-dev" / "images").iterdir() if d.is_dir() and len(list(d.glob("*.jpg"))) >= 5)[: args.people]
    vecs = {}
    for d in people:
        ts = engine.embed_many(sorted(d.glob("*.jpg"))[:5], face="center")
        if all(not isinstance(t, Exception) for t in ts):
            vecs[d.name] = np.stack([t.vector for t in ts])
    names = sorted(vecs)
    syn_vecs = [t.vector for t in engine.embed_many(gens["stylegan3"][:60] + gens["generated-photos"][:60]) if not isinstance(t, Exception)]
    flags = {"genuine": [], "impostor": [], "synthetic": []}
    zs = {"genuine": [], "impostor": [], "synthetic": []}
    for i, n in enumerate(names):
        refs = vecs[n][:4]
        for kind, v in (("genuine", vecs[n][4]), ("impostor", vecs[names[(i + 1) % len(names)]][4]), ("synthetic", syn_vecs[i % len(syn_vecs)])):
            r = identity_consistency(v, refs)
            flags[kind].append(r.outlier)
            zs[kind].append(r.z)
    identity = {k: {"flagged_as_outlier": float(np.mean(v)), "median_z": float(np.median(zs[k])), "n": len(v)} for k, v in flags.items()}
    identity["people"] = len(names)
    res = {
        "benchmark": "synthetic",
        "faces": {k: len(v) for k, v in feats.items()},
        "per_generator": per_gen,
        "cross_generator": cross,
        "file_history_control": control,
        "identity_aware": identity,
        "shipped_model": {"version": shipped.version, "training": {k: shipped.meta.get(k) for k in ("auc", "accuracy", "synthetic", "real")}},
        "passes": {
            "auc_per_generator_at_least_0_8": all(v["auc"] >= 0.8 for v in per_gen.values()),
            "cross_generator_auc_above_chance": all(v["auc"] > 0.6 for v in cross.values()),
            "file_history_control_near_chance": all(abs(v["auc"] - 0.5) <= 0.15 for v in control.values()),
            "identity_check_flags_impostors_not_genuine": identity["impostor"]["flagged_as_outlier"] > 0.8 and identity["genuine"]["flagged_as_outlier"] < 0.1,
        },
        "machine": machine(),
    }
    emit(res)


if __name__ == "__main__":
    main()
