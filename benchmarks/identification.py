"""Open-set identification (1:N) on lfw-dev through a real Gallery.

Gallery: the first image of every identity with at least two images, plus the only
image of every single-image identity (distractors).  Mated probes: all other images.
Non-mated searches: each mated probe's best candidate other than its own identity
(the same search with the mate left out).  Reports rank-1 / rank-5 (CMC), FNIR at
FPIR 1e-2 and 1e-3 with thresholds set empirically on the non-mated searches (NIST
FRTE style), and the FPIR/FNIR the gallery's own calibrated threshold delivers.

    .venv/bin/python benchmarks/identification.py [--data DIR] [--vectors CACHE.npz] [--identities N]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import data_dir, emit, machine

from faceprint import Engine, Template
from faceprint.errors import CalibrationError
from faceprint.evaluation.pairs import embed_paths, identity_folders, read_errata
from faceprint.gallery import Gallery
from faceprint.metrics.verification import threshold_at_fmr


def lfw_templates(engine: Engine, root: Path, cache: Path | None, identities: int | None) -> tuple[list[Path], np.ndarray, list[str], np.ndarray, np.ndarray]:
    paths, ids, names = identity_folders(root)
    if identities:
        keep = ids < identities
        paths, ids, names = [p for p, k in zip(paths, keep) if k], ids[keep], names[:identities]
    if cache and cache.is_file():
        saved = np.load(cache, allow_pickle=False)
        where = {str(Path(p).resolve()): i for i, p in enumerate(saved["paths"])}
        missing = [p for p in paths if str(p.resolve()) not in where]
        if missing or str(saved["model_id"]) != engine.model_id:
            raise SystemExit(f"{cache} does not hold {engine.model_id} templates of every lfw-dev image (e.g. {missing[:1]})")
        rows = [where[str(p.resolve())] for p in paths]
        return paths, ids, names, saved["vectors"][rows], np.array([saved["errors"][r] == "" for r in rows])
    vectors, errors = embed_paths(lambda ps: engine.embed_many(ps, face="center"), paths)
    return paths, ids, names, vectors, np.array([e is None for e in errors])


def split_gallery_probes(ids: np.ndarray, ok: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The protocol: each identity's first usable image is enrolled (mask), its others are the
    mated probes (indices)."""
    first = np.zeros(len(ids), bool)
    seen: set[int] = set()
    for i, s in enumerate(ids):
        if ok[i] and s not in seen:
            first[i] = True
            seen.add(int(s))
    return first, np.flatnonzero(~first & ok)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data")
    ap.add_argument("--vectors", default=None, help="templates cached by scripts/build_calibration.py --vectors (same model)")
    ap.add_argument("--identities", type=int, default=None, help="use only the first N identities (smoke runs)")
    ap.add_argument("--errata", default=str(Path(__file__).resolve().parents[1] / "scripts" / "lfw_errata.txt"), help="known LFW label errors ('' for none)")
    args = ap.parse_args()
    root = data_dir(args.data) / "lfw-dev" / "images"
    engine = Engine()
    t0 = time.perf_counter()
    paths, ids, names, vectors, ok = lfw_templates(engine, root, Path(args.vectors) if args.vectors else None, args.identities)
    t_embed = time.perf_counter() - t0
    # known label errors: mislabelled pictures are left out; an alias of the probe's own
    # identity (Doc_Rivers / Glenn_Rivers) is not counted as a false positive
    group, skip = read_errata(Path(args.errata), names) if args.errata else (np.arange(len(names)), set())
    ok &= np.array([p.name not in skip for p in paths])
    group_of = {n: int(group[i]) for i, n in enumerate(names)}

    first, probes = split_gallery_probes(ids, ok)

    with tempfile.TemporaryDirectory() as tmp:
        gallery = Gallery(Path(tmp) / "gallery.db", engine)
        t1 = time.perf_counter()
        for i in np.flatnonzero(first):
            gallery.add_templates(names[ids[i]], [Template(vector=vectors[i], model_id=engine.model_id, source=str(paths[i]))])
        gallery.flush()
        t_enrol = time.perf_counter() - t1
        t2 = time.perf_counter()
        results = gallery.identify_vectors(vectors[probes], k=5, fpir=1e-3)
        t_search = time.perf_counter() - t2
        calibrated = {f: gallery.threshold_for_fpir(f)[0] for f in (1e-2, 1e-3)}
        gallery.close()

    truth = [names[ids[i]] for i in probes]
    rank_of = np.array([next((r for r, c in enumerate(res.candidates) if c.name == t), 99) for res, t in zip(results, truth)])
    mate_score = np.array([next((c.score for c in res.candidates if c.name == t), -1.0) for res, t in zip(results, truth)])
    nonmate_raw = np.array([next((c.score for c in res.candidates if c.name != t), -1.0) for res, t in zip(results, truth)])
    nonmate_top = np.array([next((c.score for c in res.candidates if group_of[c.name] != group_of[t]), -1.0) for res, t in zip(results, truth)])

    def fnir_at(threshold: float) -> float:
        return float(np.mean(~((rank_of == 0) & (mate_score >= threshold))))

    out = {
        "benchmark": "identification",
        "dataset": "lfw-dev",
        "model_id": engine.model_id,
        "gallery_subjects": int(first.sum()),
        "distractors": int(sum(1 for s in np.unique(ids) if (ids == s).sum() == 1)),
        "mated_probes": int(len(probes)),
        "rank1": float(np.mean(rank_of == 0)),
        "rank5": float(np.mean(rank_of < 5)),
        "images_unused": int((~ok).sum()),  # no face, or a known mislabelled picture
    }
    for fpir in (1e-2, 1e-3):
        key = f"{fpir:.0e}".replace("e-0", "e-")
        try:
            t_emp = threshold_at_fmr(nonmate_top, fpir)
            out[f"fnir_at_fpir_{key}"] = fnir_at(t_emp)
            out[f"threshold_at_fpir_{key}"] = t_emp
            out[f"fnir_at_fpir_{key}_without_errata"] = fnir_at(threshold_at_fmr(nonmate_raw, fpir))
        except CalibrationError as exc:  # too few non-mated searches to state this FPIR
            out[f"fnir_at_fpir_{key}"] = None
            out[f"note_fpir_{key}"] = str(exc)
        t_cal = calibrated[fpir]
        out[f"calibrated_fpir_{key}"] = {
            "threshold": t_cal,
            "measured_fpir": float(np.mean(nonmate_top >= t_cal)),
            "measured_fnir": fnir_at(t_cal),
        }
    out["non_mated_searches"] = int(len(nonmate_top))
    out["errata"] = {"alias_groups_merged": int(len(names) - len(set(group_of.values()))), "images_left_out": len(skip)}
    out["seconds"] = {"embed": round(t_embed, 1), "enrol": round(t_enrol, 1), "search_all_probes": round(t_search, 2)}
    out["machine"] = machine()
    emit(out)


if __name__ == "__main__":
    main()
