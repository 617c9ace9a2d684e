"""How well does the synthetic-face check work, and does it read the generator or the source?

Generated faces: ``synthetic/stylegan3`` (150 PNG, 256 px), ``synthetic/generated-photos``
(200 JPEG, 512 px) and ``synthetic/sfhq-t2i`` (107 FLUX.1 / SDXL diffusion faces, ~477 px
thumbnails JPEG-saved twice; one "diffusion" family here).  Real faces from four sources: an
even spread of ``lfw-dev`` (250 px news JPEGs), NUAA live webcam frames, the live frames of
``pad/webcam-collect`` and ``pad/video-selfreplay`` ("webcam") and the sample photos
(deepface, face_recognition, dlib and group photos: large, clean camera pictures).  Every
face is also re-framed (:func:`faceprint.forensics.training.reframed_variants`): ``ffhq``
(warped so its landmarks sit on the FFHQ layout, at 256/512/1024 px -- how CelebA-HQ
portraits, profile and passport crops are framed), ``reframe`` (random 60-90% crop, rescale,
JPEG q75-90) and ``thumb`` (the diffusion set's resize + double JPEG, given to real controls).

The synthetic-v2 design (residual statistics + clipped layout, summed; operating point on
unseen real sources) is refitted in-process so that every figure below is *held out*:

* ``ffhq_aligned_real``: each real source, aligned like FFHQ, scored by a model fitted without
  that source (all generators): share flagged at the operating point; also the shipped model
  file and synthetic-v1 on the same pictures (in-sample for the shipped file: not a test).
* ``leave_one_generator_out``: each generator scored by models fitted without it *and*
  without the real source it is compared with (one fold per real source): AUC against that
  source's ordinary photos, against the same photos aligned like FFHQ, and detected share.
* ``reframed``: re-framed generated faces against re-framed real faces, generators seen (odd
  files, fitted on the even ones) and generator held out; real source held out in both.
* ``diffusion``: the SFHQ-T2I thumbnails against real thumbnails treated the same way.
* ``within`` / ``real_source_held_out`` / ``cross_generator``: the v1-style detectors
  (layout Gaussian, texture logistic, max-fused) on the faces as they come, two GANs.
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
    from faceprint.evaluation.datasets import synthetic_training_sets
    from faceprint.evaluation.pad import auc
    from faceprint.forensics.synthetic import FAMILIES, V1_PATH, SyntheticModel, load_synthetic_model, synthetic_features, verdict_shares
    from faceprint.forensics.training import fit_reframed, fused_scores, variant_features
    from faceprint.forensics.training import train_synthetic as train
    from faceprint.gallery.consistency import identity_consistency

    engine = Engine()
    gen_paths, real_paths = synthetic_training_sets(data, every=args.every, real_limit=args.real)
    vgen = {g: variant_features(engine, p, thumbnail_done=g == "sfhq-t2i") for g, p in gen_paths.items()}
    vreal = {r: variant_features(engine, p) for r, p in real_paths.items()}
    gens = {g: gen_paths[g] for g in GENS}
    lfw = real_paths["lfw"]
    feats = {name: {f: v["orig"][f] for f in FAMILIES} for name, v in {**vgen, **vreal}.items()}
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

    # --- synthetic-v2, held out ------------------------------------------------------------------
    def sub(sets: dict[str, Any], keep: Any) -> dict[str, Any]:
        return {k: v for k, v in sets.items() if keep(k)}

    def rows(v: dict[str, np.ndarray], parity: int | None = None) -> dict[str, np.ndarray]:
        if parity is None or not len(v["file"]):
            return v
        m = v["file"] % 2 == parity
        return {k: x[m] for k, x in v.items()}

    def half(sets: dict[str, Any], parity: int) -> dict[str, Any]:
        return {g: {var: rows(v, parity) for var, v in s.items()} for g, s in sets.items()}

    def fit(g: dict[str, Any], r: dict[str, Any]) -> SyntheticModel:
        return SyntheticModel(fit_reframed(g, r))

    def sc(m: SyntheticModel, v: dict[str, np.ndarray]) -> np.ndarray:
        return fused_scores(m, v) if len(v["layout"]) else np.zeros(0)

    def auc_or_none(x: np.ndarray, y: np.ndarray) -> float | None:
        return round(auc(x, y), 4) if len(x) and len(y) else None

    def rate(x: np.ndarray) -> float | None:
        return round(float(np.mean(x >= 0.0)), 4) if len(x) else None

    gnames, rnames = list(vgen), list(vreal)
    shipped = load_synthetic_model()
    v1 = load_synthetic_model(V1_PATH)
    ffhq_aligned: dict[str, Any] = {"held_out": {}, "shipped_model": {}, "synthetic_v1": {}}
    for r in rnames:  # every generator, this real source unseen
        m = fit(vgen, sub(vreal, lambda k, r=r: k != r))
        ffhq_aligned["held_out"][r] = {
            "flagged": rate(sc(m, vreal[r]["ffhq"])),
            "flagged_as_they_come": rate(sc(m, vreal[r]["orig"])),
            "faces": len(vreal[r]["ffhq"]["layout"]),
        }
        for name, mod in (("shipped_model", shipped), ("synthetic_v1", v1)):
            ffhq_aligned[name][r] = rate(sc(mod, vreal[r]["ffhq"]))
    logo: dict[str, Any] = {}
    reframed: dict[str, Any] = {"generator_seen": {}, "generator_held_out": {}}
    diffusion: dict[str, Any] = {}
    for g in gnames:
        per: dict[str, Any] = {}
        for r in rnames:
            m = fit(sub(vgen, lambda k, g=g: k != g), sub(vreal, lambda k, r=r: k != r))
            s_g, s_r, s_ra = sc(m, vgen[g]["orig"]), sc(m, vreal[r]["orig"]), sc(m, vreal[r]["ffhq"])
            per[r] = {
                "auc": auc_or_none(s_g, s_r),
                "auc_vs_ffhq_aligned_real": auc_or_none(s_g, s_ra),
                "detected": rate(s_g),
                "reframed_auc": auc_or_none(sc(m, vgen[g]["reframe"]), sc(m, vreal[r]["reframe"])),
                "thumbnail_auc": auc_or_none(sc(m, vgen[g]["thumb"]), sc(m, vreal[r]["thumb"])),
            }
        aucs = [v["auc"] for v in per.values() if v["auc"] is not None]
        logo[g] = {"auc": round(float(np.mean(aucs)), 4), "worst_auc": min(aucs), "per_real_source": per}
        reframed["generator_held_out"][g] = round(float(np.mean([v["reframed_auc"] for v in per.values() if v["reframed_auc"] is not None])), 4)
    # generators seen: fitted on the even files of every generator, tested on the odd ones; real source unseen
    seen: dict[str, dict[str, Any]] = {g: {} for g in gnames}
    for r in rnames:
        m = fit(half(vgen, 0), sub(vreal, lambda k, r=r: k != r))
        test = half(vgen, 1)
        for g in gnames:
            seen[g][r] = {
                "auc": auc_or_none(sc(m, test[g]["orig"]), sc(m, vreal[r]["orig"])),
                "reframed_auc": auc_or_none(sc(m, test[g]["reframe"]), sc(m, vreal[r]["reframe"])),
                "thumbnail_auc": auc_or_none(sc(m, test[g]["thumb"]), sc(m, vreal[r]["thumb"])),
                "detected": rate(sc(m, test[g]["orig"])),
                "reframed_detected": rate(sc(m, test[g]["reframe"])),
            }
    for g in gnames:
        reframed["generator_seen"][g] = {
            "auc": round(float(np.mean([v["reframed_auc"] for v in seen[g].values() if v["reframed_auc"] is not None])), 4),
            "detected": round(float(np.mean([v["reframed_detected"] for v in seen[g].values() if v["reframed_detected"] is not None])), 4),
            "per_real_source": {r: v["reframed_auc"] for r, v in seen[g].items()},
        }
    reframed["auc"] = round(float(np.mean([v["auc"] for v in reframed["generator_seen"].values()])), 4)
    reframed["auc_generator_held_out"] = round(float(np.mean(list(reframed["generator_held_out"].values()))), 4)
    if "sfhq-t2i" in vgen:
        d = "sfhq-t2i"
        diffusion = {
            "generator_held_out": {r: {"auc": v["thumbnail_auc"], "detected": v["detected"]} for r, v in logo[d]["per_real_source"].items()},
            "generator_seen": {r: {"auc": v["thumbnail_auc"], "detected": v["detected"]} for r, v in seen[d].items()},
            "faces": len(vgen[d]["orig"]["layout"]),
            "note": "SFHQ-T2I thumbnails (FLUX.1 pro/dev/schnell, SDXL: one family) against real faces resized and JPEG-saved twice the same way",
        }

    # file-history control with the shipped model
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

    # what the shipped model answers (in-sample for the sets it was fitted on: a description of
    # its answers, not a test): synthetic / cannot tell / no evidence, per set and framing
    def verdicts(v: dict[str, np.ndarray]) -> dict[str, Any]:
        n = len(v["layout"])
        return verdict_shares(shipped, v) | {"faces": n} if n else {"faces": 0}

    shipped_verdicts = {
        **{f"{g} as generated": verdicts(vgen[g]["orig"]) for g in vgen},
        **{f"{g} re-framed": verdicts(vgen[g]["reframe"]) for g in vgen},
        **{f"{r} real, aligned like FFHQ": verdicts(vreal[r]["ffhq"]) for r in vreal},
        **{f"{r} real, as taken": verdicts(vreal[r]["orig"]) for r in vreal},
    }

    res = {
        "benchmark": "synthetic",
        "faces": {k: size(v) for k, v in feats.items()},
        "within": within,
        "real_source_held_out": held,
        "cross_generator": cross,
        "reframed": reframed,
        "ffhq_aligned_real": ffhq_aligned,
        "leave_one_generator_out": logo,
        "diffusion": diffusion,
        "file_history_control": control,
        "identity_aware": identity,
        "shipped_model": {
            "version": shipped.version,
            "fusion": shipped.fusion,
            "training": dict(shipped.meta),
            "verdicts": shipped_verdicts,
        },
        "passes": {  # held-out figures of the shipped design (synthetic-v2), see above
            "ffhq_aligned_real_flagged_at_most_3pct": all(v["flagged"] is not None and v["flagged"] <= 0.03 for v in ffhq_aligned["held_out"].values()),
            "leave_one_generator_out_auc_at_least_0_95": all(v["auc"] >= 0.95 for v in logo.values()),
            "reframed_auc_at_least_0_9": reframed["auc"] >= 0.9,
            "file_history_control_near_chance": all(abs(v["auc"] - 0.5) <= 0.15 for v in control.values()),
            "identity_check_flags_impostors_not_genuine": identity["impostor"]["flagged_as_outlier"] > 0.8 and identity["genuine"]["flagged_as_outlier"] < 0.1,
            "v1_layout_cross_generator_auc_at_least_0_9": all(v["layout"]["auc"] >= 0.9 for v in cross.values()),
        },
        "machine": machine(),
    }
    emit(res)


if __name__ == "__main__":
    main()
