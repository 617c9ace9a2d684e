"""How well does the synthetic-face check work, and does it read the generator or the source?

Generated faces: ``synthetic/stylegan3`` (150 PNG, 256 px) and ``synthetic/generated-photos``
(200 JPEG, 512 px).  Real faces from three sources: an even spread of ``lfw-dev`` (250 px news
JPEGs), NUAA live webcam frames (``pad/nuaa-train``, every 2nd) and the real sample photos
(deepface, face_recognition and dlib examples).  Models are fitted in-process with both
detectors (max-fused; texture shifted to flag 1% of the training's real faces); figures are
given for the fused score and for each detector alone.  The shipped model
(``synthetic-v1.json``) is the layout detector alone: see ``passes`` and the README for why.

* ``within``: 5-fold cross-validation over files, each generator against all real faces.
* ``real_source_held_out``: trained on half of a generator's faces against two real sources,
  tested on the other half against the third source (photos of a kind never seen as real).
* ``cross_generator``: trained on one generator (against half of the real faces), tested on
  the other generator (against the other half).
* ``reframed``: generated faces and lfw-dev photos cropped to a random 60-90% window (the
  generator's framing lost) scored by a model trained on uncropped faces.
* ``file_history_control``: real faces against the same faces enlarged 2x and saved as PNG;
  StyleGAN3 faces against the same faces halved and saved as JPEG q85 (shipped model).
* ``identity_aware``: lfw-dev people with >= 5 photos; 4 are references; the 5th photo of the
  same person (genuine), a photo of another person (impostor) and a generated face are scored
  by ``identity_consistency``: share flagged as outliers.

    .venv/bin/python benchmarks/synthetic.py [--data DIR] [--real N] [--every N] [--people N]
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from _common import data_dir, emit, machine

GENS = ("stylegan3", "generated-photos")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=None)
    ap.add_argument("--real", type=int, default=700, help="lfw-dev photos used as real faces")
    ap.add_argument("--every", type=int, default=1, help="use every N-th generated face, NUAA frame and sample photo (smoke runs)")
    ap.add_argument("--people", type=int, default=120, help="lfw-dev people for the identity-aware check")
    args = ap.parse_args()
    data = data_dir(args.data)

    from faceprint import Engine
    from faceprint.evaluation.pad import auc, read_labels
    from faceprint.forensics.synthetic import (
        FAMILIES,
        SyntheticModel,
        load_synthetic_model,
        synthetic_features,
        synthetic_set_features,
    )
    from faceprint.forensics.training import train_synthetic as train
    from faceprint.gallery.consistency import identity_consistency
    from faceprint.media import is_image
    from faceprint.types import Image

    engine = Engine()
    gens = {g: [it.path for it in read_labels(data / "synthetic" / g / "labels.csv")][:: args.every] for g in GENS}
    lfw = sorted((data / "lfw-dev" / "images").rglob("*.jpg"))
    n = min(args.real, len(lfw))
    lfw = [lfw[int(i)] for i in np.floor(np.arange(n) * (len(lfw) / n))]
    nuaa = [it.path for it in read_labels(data / "pad" / "nuaa-train" / "labels.csv") if it.label == "live"][:: 2 * args.every]
    samples = [p for sub in ("deepface", "face-recognition-examples", "dlib-landmarks") for p in sorted((data / "samples" / sub).rglob("*")) if is_image(p)][
        :: args.every
    ]
    sources = {**gens, "lfw": lfw, "nuaa": nuaa, "samples": samples}
    feats = {name: synthetic_set_features(engine, paths)[0] for name, paths in sources.items()}
    real_sources = ("lfw", "nuaa", "samples")

    def cat(parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
        return {f: np.vstack([p[f] for p in parts]) for f in FAMILIES}

    def take(f: dict[str, np.ndarray], idx: Any) -> dict[str, np.ndarray]:
        return {k: v[idx] for k, v in f.items()}

    def size(f: dict[str, np.ndarray]) -> int:
        return int(f["layout"].shape[0])

    def fitted(syn: dict[str, np.ndarray], real: dict[str, np.ndarray]) -> SyntheticModel:
        y = [True] * size(syn) + [False] * size(real)
        model, _ = train(cat([syn, real]), y, detectors=("layout", "texture"))
        return SyntheticModel(model)

    def scores(m: SyntheticModel, f: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        out: dict[str, list[float]] = {"fused": []}
        for i in range(size(f)):
            lg = m.logits({k: v[i] for k, v in f.items()})
            out["fused"].append(1 / (1 + np.exp(-max(lg.values()))))
            for d, v in lg.items():
                out.setdefault(d, []).append(1 / (1 + np.exp(-v)))
        return {k: np.array(v) for k, v in out.items()}

    def figures(m: SyntheticModel, syn: dict[str, np.ndarray], real: dict[str, np.ndarray]) -> dict[str, Any]:
        ss, sr = scores(m, syn), scores(m, real)
        return {
            k: {"auc": round(auc(ss[k], sr[k]), 4), "detected": round(float(np.mean(ss[k] >= 0.5)), 4), "real_flagged": round(float(np.mean(sr[k] >= 0.5)), 4)}
            for k in ss
        } | {"synthetic": size(syn), "real": size(real)}

    all_real = cat([feats[s] for s in real_sources])
    within: dict[str, Any] = {}
    for g in GENS:
        y = [True] * size(feats[g]) + [False] * size(all_real)
        within[g] = {"synthetic": size(feats[g]), "real": size(all_real)}
        for name, dets in (("fused", ("layout", "texture")), ("layout", ("layout",)), ("texture", ("texture",))):
            _, ev = train(cat([feats[g], all_real]), y, detectors=dets)
            within[g][name] = {"auc": round(ev["auc"], 4), "detected": round(ev["detected"], 4), "real_flagged": round(ev["real_flagged"], 4)}

    held = {}
    for test_src in ("samples", "nuaa"):
        train_real = cat([feats[s] for s in real_sources if s != test_src])
        for g in GENS:
            ng = size(feats[g])
            m = fitted(take(feats[g], slice(0, ng, 2)), train_real)
            held[f"{g}: real {test_src} unseen"] = figures(m, take(feats[g], slice(1, ng, 2)), feats[test_src])

    half = np.arange(size(all_real)) % 2 == 0
    cross = {}
    for g1, g2 in ((GENS[0], GENS[1]), (GENS[1], GENS[0])):
        m = fitted(feats[g1], take(all_real, half))
        cross[f"train {g1} -> test {g2}"] = figures(m, feats[g2], take(all_real, ~half))

    # reframed: crops of generated faces and of real lfw-dev photos
    rng = np.random.default_rng(7)

    def cropped(paths: list[Path]) -> dict[str, np.ndarray]:
        rows: dict[str, list[np.ndarray]] = {f: [] for f in FAMILIES}
        for p in paths:
            img = engine.load(p)
            w, h = img.width, img.height
            cw, ch = int(w * rng.uniform(0.6, 0.9)), int(h * rng.uniform(0.6, 0.9))
            x0, y0 = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
            im2 = Image(np.ascontiguousarray(img.pixels[y0 : y0 + ch, x0 : x0 + cw]))
            dets = engine.detector.detect(im2)
            if dets:
                f = synthetic_features(im2, max(dets, key=lambda d: d.area))
                for k in FAMILIES:
                    rows[k].append(f[k])
        return {k: np.vstack(v) if v else np.zeros((0, len(FAMILIES[k]))) for k, v in rows.items()}

    m_all = fitted(cat([feats[g] for g in GENS]), all_real)
    reframed: dict[str, Any] = {}
    for g in GENS:
        s = scores(m_all, cropped(gens[g][::3]))
        reframed[f"{g} cropped: detected"] = {k: round(float(np.mean(v >= 0.5)), 4) for k, v in s.items()} | {"faces": int(s["fused"].size)}
    s = scores(m_all, cropped(lfw[::10]))
    reframed["lfw-dev cropped: flagged"] = {k: round(float(np.mean(v >= 0.5)), 4) for k, v in s.items()} | {"faces": int(s["fused"].size)}

    # file-history control with the shipped model
    shipped = load_synthetic_model()

    def rescored(paths: list[Path], scale: float, ext: str, params: list[int]) -> tuple[np.ndarray, np.ndarray]:
        a, b = [], []
        for p in paths:
            img = engine.load(p)
            dets = engine.detector.detect(img)
            px = cv2.resize(img.pixels, (round(img.width * scale), round(img.height * scale)), interpolation=cv2.INTER_CUBIC if scale > 1 else cv2.INTER_AREA)
            _, buf = cv2.imencode(ext, cv2.cvtColor(px, cv2.COLOR_RGB2BGR), params)
            img2 = engine.load(buf.tobytes())
            d2 = engine.detector.detect(img2)
            if dets and d2:
                a.append(shipped.score_features(synthetic_features(img, max(dets, key=lambda d: d.area))))
                b.append(shipped.score_features(synthetic_features(img2, max(d2, key=lambda d: d.area))))
        return np.array(a), np.array(b)

    ra, rb = rescored(lfw[::10], 2.0, ".png", [])
    sa, sb = rescored(gens["stylegan3"][::3], 0.5, ".jpg", [cv2.IMWRITE_JPEG_QUALITY, 85])
    control = {
        "real_vs_real_2x_png": {
            "auc": round(auc(rb, ra), 4),
            "flagged": round(float(np.mean(ra >= 0.5)), 4),
            "flagged_resaved": round(float(np.mean(rb >= 0.5)), 4),
            "faces": len(ra),
        },
        "stylegan3_vs_halved_jpeg85": {
            "auc": round(auc(sa, sb), 4),
            "detected": round(float(np.mean(sa >= 0.5)), 4),
            "detected_resaved": round(float(np.mean(sb >= 0.5)), 4),
            "faces": len(sa),
        },
    }

    # identity-aware check
    people = sorted(d for d in (data / "lfw-dev" / "images").iterdir() if d.is_dir() and len(list(d.glob("*.jpg"))) >= 5)[: args.people]
    vecs = {}
    for d in people:
        ts = engine.embed_many(sorted(d.glob("*.jpg"))[:5], face="center")
        if all(not isinstance(t, Exception) for t in ts):
            vecs[d.name] = np.stack([t.vector for t in ts])
    names = sorted(vecs)
    # person i's synthetic probe is syn_vecs[i % len(syn_vecs)]: the first len(names) faces found are all it uses
    syn_paths = gens[GENS[0]][:60] + gens[GENS[1]][:60]
    syn_vecs = [t.vector for t in engine.embed_many(syn_paths[: len(names)]) if not isinstance(t, Exception)]
    if len(syn_vecs) < len(names):
        syn_vecs += [t.vector for t in engine.embed_many(syn_paths[len(names) :]) if not isinstance(t, Exception)]
    flags: dict[str, list[bool]] = {"genuine": [], "impostor": [], "synthetic": []}
    zs: dict[str, list[float]] = {"genuine": [], "impostor": [], "synthetic": []}
    for i, nm in enumerate(names):
        refs = vecs[nm][:4]
        for kind, v in (("genuine", vecs[nm][4]), ("impostor", vecs[names[(i + 1) % len(names)]][4]), ("synthetic", syn_vecs[i % len(syn_vecs)])):
            r = identity_consistency(v, refs)
            flags[kind].append(r.outlier)
            zs[kind].append(r.z)
    identity: dict[str, Any] = {
        k: {"flagged_as_outlier": round(float(np.mean(v)), 4), "median_z": round(float(np.median(zs[k])), 3), "n": len(v)} for k, v in flags.items()
    }
    identity["people"] = len(names)

    res = {
        "benchmark": "synthetic",
        "faces": {k: size(v) for k, v in feats.items()},
        "within": within,
        "real_source_held_out": held,
        "cross_generator": cross,
        "reframed": reframed,
        "file_history_control": control,
        "identity_aware": identity,
        "shipped_model": {
            "version": shipped.version,
            "training": {k: shipped.meta.get(k) for k in ("auc", "accuracy", "detected", "real_flagged", "synthetic", "real")},
        },
        "passes": {  # for the shipped configuration, the layout detector
            "auc_per_generator_at_least_0_95": all(v["layout"]["auc"] >= 0.95 for v in within.values()),
            "unseen_real_source_auc_at_least_0_9": all(v["layout"]["auc"] >= 0.9 for v in held.values()),
            "unseen_real_source_flagged_at_most_2pct": all(v["layout"]["real_flagged"] <= 0.02 for v in held.values()),
            "cross_generator_auc_at_least_0_9": all(v["layout"]["auc"] >= 0.9 for v in cross.values()),
            "file_history_control_near_chance": all(abs(v["auc"] - 0.5) <= 0.15 for v in control.values()),
            "identity_check_flags_impostors_not_genuine": identity["impostor"]["flagged_as_outlier"] > 0.8 and identity["genuine"]["flagged_as_outlier"] < 0.1,
        },
        "machine": machine(),
    }
    emit(res)


if __name__ == "__main__":
    main()
